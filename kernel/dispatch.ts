/**
 * Turning one frame into one response through the registry: JSON decoding, the right check,
 * zod validation, the handler, and error mapping. Nothing a client sends can throw out of here.
 * @module
 */
import type { Frame } from "./frame.ts";
import { SyscallError } from "./errors.ts";
import { errorFrame, jsonFrame } from "./response.ts";
import type { Identity } from "./identity.ts";
import type { Kernel } from "./kernel.ts";
import type { JsonSyscall, Syscall, SyscallContext } from "../syscalls/registry.ts";
import type { z } from "zod";
import { encodeFrame } from "./frame.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The caller of one dispatch. */
export interface Caller {
  readonly connectionId: number;
  readonly identity: Identity;
  readonly signal: AbortSignal;
}

/** Dispatch `frame` for `caller`; the returned promise (if any) never rejects. */
export function dispatch(
  table: readonly (Syscall | undefined)[],
  kernel: Kernel,
  frame: Frame,
  caller: Caller,
): Uint8Array | Promise<Uint8Array> {
  const { op } = frame;
  const id = caller.identity.id;
  const syscall = table[op];
  if (!syscall) {
    return errorFrame(
      op,
      id,
      "NOT_FOUND",
      `unknown op 0x${op.toString(16).padStart(2, "0")}; run \`agentos call --help\` for the list`,
    );
  }
  const ctx: SyscallContext = {
    identity: caller.identity,
    kernel,
    connectionId: caller.connectionId,
    signal: caller.signal,
  };
  if (syscall.kind === "raw") {
    try {
      return encodeFrame(op, id, syscall.handler(frame.payload, ctx));
    } catch (err) {
      return failure(syscall.op, id, err, {}, kernel);
    }
  }
  return dispatchJson(syscall, frame.payload, ctx, kernel);
}

function dispatchJson(
  syscall: JsonSyscall,
  payload: Uint8Array,
  ctx: SyscallContext,
  kernel: Kernel,
): Uint8Array | Promise<Uint8Array> {
  const { op, emptyResponse } = syscall;
  const id = ctx.identity.id;
  let raw: unknown = {};
  if (payload.length > 0) {
    try {
      raw = JSON.parse(decoder.decode(payload));
    } catch (err) {
      const why = err instanceof SyntaxError ? err.message : "payload is not valid UTF-8";
      return errorFrame(
        op,
        id,
        "INVALID_MSG",
        `${syscall.name}: payload is not valid JSON (${why})`,
        emptyResponse,
      );
    }
  }
  if (syscall.right && !ctx.identity.permissions[syscall.right]) {
    const reason =
      `${syscall.name} needs ${syscall.right}, which level ${ctx.identity.permissions.level} does not grant`;
    kernel.bus.emit("syscall.blocked", { identityId: id, op: syscall.name, reason });
    return errorFrame(op, id, "PERMISSION_DENIED", `Permission denied: ${reason}`, emptyResponse);
  }
  const parsed = syscall.schema.safeParse(raw);
  if (!parsed.success) {
    return errorFrame(
      op,
      id,
      "INVALID_MSG",
      `${syscall.name}: ${describeIssues(parsed.error)}`,
      emptyResponse,
    );
  }
  let release: (() => void) | undefined;
  if (syscall.maxInFlight) {
    const slot = kernel.server.inFlight.acquire(op, id, syscall.maxInFlight);
    if (typeof slot === "string") {
      return errorFrame(op, id, "QUOTA_EXCEEDED", `${syscall.name}: ${slot}`, emptyResponse);
    }
    release = slot;
  }
  let result: unknown;
  try {
    result = syscall.handler(parsed.data, ctx);
  } catch (err) {
    release?.();
    return failure(op, id, err, emptyResponse, kernel, syscall.name);
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => jsonFrame(op, id, value, emptyResponse),
      (err) => failure(op, id, err, emptyResponse, kernel, syscall.name),
    ).finally(release);
  }
  release?.();
  return jsonFrame(op, id, result, emptyResponse);
}

/** Render zod issues as one sentence naming each offending field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join(".") : "payload";
    return `field "${path}": ${issue.message}`;
  }).join("; ");
}

function failure(
  op: number,
  id: number,
  err: unknown,
  emptyResponse: Record<string, unknown>,
  kernel: Kernel,
  name = "",
): Uint8Array {
  if (err instanceof SyscallError) {
    if (err.code === "PERMISSION_DENIED") {
      kernel.bus.emit("syscall.blocked", { identityId: id, op: name, reason: err.message });
    }
    return errorFrame(op, id, err.code, err.message, emptyResponse);
  }
  kernel.log.error("syscall failed", { op: name, error: String(err) });
  return errorFrame(
    op,
    id,
    "ERROR",
    `${name || "syscall"} failed: ${err instanceof Error ? err.message : String(err)}`,
    emptyResponse,
  );
}
