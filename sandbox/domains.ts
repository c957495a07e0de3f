/**
 * Network allowlists for HTTP: host patterns (`"*"`, `"example.com"`, `"*.example.com"`) and
 * the addresses refused unless named explicitly (link-local and cloud metadata).
 * @module
 */
import { isIP } from "node:net";

/**
 * Cloud metadata addresses (AWS, GCP, Azure: 169.254.169.254; AWS over IPv6), which hand out
 * the host's cloud credentials. HTTP refuses them (and all of 169.254.0.0/16) unless the
 * allowlist names them exactly; agents' Deno flags deny them likewise.
 */
export const METADATA_ADDRESSES: readonly string[] = ["169.254.169.254", "fd00:ec2::254"];

/** Lower-case a host, drop IPv6 brackets and a trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

/**
 * Split a pattern into its host part and its port, if it names one (`example.com:8080`,
 * `[::1]:8080`; SPAWN's `network` and `--client-network` accept these, as Deno's
 * `--allow-net` does). A bare IPv6 address (`::1`) has no port.
 */
export function splitPattern(pattern: string): { host: string; port: string | null } {
  const t = pattern.trim();
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(t);
  if (v6) return { host: v6[1], port: String(Number(v6[2])) };
  const named = /^([^:]+):(\d{1,5})$/.exec(t);
  if (named) return { host: named[1], port: String(Number(named[2])) };
  return { host: t, port: null };
}

/**
 * True if `host` matches `pattern`: `"*"` matches any host, `"*.example.com"` matches
 * `example.com` and every subdomain of it, anything else matches exactly (case-insensitive).
 * A pattern with a port (`example.com:8080`) matches only requests to that `port`.
 */
export function hostMatches(host: string, pattern: string, port?: string): boolean {
  const split = splitPattern(pattern);
  if (split.port !== null && split.port !== port) return false;
  const h = normalizeHost(host);
  const p = normalizeHost(split.host);
  if (p === "*") return true;
  if (p.startsWith("*.")) {
    const base = p.slice(2);
    return base !== "" && (h === base || h.endsWith(`.${base}`));
  }
  return h === p;
}

/**
 * True if domain pattern `bound` covers domain pattern `candidate` (SET_PERMS bounds): `*`
 * covers everything; `*.example.com` covers `example.com`, its subdomains and their
 * wildcards; a plain host covers only itself. For a plain `candidate` this is
 * {@link hostMatches}.
 */
export function patternCovers(bound: string, candidate: string): boolean {
  const b = normalizeHost(bound);
  if (b === "*") return true;
  const cs = splitPattern(candidate);
  const bs = splitPattern(bound);
  // A bound with a port covers only candidates limited to that same port.
  if (bs.port !== null && cs.port !== bs.port) return false;
  const c = normalizeHost(cs.host);
  if (c === "*") return false;
  if (!c.startsWith("*.")) return hostMatches(c, bound, cs.port ?? undefined);
  return bs.host.startsWith("*.") && hostMatches(c.slice(2), bound, cs.port ?? undefined);
}

/** True if some pattern of `allowlist` matches `host` (requested on `port`, if known). */
export function hostAllowed(host: string, allowlist: readonly string[], port?: string): boolean {
  return allowlist.some((p) => hostMatches(host, p, port));
}

/**
 * True if `allowlist` names `host` or `ip` exactly (no wildcard): the only way to reach a
 * link-local or metadata address.
 */
export function explicitlyAllowed(host: string, ip: string, allowlist: readonly string[]): boolean {
  const h = normalizeHost(host);
  const a = normalizeHost(ip);
  return allowlist.some((p) => {
    const n = normalizeHost(p);
    if (n.includes("*")) return false;
    return n === h || n === a || (isIP(n) === 6 && isIP(a) === 6 && sameIPv6(n, a));
  });
}

/** Parse an IPv4 literal into its 4 bytes, or null. */
export function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => /^\d{1,3}$/.test(p) ? Number(p) : NaN);
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

/** Parse an IPv6 literal (with `::` and an embedded IPv4 tail) into 8 hextets, or null. */
export function parseIPv6(input: string): number[] | null {
  let s = normalizeHost(input);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => part === "" ? [] : part.split(":");
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  const out: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    out.push(parseInt(g, 16));
  }
  if (tail.length) out.splice(6, 2, ...tail);
  return out.length === 8 ? out : null;
}

function sameIPv6(a: string, b: string): boolean {
  const x = parseIPv6(a);
  const y = parseIPv6(b);
  return x !== null && y !== null && x.every((v, i) => v === y[i]);
}

function forbiddenIPv4(b: number[]): string | null {
  if (b[0] === 169 && b[1] === 254) {
    return b[2] === 169 && b[3] === 254
      ? "a cloud metadata address (169.254.169.254)"
      : "a link-local address (169.254.0.0/16)";
  }
  return null;
}

/**
 * Why `ip` is refused unless explicitly allowed (link-local, cloud metadata, also when
 * embedded in IPv4-mapped, IPv4-compatible or NAT64 IPv6), or null if it is not.
 */
export function forbiddenAddress(ip: string): string | null {
  const v4 = parseIPv4(ip);
  if (v4) return forbiddenIPv4(v4);
  const v6 = parseIPv6(ip);
  if (!v6) return "not an IP address";
  if ((v6[0] & 0xffc0) === 0xfe80) return "a link-local address (fe80::/10)";
  // fd00:ec2::254, the AWS metadata service over IPv6
  if (
    v6[0] === 0xfd00 && v6[1] === 0x0ec2 && v6.slice(2, 7).every((x) => x === 0) &&
    v6[7] === 0x254
  ) {
    return "a cloud metadata address (fd00:ec2::254)";
  }
  const embedded = (v6.slice(0, 5).every((x) => x === 0) && (v6[5] === 0xffff || v6[5] === 0)) ||
    (v6[0] === 0x64 && v6[1] === 0xff9b && v6.slice(2, 6).every((x) => x === 0));
  if (embedded) {
    return forbiddenIPv4([v6[6] >> 8, v6[6] & 0xff, v6[7] >> 8, v6[7] & 0xff]);
  }
  return null;
}

/**
 * The addresses `host` resolves to (A and AAAA), or the literal itself. `localhost` resolves to
 * the loopback addresses when DNS does not answer for it. Throws if the host does not resolve.
 */
export async function resolveHost(host: string, signal?: AbortSignal): Promise<string[]> {
  const h = normalizeHost(host);
  if (isIP(h)) return [h];
  const lookups = await Promise.allSettled([
    Deno.resolveDns(h, "A", { signal }),
    Deno.resolveDns(h, "AAAA", { signal }),
  ]);
  const addresses = lookups.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  if (addresses.length > 0) return addresses;
  if (h === "localhost" || h.endsWith(".localhost")) return ["127.0.0.1", "::1"];
  const why = lookups.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  throw new Error(`cannot resolve ${h}${why ? `: ${(why.reason as Error).message}` : ""}`);
}
