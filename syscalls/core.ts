/**
 * Core syscalls: NOOP, EXIT, and the kernel-management extensions KERNEL_STATUS and SHUTDOWN.
 * @module
 */
import { z } from "zod";
import { Op } from "../kernel/protocol.ts";
import { permissionDenied } from "../kernel/errors.ts";
import type { Level } from "../sandbox/permissions.ts";
import { defineRawSyscall, defineSyscall } from "./registry.ts";

/** NOOP (0x00): echoes its payload bytes unchanged. */
export const noop = defineRawSyscall({
  op: Op.NOOP,
  name: "NOOP",
  summary: "Echo the payload bytes unchanged.",
  handler: (payload) => payload,
});

/** Response of EXIT. */
export interface ExitResponse {
  success: true;
  /** The caller's id. */
  agent_id: number;
  /** Always true: the kernel closes the connection after this response. */
  closing: true;
}

/** EXIT (0xFF): acknowledges, then the kernel closes this connection. */
export const exit = defineSyscall({
  op: Op.EXIT,
  name: "EXIT",
  summary: "Acknowledge, then close this connection.",
  schema: z.object({}).loose(),
  right: null,
  emptyResponse: {},
  closeAfter: true,
  handler: (_input, ctx): ExitResponse => ({
    success: true,
    agent_id: ctx.identity.id,
    closing: true,
  }),
});

/** Response of KERNEL_STATUS. */
export interface KernelStatus {
  success: true;
  /** The kernel's version, e.g. `"0.1.0"`. */
  version: string;
  /** The kernel's process id. */
  pid: number;
  /** Milliseconds since the kernel started. */
  uptime_ms: number;
  /** The main socket's path. */
  socket: string;
  /** The state directory. */
  state_dir: string;
  /** Open connections, this one included. */
  connections: number;
  /** Live identities (connections and agents). */
  identities: number;
  /** The caller's id. */
  agent_id: number;
  /** The caller's permission level. */
  level: Level;
}

/** KERNEL_STATUS (0xF0): version, uptime, socket and connection count. */
export const kernelStatus = defineSyscall({
  op: Op.KERNEL_STATUS,
  name: "KERNEL_STATUS",
  summary: "Kernel version, pid, uptime, socket, state directory and connection count.",
  schema: z.object({}).strict(),
  right: null,
  emptyResponse: {},
  handler: (_input, ctx): KernelStatus => {
    const k = ctx.kernel;
    return {
      success: true,
      version: k.version,
      pid: Deno.pid,
      uptime_ms: Date.now() - k.startedAt,
      socket: k.config.socket,
      state_dir: k.layout.root,
      connections: k.server.connectionCount,
      identities: k.identities.size,
      agent_id: ctx.identity.id,
      level: ctx.identity.permissions.level,
    };
  },
});

/** Response of SHUTDOWN. */
export interface ShutdownResponse {
  success: true;
  /** Always true: the kernel starts its clean shutdown right after this response. */
  stopping: true;
}

/** SHUTDOWN (0xF1): clean remote shutdown; unrestricted callers only. */
export const shutdown = defineSyscall({
  op: Op.SHUTDOWN,
  name: "SHUTDOWN",
  summary: "Shut the kernel down cleanly (unrestricted callers only).",
  schema: z.object({ reason: z.string().max(200).optional() }).strict(),
  right: null,
  emptyResponse: {},
  handler: (input, ctx): ShutdownResponse => {
    if (ctx.identity.permissions.level !== "unrestricted") {
      throw permissionDenied("only an unrestricted caller may stop the kernel");
    }
    // Answer first; the shutdown starts once this response has had time to be written.
    setTimeout(
      () => void ctx.kernel.shutdown(input.reason ?? `SHUTDOWN from identity ${ctx.identity.id}`),
      20,
    );
    return { success: true, stopping: true };
  },
});
