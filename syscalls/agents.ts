/**
 * Agent management syscalls: SPAWN, KILL, LIST.
 * @module
 */
import { z } from "zod";
import { Op } from "../kernel/protocol.ts";
import { SyscallError } from "../kernel/errors.ts";
import {
  type AgentInfo,
  type AgentState,
  reservedEnvName,
  type SpawnSpec,
} from "../kernel/agents.ts";
import { type Level, LevelSchema } from "../sandbox/permissions.ts";
import { NameSchema } from "../kernel/names.ts";
import { defineSyscall } from "./registry.ts";

/**
 * Agent names: what `agentos logs <name>` and messaging address them by, and the name of their
 * workspace and log file. The same rule as REGISTER's names (`kernel/names.ts`).
 */
export const AgentNameSchema = NameSchema;

/** Longest delay a timer can hold (2^31 - 1 ms, about 24.8 days): longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

const DomainSchema = z.string().min(1).max(253).regex(
  /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/,
  "must be a host name like example.com, *.example.com or host:port",
);

/** A process argument or environment value: the OS cannot pass a NUL byte. */
const NoNulString = z.string().regex(/^[^\0]*$/, "must not contain a NUL byte");

const LimitsSchema = z.object({
  memory_mb: z.number().int().positive().max(1_048_576).optional(),
  cpu_time_ms: z.number().int().positive().max(31 * 86_400_000).optional(),
  timeout_ms: z.number().int().positive().max(MAX_TIMER_MS).optional(),
  pids: z.number().int().positive().max(100_000).optional(),
}).strict();

const SpawnSchema = z.object({
  name: AgentNameSchema.optional(),
  script: z.string().min(1).max(512 * 1024),
  level: LevelSchema.optional(),
  sandboxed: z.boolean().optional(),
  network: z.union([z.boolean(), z.array(DomainSchema).max(256)]).optional(),
  can_spawn: z.boolean().optional(),
  limits: LimitsSchema.optional(),
  args: z.array(NoNulString.max(64 * 1024)).max(256).optional(),
  env: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be an environment variable name"),
    NoNulString.max(64 * 1024),
  ).optional(),
  restart_policy: z.enum(["never", "on-failure", "always"]).optional(),
  max_restarts: z.number().int().nonnegative().max(1000).optional(),
  restart_window: z.number().int().positive().max(31 * 86_400_000).optional(),
}).strict();

/** Response of SPAWN. */
export interface SpawnResponse {
  success: true;
  /** The new agent's id (also its kernel identity and `AGENTOS_AGENT_ID`). */
  agent_id: number;
  /** Same as `agent_id`. */
  id: number;
  name: string;
  pid: number;
  level: Level;
}

/** SPAWN (0x10): start an agent as a sandboxed Deno subprocess. */
export const spawn = defineSyscall({
  op: Op.SPAWN,
  name: "SPAWN",
  summary: "Start an agent: a Deno subprocess whose runtime flags come from its permission level.",
  schema: SpawnSchema,
  right: "can_spawn",
  emptyResponse: { agent_id: 0, id: 0, name: "", pid: 0, level: "" },
  handler: async (input, ctx): Promise<SpawnResponse> => {
    const env = input.env ?? {};
    const reserved = Object.keys(env).filter(reservedEnvName);
    if (reserved.length) {
      throw new SyscallError(
        "INVALID_MSG",
        `SPAWN: field "env": ${
          reserved.join(", ")
        } may not be set (reserved for the kernel and runtime)`,
      );
    }
    if (JSON.stringify(env).length > 256 * 1024) {
      throw new SyscallError("INVALID_MSG", 'SPAWN: field "env": over 256 KiB in total');
    }
    const level: Level = input.level ?? (input.sandboxed === false ? "standard" : "sandboxed");
    const network = input.network === undefined || input.network === false
      ? undefined
      : input.network === true
      ? ["*"]
      : input.network;
    const spec: SpawnSpec = {
      name: input.name,
      script: input.script,
      level,
      network: network && network.length ? network : undefined,
      canSpawn: input.can_spawn ?? false,
      limits: input.limits ?? {},
      args: input.args ?? [],
      env,
      restartPolicy: input.restart_policy ?? "never",
      maxRestarts: input.max_restarts ?? 5,
      restartWindowMs: input.restart_window ?? 60_000,
    };
    const info = await ctx.kernel.agents.spawn(spec, ctx.identity);
    return {
      success: true,
      agent_id: info.id,
      id: info.id,
      name: info.name,
      pid: info.pid ?? 0,
      level: info.level,
    };
  },
});

/** Response of KILL. */
export interface KillResponse {
  success: true;
  killed: boolean;
  agent_id: number;
  name: string;
  state: AgentState;
}

/** KILL (0x11): stop an agent and its descendants (SIGTERM, grace, SIGKILL). */
export const kill = defineSyscall({
  op: Op.KILL,
  name: "KILL",
  summary: "Stop an agent and its descendants: SIGTERM, a grace period, then SIGKILL.",
  schema: z.union([
    z.object({ name: AgentNameSchema }).strict(),
    z.object({ id: z.number().int().positive().max(0xffff_ffff) }).strict(),
  ]),
  right: null,
  emptyResponse: { killed: false, agent_id: 0 },
  handler: async (input, ctx): Promise<KillResponse> => {
    const target = "id" in input ? { id: input.id } : { name: input.name };
    const before = ctx.kernel.agents.find(target);
    const wasLive = before !== undefined && !before.finished;
    const agent = await ctx.kernel.agents.kill(target, ctx.identity);
    return {
      success: true,
      killed: wasLive,
      agent_id: agent.id,
      name: agent.name,
      state: agent.state,
    };
  },
});

/**
 * LIST (0x12): agents, live and recently finished — every agent for an unrestricted caller,
 * otherwise the caller itself and its descendants only.
 */
export const list = defineSyscall({
  op: Op.LIST,
  name: "LIST",
  summary:
    "List agents (all for unrestricted callers, else self and descendants): id, name, pid, state, uptime, level, parent, exit code and reason, restarts.",
  schema: z.object({}).strict(),
  right: null,
  emptyResponse: {},
  handler: (_input, ctx): AgentInfo[] => ctx.kernel.agents.list(ctx.identity),
});
