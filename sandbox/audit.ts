/**
 * Refused permission checks from Deno's permission audit log (DESIGN section 5).
 *
 * Deno 2.9.6 with `DENO_AUDIT_PERMISSIONS=<file>` writes one JSON line per permission check the
 * runtime makes — `{"v":1,"datetime":"…","permission":"read","value":"/etc/hostname"}` — for
 * granted and refused checks alike: the record does not say which. (It opens the file
 * `O_WRONLY|O_CREAT|O_TRUNC`, writes whatever the agent's permissions, and logs paths as the
 * agent wrote them, relative ones unresolved; `Deno.Command` refusals leave no record at all.)
 * The outcome is therefore recomputed here from the very flags the agent was started with:
 * {@link grantsFromArgs} reads them back from the `deno run` argument list, and
 * {@link refusal} decides a record the way Deno does (a deny beats an allow; paths compared on
 * whole components; `host` allows every port, `host:port` one).
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { isInside } from "./flags.ts";

/** One permission kind's allow and deny lists; `all` when the bare flag was given. */
export interface Grant {
  all: boolean;
  allow: string[];
  deny: string[];
  /** The bare `--deny-<kind>` flag: everything refused. */
  denyAll: boolean;
}

/** What an agent's `deno run` arguments grant, per permission kind. */
export interface Grants {
  /** `--allow-all`: nothing is refused. */
  allowAll: boolean;
  /** Per kind: read, write, net, env, sys, ffi, run, import. */
  kinds: Record<string, Grant>;
}

const KINDS = ["read", "write", "net", "env", "sys", "ffi", "run", "import"];

/** Read the permission flags back from a `deno run` argument list (up to the script). */
export function grantsFromArgs(args: readonly string[]): Grants {
  const grants: Grants = { allowAll: false, kinds: {} };
  for (const k of KINDS) grants.kinds[k] = { all: false, allow: [], deny: [], denyAll: false };
  for (const a of args) {
    if (a === "--allow-all" || a === "-A") grants.allowAll = true;
    const m = a.match(/^--(allow|deny)-([a-z]+)(?:=(.*))?$/s);
    if (!m || !KINDS.includes(m[2])) continue;
    const g = grants.kinds[m[2]];
    const values = m[3] === undefined ? null : m[3].split(",").filter((v) => v !== "");
    if (m[1] === "allow") {
      if (values === null) g.all = true;
      else g.allow.push(...values);
    } else {
      if (values === null) g.denyAll = true;
      else g.deny.push(...values);
    }
  }
  return grants;
}

/** One record of the audit log. */
export interface AuditRecord {
  permission: string;
  value: string | null;
}

/** Parse one audit log line; null when it is not a record. */
export function parseAuditLine(line: string): AuditRecord | null {
  if (line.length === 0 || line.length > 65_536) return null;
  try {
    const r = JSON.parse(line);
    if (typeof r !== "object" || r === null || typeof r.permission !== "string") return null;
    if (r.value !== null && typeof r.value !== "string") return null;
    return { permission: r.permission, value: r.value };
  } catch {
    return null;
  }
}

/** `host` and `port` of a net or import value (`host:port`, `[v6]:port`, a URL, `unix:PATH`). */
function hostPort(value: string): { host: string; port: string | null } | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      const u = new URL(value);
      const port = u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
      return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
    } catch {
      return null;
    }
  }
  const v6 = value.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (v6) return { host: v6[1], port: v6[2] ?? null };
  const m = value.match(/^([^:]+)(?::(\d+))?$/);
  return m ? { host: m[1], port: m[2] ?? null } : null;
}

function hostMatches(entry: string, value: string): boolean {
  if (value.startsWith("unix:") || entry.startsWith("unix:")) return entry === value;
  const want = hostPort(value);
  const have = hostPort(entry);
  if (!want || !have) return false;
  const host = have.host.toLowerCase();
  const target = want.host.toLowerCase();
  const hostOk = host === target || (host.startsWith("*.") && target.endsWith(host.slice(1)));
  return hostOk && (have.port === null || have.port === want.port);
}

function envMatches(entry: string, name: string): boolean {
  return entry.endsWith("*") ? name.startsWith(entry.slice(0, -1)) : entry === name;
}

/**
 * Why `grants` refuse `record`, or null if they allow it (or the record is of a kind not
 * judged). `cwd` resolves relative paths (the agent's workspace: where it starts).
 */
export function refusal(grants: Grants, record: AuditRecord, cwd: string): string | null {
  if (grants.allowAll) return null;
  if (!KINDS.includes(record.permission)) return null;
  const g = grants.kinds[record.permission];
  const kind = record.permission;
  const v = record.value;
  const denied = (why: string) => `Permission denied: the agent's ${kind} access to ${why}`;
  if (g.denyAll) return denied(`${v ?? "everything"} (--deny-${kind})`);
  switch (kind) {
    case "read":
    case "write": {
      if (v === null) return g.all ? null : denied("the whole filesystem");
      const path = isAbsolute(v) ? resolve(v) : resolve(cwd, v);
      if (g.deny.some((d) => isInside(path, d))) return denied(`${path} (a denied path)`);
      return g.all || g.allow.some((a) => isInside(path, a))
        ? null
        : denied(`${path} (not granted)`);
    }
    case "net":
    case "import": {
      if (v === null) return g.all ? null : denied("every host");
      if (g.deny.some((d) => hostMatches(d, v))) return denied(`${v} (a denied host)`);
      return g.all || g.allow.some((a) => hostMatches(a, v)) ? null : denied(`${v} (not granted)`);
    }
    case "env": {
      if (v === null) return g.all ? null : denied("the whole environment");
      if (g.deny.some((d) => envMatches(d, v))) return denied(`${v} (denied)`);
      return g.all || g.allow.some((a) => envMatches(a, v)) ? null : denied(`${v} (not granted)`);
    }
    default: {
      // sys, ffi, run: a named value or everything.
      if (v !== null && g.deny.includes(v)) return denied(`${v} (denied)`);
      return g.all || (v !== null && g.allow.includes(v)) ? null : denied(`${v ?? "it"}`);
    }
  }
}
