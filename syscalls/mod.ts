/**
 * Every syscall the kernel serves, in one list. The server's dispatch table, the SDK's types
 * and the docs' table all come from here.
 * @module
 */
import type { Syscall } from "./registry.ts";
import { exit, kernelStatus, noop, shutdown } from "./core.ts";

// imports: issue 3 (permissions and host syscalls)
import { getPerms, setPerms } from "./perms.ts";
import { read, write } from "./fs.ts";
import { exec } from "./exec.ts";
import { http } from "./http.ts";

// imports: issue 4 (agents)
import { kill, list, spawn } from "./agents.ts";

// imports: issue 5 (messaging)
import { broadcast, recv, register, send } from "./ipc.ts";

// imports: issue 6 (think)
import { think } from "./think.ts";

/** The registry, keyed by op name (types for the SDK come from this object). */
export const syscalls = {
  NOOP: noop,
  EXIT: exit,
  KERNEL_STATUS: kernelStatus,
  SHUTDOWN: shutdown,
  // syscalls: issue 3 (permissions and host syscalls)
  GET_PERMS: getPerms,
  SET_PERMS: setPerms,
  READ: read,
  WRITE: write,
  EXEC: exec,
  HTTP: http,
  // syscalls: issue 4 (agents)
  SPAWN: spawn,
  KILL: kill,
  LIST: list,
  // syscalls: issue 5 (messaging)
  SEND: send,
  RECV: recv,
  BROADCAST: broadcast,
  REGISTER: register,
  // syscalls: issue 6 (think)
  THINK: think,
} as const;

/**
 * The registry's type: op name to declaration.
 * @internal The SDK derives `RequestFor` / `ResponseFor` from it.
 */
export type Syscalls = typeof syscalls;

/** All syscalls as a list, for the dispatch table. */
export const allSyscalls: readonly Syscall[] = Object.values(syscalls) as Syscall[];
