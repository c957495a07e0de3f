/**
 * Messaging syscalls: REGISTER (0x23), SEND (0x20), RECV (0x21), BROADCAST (0x22).
 * Every level may use them (DESIGN section 4); the mailboxes live in `kernel/mailbox.ts`.
 * @module
 */
import { z } from "zod";
import { MAX_PAYLOAD, Op } from "../kernel/protocol.ts";
import { permissionDenied, SyscallError } from "../kernel/errors.ts";
import { type Envelope, MAX_MESSAGE_BYTES, RESPONSE_OVERHEAD } from "../kernel/mailbox.ts";
import { NameSchema as IdentityNameSchema } from "../kernel/names.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { Identity } from "../kernel/identity.ts";
import { defineSyscall, type SyscallContext } from "./registry.ts";

/** Number of messages a RECV returns at most when it gives no `max`. */
export const RECV_DEFAULT_MAX = 100;
/** Largest `max` a RECV may ask for. */
export const RECV_MAX_MAX = 10_000;
/** Default time a blocking RECV waits. */
export const RECV_DEFAULT_TIMEOUT_MS = 30_000;
/** Longest time a blocking RECV may wait. */
export const RECV_MAX_TIMEOUT_MS = 600_000;
/** Most entries listed in BROADCAST's `skipped` (the count is always exact). */
export const BROADCAST_MAX_SKIPPED_LISTED = 1_000;

/** An identity name (the rule of `nameProblem`, shared with SPAWN). */
const NameSchema = IdentityNameSchema;

/** A message: any JSON value (the key must be present; `null` is a value). */
const MessageSchema = z.unknown().describe("any JSON value");

// ---------------------------------------------------------------------------------------------
// Shared helpers

const encoder = new TextEncoder();
/** Scratch space for measuring UTF-8 size without allocating (3 bytes per UTF-16 unit at most). */
const scratch = new Uint8Array(MAX_MESSAGE_BYTES * 3 + 4);

/** `message` as JSON text and its UTF-8 size; refuses messages too large to ever be received. */
function serialize(op: string, message: unknown): { text: string; bytes: number } {
  let text: string | undefined;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    throw new SyscallError(
      "INVALID_MSG",
      `${op}: field "message" cannot be serialized (${(err as Error).message})`,
    );
  }
  if (text === undefined) {
    throw new SyscallError("INVALID_MSG", `${op}: field "message" must be a JSON value`);
  }
  // Each UTF-16 unit is at least one UTF-8 byte, so a long string is too large already.
  const bytes = text.length > MAX_MESSAGE_BYTES
    ? text.length
    : encoder.encodeInto(text, scratch).written;
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new SyscallError(
      "INVALID_MSG",
      `${op}: field "message" is ${bytes} bytes as JSON, over the ${MAX_MESSAGE_BYTES}-byte limit ` +
        `(a message must fit in one RECV response); split it or pass a file path instead`,
    );
  }
  return { text, bytes };
}

/** Queue one message, publishing `message.received`; returns its seq or the refusal reason. */
function deliver(
  kernel: Kernel,
  to: Identity,
  from: Identity,
  message: { text: string; bytes: number },
): { ok: true; seq: number } | { ok: false; reason: string } {
  const r = kernel.mailboxes.deliver(to.id, from.id, from.name, message.text, message.bytes);
  if (r.ok) kernel.bus.emit("message.received", { to: to.id, from: from.id, seq: r.seq });
  return r;
}

function describe(identity: Identity): string {
  return identity.name === null
    ? `identity ${identity.id}`
    : `"${identity.name}" (id ${identity.id})`;
}

// ---------------------------------------------------------------------------------------------
// REGISTER

/** Response of REGISTER. */
export interface RegisterResponse {
  success: true;
  /** The caller's id. */
  agent_id: number;
  /** The name the caller now holds. */
  name: string;
}

/** REGISTER (0x23): take a unique name among live identities. */
export const register = defineSyscall({
  op: Op.REGISTER,
  name: "REGISTER",
  summary: "Take a unique name (released when the caller disconnects or exits for good).",
  schema: z.object({ name: NameSchema }).strict(),
  right: null,
  emptyResponse: { agent_id: null, name: null },
  handler: (input, ctx): RegisterResponse => {
    const me = ctx.identity;
    if (me.kind === "agent" && me.name !== null && me.name !== input.name) {
      throw permissionDenied(
        `a spawned agent keeps its spawn name "${me.name}" and cannot register another`,
      );
    }
    if (!ctx.kernel.identities.claimName(me.id, input.name)) {
      const holder = ctx.kernel.identities.byName(input.name);
      throw new SyscallError(
        "ERROR",
        `REGISTER: the name "${input.name}" is taken by ${
          holder ? `identity ${holder.id}` : "another identity"
        }; pick another name or wait until its owner leaves`,
      );
    }
    return { success: true, agent_id: me.id, name: input.name };
  },
});

// ---------------------------------------------------------------------------------------------
// SEND

const SendSchema = z.object({
  to: z.number().int().min(1).max(0xffff_ffff).optional().describe("recipient's id"),
  to_name: NameSchema.optional().describe("recipient's name (give exactly one of to, to_name)"),
  message: MessageSchema,
}).strict().superRefine((v, ctx) => {
  if ((v.to === undefined) === (v.to_name === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["to"],
      message: 'give exactly one of "to" (an id) or "to_name" (a name)',
    });
  }
});

/** Response of SEND. */
export interface SendResponse {
  success: true;
  /** The recipient's id. */
  delivered_to: number;
  /** The message's position in the recipient's mailbox. */
  seq: number;
}

/** SEND (0x20): queue a message for one identity, by id or name. */
export const send = defineSyscall({
  op: Op.SEND,
  name: "SEND",
  summary: "Queue a JSON message for one identity (by id or name); a full mailbox refuses.",
  schema: SendSchema,
  right: null,
  emptyResponse: { delivered_to: null },
  handler: (input, ctx): SendResponse => {
    const message = serialize("SEND", input.message);
    const { identities } = ctx.kernel;
    const target = input.to !== undefined
      ? identities.get(input.to)
      : identities.byName(input.to_name!);
    if (!target) {
      throw new SyscallError(
        "NOT_FOUND",
        input.to !== undefined
          ? `SEND: no live identity has id ${input.to}`
          : `SEND: no live identity is named "${input.to_name}" (names are released when their owner leaves)`,
      );
    }
    const r = deliver(ctx.kernel, target, ctx.identity, message);
    if (!r.ok) {
      throw new SyscallError(
        "QUOTA_EXCEEDED",
        `SEND: not delivered to ${describe(target)}: ${r.reason}; retry after it receives`,
      );
    }
    return { success: true, delivered_to: target.id, seq: r.seq };
  },
});

// ---------------------------------------------------------------------------------------------
// RECV

const RecvSchema = z.object({
  max: z.number().int().min(1).max(RECV_MAX_MAX).optional()
    .describe("most messages to return (default 100)"),
  wait: z.boolean().optional()
    .describe("block until a message arrives or the timeout passes"),
  timeout_ms: z.number().int().min(0).max(RECV_MAX_TIMEOUT_MS).optional()
    .describe("how long wait blocks, in ms (default 30000); only with wait: true"),
}).strict().superRefine((v, ctx) => {
  if (v.timeout_ms !== undefined && v.wait !== true) {
    ctx.addIssue({
      code: "custom",
      path: ["timeout_ms"],
      message: 'only applies with "wait": true',
    });
  }
});

/** Response of RECV. */
export interface RecvResponse {
  success: true;
  /** Number of messages returned. */
  count: number;
  /** Oldest first. */
  messages: Envelope[];
  /** Messages still waiting in the mailbox after this call. */
  remaining: number;
}

/** Leave room for the response's own fields; every stored message fits in the rest. */
const RECV_BUDGET = MAX_PAYLOAD - RESPONSE_OVERHEAD;

function recvNow(ctx: SyscallContext, max: number): RecvResponse {
  const id = ctx.identity.id;
  const messages = ctx.kernel.mailboxes.take(id, max, RECV_BUDGET);
  return {
    success: true,
    count: messages.length,
    messages,
    remaining: ctx.kernel.mailboxes.pending(id),
  };
}

async function recvWait(
  ctx: SyscallContext,
  max: number,
  timeoutMs: number,
): Promise<RecvResponse> {
  const { kernel, identity, signal } = ctx;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = recvNow(ctx, max);
    const left = deadline - Date.now();
    if (r.count > 0 || left <= 0 || signal.aborted || !kernel.identities.get(identity.id)) {
      return r;
    }
    await kernel.mailboxes.waitFor(identity.id, left, signal);
  }
}

/** RECV (0x21): take waiting messages, oldest first; optionally block until one arrives. */
export const recv = defineSyscall({
  op: Op.RECV,
  name: "RECV",
  summary: "Take waiting messages, oldest first (wait: true blocks until one arrives).",
  schema: RecvSchema,
  right: null,
  emptyResponse: { count: 0, messages: [] },
  handler: (input, ctx): RecvResponse | Promise<RecvResponse> => {
    const max = input.max ?? RECV_DEFAULT_MAX;
    if (!input.wait) return recvNow(ctx, max);
    const first = recvNow(ctx, max);
    if (first.count > 0) return first;
    return recvWait(ctx, max, input.timeout_ms ?? RECV_DEFAULT_TIMEOUT_MS);
  },
});

// ---------------------------------------------------------------------------------------------
// BROADCAST

/** One recipient a BROADCAST could not deliver to. */
export interface SkippedRecipient {
  id: number;
  name: string | null;
  reason: string;
}

/** Response of BROADCAST. */
export interface BroadcastResponse {
  success: true;
  /** Recipients the message was queued for. */
  delivered_count: number;
  /** Recipients whose mailbox was full (the first 1,000 of them). */
  skipped: SkippedRecipient[];
  /** How many recipients were skipped in all. */
  skipped_count: number;
}

/** BROADCAST (0x22): queue a message for every live named identity. */
export const broadcast = defineSyscall({
  op: Op.BROADCAST,
  name: "BROADCAST",
  summary:
    "Queue a message for every live named identity (the caller only with include_self); full mailboxes are reported in skipped.",
  schema: z.object({
    message: MessageSchema,
    include_self: z.boolean().optional().describe("also deliver to the caller (default false)"),
  }).strict(),
  right: null,
  emptyResponse: { delivered_count: 0, skipped: [], skipped_count: 0 },
  handler: (input, ctx): BroadcastResponse => {
    const message = serialize("BROADCAST", input.message);
    const me = ctx.identity;
    const recipients: Identity[] = [];
    for (const identity of ctx.kernel.identities.all()) {
      if (identity.id === me.id ? input.include_self === true : identity.name !== null) {
        recipients.push(identity);
      }
    }
    let delivered = 0;
    const skipped: SkippedRecipient[] = [];
    let skippedCount = 0;
    for (const to of recipients) {
      const r = deliver(ctx.kernel, to, me, message);
      if (r.ok) {
        delivered++;
      } else {
        skippedCount++;
        if (skipped.length < BROADCAST_MAX_SKIPPED_LISTED) {
          skipped.push({ id: to.id, name: to.name, reason: r.reason });
        }
      }
    }
    return { success: true, delivered_count: delivered, skipped, skipped_count: skippedCount };
  },
});
