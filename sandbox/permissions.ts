/**
 * The permission record (DESIGN section 4): five levels, their default records, and the zod
 * schema that GET_PERMS returns and SET_PERMS accepts.
 * @module
 */
import { z } from "zod";
import { normalizeHost, patternCovers } from "./domains.ts";
import { underAnyOf } from "./paths.ts";

/** Levels from most to least powerful. */
export const LEVELS = ["unrestricted", "standard", "sandboxed", "readonly", "minimal"] as const;
/** A permission level. */
export type Level = typeof LEVELS[number];
/** zod schema for a level name. */
export const LevelSchema = z.enum(LEVELS);

/** Rank of a level: higher is more powerful. */
export function levelRank(level: Level): number {
  return LEVELS.length - LEVELS.indexOf(level);
}

/** The boolean rights a syscall may require. */
export const RIGHTS = [
  "can_exec",
  "can_read",
  "can_write",
  "can_think",
  "can_spawn",
  "can_http",
] as const;
/** One boolean right. */
export type Right = typeof RIGHTS[number];

/** zod schema of the full permission record. */
export const PermissionsSchema = z.object({
  level: LevelSchema,
  can_exec: z.boolean(),
  can_read: z.boolean(),
  can_write: z.boolean(),
  can_think: z.boolean(),
  can_spawn: z.boolean(),
  can_http: z.boolean(),
  filesystem: z.object({
    read: z.array(z.string().max(4096)).max(256),
    write: z.array(z.string().max(4096)).max(256),
    blocked: z.array(z.string().max(4096)).max(1024),
  }),
  /** Commands allowed for EXEC (first word of the command); `"*"` allows any. */
  exec: z.array(z.string().max(256)).max(1024),
  /** Commands refused by EXEC whatever `exec` says. */
  blocked_commands: z.array(z.string().max(256)).max(1024),
  /** Domains HTTP may reach; `"*"` any, `"*.example.com"` a domain and its subdomains. */
  network: z.array(z.string().max(256)).max(1024),
  llm: z.object({
    max_tokens: z.number().int().nonnegative().nullable(),
    max_calls: z.number().int().nonnegative().nullable(),
    tokens_used: z.number().int().nonnegative(),
    calls_made: z.number().int().nonnegative(),
  }),
  max_exec_time_ms: z.number().int().nonnegative(),
});

/** The permission record of one identity. */
export type Permissions = z.infer<typeof PermissionsSchema>;

/** Commands refused by default at every level that may EXEC (conveniences; the OS sandbox is the boundary). */
export const DEFAULT_BLOCKED_COMMANDS: readonly string[] = [
  "shutdown",
  "reboot",
  "halt",
  "poweroff",
  "mkfs",
  "sudo",
  "su",
];

/** Inputs a default record depends on. */
export interface PermissionContext {
  /** Absolute path of the identity's workspace. */
  workspace: string;
  /** Paths blocked for every identity (secrets, kernel files). */
  blocked: readonly string[];
  /** Domains granted at spawn (`network`), if any. */
  network?: readonly string[];
}

/** Build the default permission record of `level`. */
export function defaultPermissions(level: Level, ctx: PermissionContext): Permissions {
  const blocked = [...ctx.blocked];
  const base = {
    level,
    filesystem: { read: [] as string[], write: [] as string[], blocked },
    exec: [] as string[],
    blocked_commands: [...DEFAULT_BLOCKED_COMMANDS],
    network: [...(ctx.network ?? [])],
    llm: { max_tokens: null, max_calls: null, tokens_used: 0, calls_made: 0 },
  };
  const rights = (exec: boolean, read: boolean, write: boolean, spawn: boolean, http: boolean) => ({
    can_exec: exec,
    can_read: read,
    can_write: write,
    can_think: true,
    can_spawn: spawn,
    can_http: http,
  });
  switch (level) {
    case "unrestricted":
      return {
        ...base,
        ...rights(true, true, true, true, true),
        filesystem: { read: ["/"], write: ["/"], blocked },
        exec: ["*"],
        blocked_commands: [],
        network: ["*"],
        max_exec_time_ms: 3_600_000,
      };
    case "standard":
      return {
        ...base,
        ...rights(true, true, true, false, true),
        filesystem: { read: ["/"], write: ["/"], blocked },
        exec: ["*"],
        network: ctx.network ? [...ctx.network] : ["*"],
        max_exec_time_ms: 600_000,
      };
    case "sandboxed":
      return {
        ...base,
        ...rights(true, true, true, false, (ctx.network?.length ?? 0) > 0),
        filesystem: { read: [ctx.workspace], write: [ctx.workspace], blocked },
        exec: ["*"],
        max_exec_time_ms: 120_000,
      };
    case "readonly":
      return {
        ...base,
        ...rights(false, true, false, false, false),
        filesystem: { read: ["/"], write: [], blocked },
        network: [],
        max_exec_time_ms: 0,
      };
    case "minimal":
      return {
        ...base,
        ...rights(false, false, false, false, false),
        network: [],
        max_exec_time_ms: 0,
      };
  }
}

// --- changing records: patches, bounds, no escalation (DESIGN section 3) ---------------------

const absolutePath = z.string().min(1).max(4096).refine(
  (p) => p.startsWith("/") && !p.includes("\0"),
  "must be an absolute path without NUL bytes",
);
/** An allowed root: absolute, and without `..` (a root names one place, resolved as given). */
const rootPath = absolutePath.refine(
  (p) => !p.split("/").includes(".."),
  'must not contain ".." components; give the path it leads to',
);
const commandName = z.string().min(1).max(256).refine(
  (c) => !/[\s\0]/.test(c),
  "must be one command name (no whitespace)",
);
/** A domain pattern: `*`, `example.com`, or `*.example.com`. */
const domainPattern = z.string().min(1).max(253).refine(
  (d) =>
    d === "*" ||
    /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i.test(d),
  'must be "*", a host name like "example.com", or "*.example.com"',
);

/**
 * zod schema of a partial permission record, as SET_PERMS accepts it. `llm.tokens_used` and
 * `llm.calls_made` are accepted (so a record read with GET_PERMS can be sent back) but must
 * equal the current counters: the kernel keeps them.
 */
export const PermissionsPatchSchema = z.object({
  level: LevelSchema.optional(),
  can_exec: z.boolean().optional(),
  can_read: z.boolean().optional(),
  can_write: z.boolean().optional(),
  can_think: z.boolean().optional(),
  can_spawn: z.boolean().optional(),
  can_http: z.boolean().optional(),
  filesystem: z.object({
    read: z.array(rootPath).max(256).optional(),
    write: z.array(rootPath).max(256).optional(),
    blocked: z.array(absolutePath).max(1024).optional(),
  }).strict().optional(),
  exec: z.array(z.union([z.literal("*"), commandName])).max(1024).optional(),
  blocked_commands: z.array(commandName).max(1024).optional(),
  network: z.array(domainPattern).max(1024).optional(),
  llm: z.object({
    max_tokens: z.number().int().nonnegative().nullable().optional(),
    max_calls: z.number().int().nonnegative().nullable().optional(),
    tokens_used: z.number().int().nonnegative().optional(),
    calls_made: z.number().int().nonnegative().optional(),
  }).strict().optional(),
  max_exec_time_ms: z.number().int().nonnegative().max(86_400_000).optional(),
}).strict();

/** A partial permission record (SET_PERMS `permissions`). */
export type PermissionsPatch = z.infer<typeof PermissionsPatchSchema>;

/** A deep copy of `p`. */
export function clonePermissions(p: Permissions): Permissions {
  return structuredClone(p);
}

/**
 * Apply `patch` to `record`, returning a new record. Fields absent from the patch keep their
 * value; `filesystem` and `llm` merge per subfield. Usage counters are never taken from the
 * patch (the caller checks them with {@link usageCounterChanges}).
 */
export function applyPatch(record: Permissions, patch: PermissionsPatch): Permissions {
  const out = clonePermissions(record);
  if (patch.level !== undefined) out.level = patch.level;
  for (const right of RIGHTS) {
    const v = patch[right];
    if (v !== undefined) out[right] = v;
  }
  if (patch.filesystem) {
    const fs = patch.filesystem;
    if (fs.read) out.filesystem.read = [...fs.read];
    if (fs.write) out.filesystem.write = [...fs.write];
    if (fs.blocked) out.filesystem.blocked = [...fs.blocked];
  }
  if (patch.exec) out.exec = [...patch.exec];
  if (patch.blocked_commands) out.blocked_commands = [...patch.blocked_commands];
  if (patch.network) out.network = patch.network.map(normalizeHost);
  if (patch.llm) {
    if (patch.llm.max_tokens !== undefined) out.llm.max_tokens = patch.llm.max_tokens;
    if (patch.llm.max_calls !== undefined) out.llm.max_calls = patch.llm.max_calls;
  }
  if (patch.max_exec_time_ms !== undefined) out.max_exec_time_ms = patch.max_exec_time_ms;
  return out;
}

/** Names of usage counters that `patch` would change on `record` (SET_PERMS refuses these). */
export function usageCounterChanges(record: Permissions, patch: PermissionsPatch): string[] {
  const changed: string[] = [];
  if (patch.llm?.tokens_used !== undefined && patch.llm.tokens_used !== record.llm.tokens_used) {
    changed.push("llm.tokens_used");
  }
  if (patch.llm?.calls_made !== undefined && patch.llm.calls_made !== record.llm.calls_made) {
    changed.push("llm.calls_made");
  }
  return changed;
}

function fmtLimit(n: number | null): string {
  return n === null ? "unlimited" : String(n);
}

/**
 * Every way `candidate` exceeds `bound` (empty if it is at or below it): level rank, boolean
 * rights, filesystem read/write roots (each candidate root inside a bound root), blocked paths
 * (the candidate blocks at least what the bound blocks), EXEC allowlist (subset; `*` only under
 * `*`), blocked commands (superset), network domains (each covered by a bound pattern), LLM
 * limits (`null` is unlimited) and `max_exec_time_ms`.
 */
export function boundViolations(candidate: Permissions, bound: Permissions): string[] {
  const v: string[] = [];
  if (levelRank(candidate.level) > levelRank(bound.level)) {
    v.push(`level ${candidate.level} is above ${bound.level}`);
  }
  for (const right of RIGHTS) {
    if (candidate[right] && !bound[right]) v.push(`${right} is not held by the bound`);
  }
  for (const key of ["read", "write"] as const) {
    const inBound = underAnyOf(bound.filesystem[key]);
    for (const root of candidate.filesystem[key]) {
      if (!inBound(root)) {
        v.push(`filesystem.${key} ${root} is outside the bound's filesystem.${key}`);
      }
    }
  }
  const stillBlocked = underAnyOf(candidate.filesystem.blocked);
  for (const b of bound.filesystem.blocked) {
    if (!stillBlocked(b)) {
      v.push(`filesystem.blocked must keep ${b}`);
    }
  }
  if (!bound.exec.includes("*")) {
    for (const c of candidate.exec) {
      if (!bound.exec.includes(c)) v.push(`exec allows ${c}, which the bound does not`);
    }
  }
  for (const b of bound.blocked_commands) {
    if (!candidate.blocked_commands.includes(b)) v.push(`blocked_commands must keep ${b}`);
  }
  for (const c of candidate.network) {
    if (!bound.network.some((b) => patternCovers(b, c))) {
      v.push(`network allows ${c}, which the bound does not`);
    }
  }
  for (const key of ["max_tokens", "max_calls"] as const) {
    const b = bound.llm[key];
    const c = candidate.llm[key];
    if (b !== null && (c === null || c > b)) {
      v.push(`llm.${key} ${fmtLimit(c)} is above the bound's ${fmtLimit(b)}`);
    }
  }
  if (candidate.max_exec_time_ms > bound.max_exec_time_ms) {
    v.push(
      `max_exec_time_ms ${candidate.max_exec_time_ms} is above the bound's ${bound.max_exec_time_ms}`,
    );
  }
  return v;
}

/**
 * The bound a spawner's record `parent` sets for a descendant whose workspace is `workspace`:
 * `parent` plus read and write on that workspace. A descendant's own (new, initially empty)
 * workspace is its own whatever its spawner may reach: granting it exposes nothing of anyone
 * else's.
 */
export function withOwnWorkspace(parent: Permissions, workspace: string): Permissions {
  const out = clonePermissions(parent);
  for (const key of ["read", "write"] as const) {
    if (!out.filesystem[key].includes(workspace)) out.filesystem[key].push(workspace);
  }
  return out;
}

/** True if `candidate` grants nothing that `bound` does not (see {@link boundViolations}). */
export function withinBounds(candidate: Permissions, bound: Permissions): boolean {
  return boundViolations(candidate, bound).length === 0;
}

function minLimit(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

function meetRoots(a: readonly string[], b: readonly string[]): string[] {
  const out = [
    ...a.filter(underAnyOf(b)),
    ...b.filter(underAnyOf(a)),
  ];
  return [...new Set(out)];
}

function meetNames(a: readonly string[], b: readonly string[]): string[] {
  if (a.includes("*")) return [...b];
  if (b.includes("*")) return [...a];
  return a.filter((x) => b.includes(x));
}

function meetDomains(a: readonly string[], b: readonly string[]): string[] {
  const out = [
    ...a.filter((x) => b.some((y) => patternCovers(y, x))),
    ...b.filter((y) => a.some((x) => patternCovers(x, y))),
  ];
  return [...new Set(out)];
}

/**
 * The greatest record at or below both `a` and `b`, keeping `a`'s level and usage counters:
 * rights and-ed, roots and domains intersected, blocked lists united, limits minimised.
 * Used to derive a level's defaults under a caller's own bounds (SET_PERMS `level`).
 */
export function meetPermissions(a: Permissions, b: Permissions): Permissions {
  const out = clonePermissions(a);
  for (const right of RIGHTS) out[right] = a[right] && b[right];
  out.filesystem = {
    read: meetRoots(a.filesystem.read, b.filesystem.read),
    write: meetRoots(a.filesystem.write, b.filesystem.write),
    blocked: [...new Set([...a.filesystem.blocked, ...b.filesystem.blocked])],
  };
  out.exec = meetNames(a.exec, b.exec);
  out.blocked_commands = [...new Set([...a.blocked_commands, ...b.blocked_commands])];
  out.network = meetDomains(a.network, b.network);
  out.llm.max_tokens = minLimit(a.llm.max_tokens, b.llm.max_tokens);
  out.llm.max_calls = minLimit(a.llm.max_calls, b.llm.max_calls);
  out.max_exec_time_ms = Math.min(a.max_exec_time_ms, b.max_exec_time_ms);
  return out;
}
