/**
 * The permission record (DESIGN section 4): five levels, their default records, and the zod
 * schema that GET_PERMS returns and SET_PERMS accepts.
 * @module
 */
import { z } from "zod";

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
