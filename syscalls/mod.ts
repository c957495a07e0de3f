/**
 * Every syscall the kernel serves, in one list. The server's dispatch table, the SDK's types
 * and the docs' table all come from here.
 * @module
 */
import type { Syscall } from "./registry.ts";
import { exit, kernelStatus, noop, shutdown } from "./core.ts";

// Permissions and host syscalls
import { getPerms, setPerms } from "./perms.ts";
import { read, write } from "./fs.ts";
import { exec } from "./exec.ts";
import { http } from "./http.ts";

// Agents
import { kill, list, spawn } from "./agents.ts";

// Messaging
import { broadcast, recv, register, send } from "./ipc.ts";

// THINK
import { think } from "./think.ts";

/** The registry, keyed by op name (types for the SDK come from this object). */
export const syscalls = {
  NOOP: noop,
  EXIT: exit,
  KERNEL_STATUS: kernelStatus,
  SHUTDOWN: shutdown,
  // Permissions and host syscalls
  GET_PERMS: getPerms,
  SET_PERMS: setPerms,
  READ: read,
  WRITE: write,
  EXEC: exec,
  HTTP: http,
  // Agents
  SPAWN: spawn,
  KILL: kill,
  LIST: list,
  // Messaging
  SEND: send,
  RECV: recv,
  BROADCAST: broadcast,
  REGISTER: register,
  // THINK
  THINK: think,
} as const;

/**
 * The registry's type: op name to declaration.
 * @internal The SDK derives `RequestFor` / `ResponseFor` from it.
 */
export type Syscalls = typeof syscalls;

/** All syscalls as a list, for the dispatch table. */
export const allSyscalls: readonly Syscall[] = Object.values(syscalls) as Syscall[];
