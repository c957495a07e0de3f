/**
 * The syscall registry (DESIGN section 6): every op is declared once as
 * `{op, name, schema, right, handler}`. The server dispatches only through it, and the SDK's
 * types and the docs' table are derived from it.
 * @module
 */
import type { z } from "zod";
import type { OpName } from "../kernel/protocol.ts";
import type { Right } from "../sandbox/permissions.ts";
import type { Identity } from "../kernel/identity.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { InFlightBound } from "../kernel/inflight.ts";

/** What a handler knows about the call it serves. */
export interface SyscallContext {
  /** Who is calling. Never taken from the request header. */
  readonly identity: Identity;
  /** The kernel's services. */
  readonly kernel: Kernel;
  /** Id of the connection the call came on. */
  readonly connectionId: number;
  /** Aborted when the connection closes or the kernel shuts down. */
  readonly signal: AbortSignal;
}

/**
 * A syscall whose payload is JSON validated by `schema`.
 * @internal Kernel side; SDK users see its types through `RequestFor` / `ResponseFor`.
 */
export interface JsonSyscall<S extends z.ZodType = z.ZodType, R = unknown> {
  readonly kind: "json";
  readonly op: number;
  readonly name: OpName;
  /** One line for the docs table. */
  readonly summary: string;
  readonly schema: S;
  /** The boolean right the caller needs, or null if every identity may call it. */
  readonly right: Right | null;
  /** The op's usual response fields with empty values, merged into its error responses. */
  readonly emptyResponse: Record<string, unknown>;
  /** Close the connection after answering (EXIT). */
  readonly closeAfter?: boolean;
  /** How many calls may run at once (ops that hold processes or sockets); over it: QUOTA_EXCEEDED. */
  readonly maxInFlight?: InFlightBound;
  readonly handler: (input: z.output<S>, ctx: SyscallContext) => R | Promise<R>;
}

/** A syscall that takes and returns raw bytes (NOOP). */
export interface RawSyscall {
  readonly kind: "raw";
  readonly op: number;
  readonly name: OpName;
  readonly summary: string;
  readonly right: null;
  readonly handler: (payload: Uint8Array, ctx: SyscallContext) => Uint8Array;
}

/** Any registered syscall. */
export type Syscall = JsonSyscall | RawSyscall;

/** Declare a JSON syscall; the generic parameters carry request and response types to the SDK. */
export function defineSyscall<S extends z.ZodType, R>(
  def: Omit<JsonSyscall<S, R>, "kind">,
): JsonSyscall<S, R> {
  return { kind: "json", ...def };
}

/** Declare a raw-bytes syscall. */
export function defineRawSyscall(def: Omit<RawSyscall, "kind" | "right">): RawSyscall {
  return { kind: "raw", right: null, ...def };
}

/** Index syscalls by opcode, refusing duplicates. */
export function buildDispatchTable(syscalls: readonly Syscall[]): (Syscall | undefined)[] {
  const table: (Syscall | undefined)[] = new Array(256);
  for (const s of syscalls) {
    if (table[s.op]) throw new Error(`opcode 0x${s.op.toString(16)} declared twice`);
    table[s.op] = s;
  }
  return table;
}

/**
 * Request type of a JSON syscall (what a client sends).
 * @internal The SDK exposes it as `RequestFor<"OP">`.
 */
export type RequestOf<T> = T extends JsonSyscall<infer S, unknown> ? z.input<S> : never;
/**
 * Response type of a JSON syscall (what a client gets on success).
 * @internal The SDK exposes it as `ResponseFor<"OP">`.
 */
export type ResponseOf<T> = T extends JsonSyscall<z.ZodType, infer R> ? R : never;
