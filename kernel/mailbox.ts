/**
 * Mailboxes: one bounded FIFO queue of messages per live identity, the waiters blocked in RECV,
 * and name validation for REGISTER. Owned by the kernel; SEND, RECV, BROADCAST and REGISTER
 * (`syscalls/ipc.ts`) are thin layers over it.
 *
 * Guarantees: messages are delivered in arrival order (hence FIFO per sender); a full mailbox
 * refuses new messages (backpressure) and never drops one; a mailbox lives as long as its
 * identity (a restarted agent keeps its id and so its mailbox) and is dropped when the identity
 * is released.
 * @module
 */
import v8 from "node:v8";
import { MAX_PAYLOAD } from "./protocol.ts";

/** Bytes reserved in a RECV response for its own fields (`success`, `count`, `remaining`...). */
export const RESPONSE_OVERHEAD = 256;
/**
 * Upper bound on the JSON bytes of one envelope apart from its message:
 * `{"from":<10 digits>,"from_name":<66>,"message":,"age_ms":<16>,"seq":<16>}` plus a comma.
 */
export const ENVELOPE_OVERHEAD = 192;
/** Largest message (serialized JSON, UTF-8 bytes): one message always fits in a RECV response. */
export const MAX_MESSAGE_BYTES = MAX_PAYLOAD - RESPONSE_OVERHEAD - ENVELOPE_OVERHEAD;
/** Name validation lives in `kernel/names.ts` (shared with SPAWN); re-exported here. */
export { MAX_NAME_LENGTH, nameProblem } from "./names.ts";

/** A message as it waits in a mailbox. */
interface Stored {
  readonly from: number;
  readonly fromName: string | null;
  /**
   * The message's JSON text. Kept as text, not as a parsed value: a parsed value can take many
   * times its JSON size in memory (`[{},{},...]`), a string at most twice.
   */
  readonly text: string;
  /** UTF-8 bytes of the message's JSON. */
  readonly bytes: number;
  /** Memory charged against the kernel-wide budget. */
  readonly cost: number;
  /** Upper bound on the UTF-8 bytes of the whole envelope's JSON, separator included. */
  readonly envelopeBytes: number;
  /** When it was delivered (ms since epoch). */
  readonly at: number;
  readonly seq: number;
}

/** A message as RECV returns it. */
export interface Envelope {
  /** Sender's id. */
  from: number;
  /** Sender's name at the time it sent, or null if it had none. */
  from_name: string | null;
  /** The message, any JSON value. */
  message: unknown;
  /** Milliseconds the message waited in the mailbox. */
  age_ms: number;
  /** Position in the receiver's mailbox: 1, 2, 3, ... without gaps. */
  seq: number;
}

/** Limits of every mailbox, and of all of them together. */
export interface MailboxLimits {
  /** Most messages waiting in one mailbox. */
  maxMessages: number;
  /** Most message bytes waiting in one mailbox. */
  maxBytes: number;
  /**
   * Most memory held by waiting messages in all mailboxes together: each message is charged
   * its in-memory string size plus {@link STORED_OVERHEAD}.
   */
  maxTotalBytes: number;
}

/** Bytes charged per stored message for its bookkeeping, on top of its text. */
export const STORED_OVERHEAD = 128;

/**
 * The default kernel-wide budget: 1 GiB, or a quarter of the V8 heap limit if that is less, so
 * that waiting messages can never exhaust the kernel's heap.
 */
export function defaultMailboxTotalBytes(): number {
  return Math.min(1024 ** 3, Math.floor(v8.getHeapStatistics().heap_size_limit / 4));
}

/** The outcome of one delivery attempt. */
export type DeliverResult =
  | { ok: true; seq: number }
  | { ok: false; reason: string };

class Mailbox {
  /** Queue with a moving head, compacted now and then (no O(n) shift per message). */
  items: Stored[] = [];
  head = 0;
  bytes = 0;
  nextSeq = 1;
  waiters = new Set<() => void>();

  get count(): number {
    return this.items.length - this.head;
  }

  wake(): void {
    if (this.waiters.size === 0) return;
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w();
  }
}

const encoder = new TextEncoder();

/** Upper bound on an envelope's JSON bytes given its message's bytes and sender's name. */
function envelopeSize(messageBytes: number, fromName: string | null): number {
  const nameBytes = fromName === null ? 4 : encoder.encode(JSON.stringify(fromName)).length;
  // 52 bytes of keys and punctuation, 10 for the id, 16 each for age_ms and seq.
  return messageBytes + nameBytes + 52 + 10 + 16 + 16;
}

/** The mailboxes of every live identity. */
export class Mailboxes {
  readonly #boxes = new Map<number, Mailbox>();
  #totalBytes = 0;

  /**
   * @param limits per-mailbox and kernel-wide bounds.
   * @param alive whether an identity still exists (no mailbox is made for one that does not).
   */
  constructor(
    readonly limits: MailboxLimits,
    private readonly alive: (id: number) => boolean = () => true,
  ) {}

  /** Memory charged for the messages waiting in all mailboxes (see {@link MailboxLimits}). */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Messages waiting for identity `id`. */
  pending(id: number): number {
    return this.#boxes.get(id)?.count ?? 0;
  }

  #box(id: number): Mailbox {
    let box = this.#boxes.get(id);
    if (!box) this.#boxes.set(id, box = new Mailbox());
    return box;
  }

  /**
   * Queue a message, given as its JSON `text` whose UTF-8 size is `bytes` (already checked to be
   * at most {@link MAX_MESSAGE_BYTES}), for identity `to`. Refuses, without side effects, when the mailbox or the
   * kernel-wide budget is full.
   */
  deliver(
    to: number,
    from: number,
    fromName: string | null,
    text: string,
    bytes: number,
  ): DeliverResult {
    if (!this.alive(to)) return { ok: false, reason: "the recipient no longer exists" };
    const envelopeBytes = envelopeSize(bytes, fromName);
    if (envelopeBytes > MAX_PAYLOAD - RESPONSE_OVERHEAD) {
      return { ok: false, reason: `the message is too large to ever fit in a RECV response` };
    }
    const box = this.#box(to);
    const { maxMessages, maxBytes, maxTotalBytes } = this.limits;
    if (box.count >= maxMessages) {
      return { ok: false, reason: `mailbox is full (${box.count} of ${maxMessages} messages)` };
    }
    if (box.bytes + bytes > maxBytes) {
      return {
        ok: false,
        reason:
          `mailbox is full (${box.bytes} bytes waiting; ${bytes} more would pass its ${maxBytes}-byte limit)`,
      };
    }
    // A V8 string is 1 byte per unit when all are Latin-1, else 2; pure ASCII iff bytes == length.
    const cost = (bytes === text.length ? bytes : 2 * text.length) + STORED_OVERHEAD;
    if (this.#totalBytes + cost > maxTotalBytes) {
      return {
        ok: false,
        reason:
          `the kernel's message memory is full (${this.#totalBytes} bytes waiting in all mailboxes, limit ${maxTotalBytes})`,
      };
    }
    const seq = box.nextSeq++;
    box.items.push({ from, fromName, text, bytes, cost, envelopeBytes, at: Date.now(), seq });
    box.bytes += bytes;
    this.#totalBytes += cost;
    box.wake();
    return { ok: true, seq };
  }

  /**
   * Take up to `max` messages, oldest first, whose envelopes fit in `budget` JSON bytes. With
   * `budget` = MAX_PAYLOAD - RESPONSE_OVERHEAD at least one waiting message always fits, since
   * {@link deliver} refuses any message whose envelope could not.
   */
  take(id: number, max: number, budget: number): Envelope[] {
    const box = this.#boxes.get(id);
    if (!box || box.count === 0 || max < 1) return [];
    const out: Envelope[] = [];
    const now = Date.now();
    let used = 0;
    let freed = 0;
    let freedCost = 0;
    while (box.head < box.items.length && out.length < max) {
      const m = box.items[box.head];
      if (used + m.envelopeBytes > budget) break;
      used += m.envelopeBytes;
      freed += m.bytes;
      freedCost += m.cost;
      out.push({
        from: m.from,
        from_name: m.fromName,
        message: JSON.parse(m.text),
        age_ms: now - m.at,
        seq: m.seq,
      });
      box.items[box.head++] = undefined as unknown as Stored;
    }
    box.bytes -= freed;
    this.#totalBytes -= freedCost;
    if (box.head === box.items.length) {
      box.items = [];
      box.head = 0;
    } else if (box.head > 1024 && box.head * 2 > box.items.length) {
      box.items = box.items.slice(box.head);
      box.head = 0;
    }
    return out;
  }

  /**
   * Resolve once identity `id` has a message waiting (true), or when `timeoutMs` passes or
   * `signal` aborts (false). Purely asynchronous: nothing else waits meanwhile.
   */
  waitFor(id: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.pending(id) > 0) return Promise.resolve(true);
    if (signal.aborted || timeoutMs <= 0 || !this.alive(id)) return Promise.resolve(false);
    const box = this.#box(id);
    return new Promise<boolean>((resolve) => {
      const finish = (got: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        box.waiters.delete(onMessage);
        resolve(got);
      };
      const onMessage = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      box.waiters.add(onMessage);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Drop identity `id`'s mailbox (its messages are discarded with it) and wake its waiters. */
  drop(id: number): void {
    const box = this.#boxes.get(id);
    if (!box) return;
    this.#boxes.delete(id);
    for (let k = box.head; k < box.items.length; k++) this.#totalBytes -= box.items[k].cost;
    box.wake();
  }
}
