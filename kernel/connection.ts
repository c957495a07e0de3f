/**
 * One client connection: reads frames, dispatches each through the registry, and writes the
 * responses back strictly in request order while later requests may already be running.
 * @module
 */
import { concatBytes, type DecodeError, type Frame, FrameDecoder } from "./frame.ts";
import type { Identity } from "./identity.ts";

/** A response queued for writing, in request order. */
interface Slot {
  data: Uint8Array | Promise<Uint8Array>;
  close: boolean;
}

/** How a connection turns a frame into a response (supplied by the server). */
export interface FrameHandler {
  /** Handle one frame. A promise must never reject. */
  handle(
    frame: Frame,
    conn: Connection,
  ): { data: Uint8Array | Promise<Uint8Array>; close: boolean };
  /** The error frame for a corrupt stream. */
  streamError(error: DecodeError, conn: Connection): Uint8Array;
}

const READ_SIZE = 64 * 1024;
/** Responses waiting to be written before the connection stops reading. */
const MAX_QUEUED = 4096;
/** Bytes gathered into one write. */
const WRITE_BATCH = 256 * 1024;
/** A written slot, holding nothing. */
const DONE: Slot = { data: new Uint8Array(0), close: false };

/** A live connection on one of the kernel's sockets. */
export class Connection {
  readonly abort = new AbortController();
  /** Time of the last byte received while a frame was partial (ms since epoch). */
  lastProgress = Date.now();
  #slots: Slot[] = [];
  #head = 0;
  #pumping = false;
  #closing = false;
  #closed = false;
  #drained: (() => void) | null = null;
  readonly #decoder: FrameDecoder;

  constructor(
    readonly id: number,
    readonly identity: Identity,
    private readonly conn: Deno.Conn,
    private readonly handler: FrameHandler,
    private readonly onClose: (conn: Connection) => void,
  ) {
    this.#decoder = new FrameDecoder(
      (frame) => this.#onFrame(frame),
      (error) => this.#enqueue({ data: handler.streamError(error, this), close: true }),
    );
  }

  /** True while a frame has been started and not finished. */
  get partial(): boolean {
    return this.#decoder.partial;
  }

  /** Read until the peer closes or the connection is closed. */
  async run(): Promise<void> {
    const buf = new Uint8Array(READ_SIZE);
    try {
      while (!this.#closing) {
        if (this.#slots.length - this.#head >= MAX_QUEUED) {
          await new Promise<void>((resolve) => this.#drained = resolve);
          continue;
        }
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.lastProgress = Date.now();
        this.#decoder.push(buf.subarray(0, n));
        if (!this.#pumping && this.#head < this.#slots.length) void this.#pump();
      }
    } catch {
      // Reset by peer, or closed under us: either way this connection is done.
    }
    if (!this.#closing) {
      // The peer closed its side: cancel work still running for it (a hung-up client's EXEC
      // must not run on), write whatever is already owed, then close.
      this.#closing = true;
      this.abort.abort();
      if (!this.#pumping) this.close();
    }
  }

  /** Close now: in-flight work is cancelled and unwritten responses are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    this.abort.abort();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    this.#drained?.();
    this.onClose(this);
  }

  #onFrame(frame: Frame): void {
    if (this.#closing) return;
    this.#enqueue(this.handler.handle(frame, this));
  }

  #enqueue(slot: Slot): void {
    this.#slots.push(slot);
    if (slot.close) this.#closing = true;
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#head < this.#slots.length && !this.#closed) {
        const slot = this.#slots[this.#head];
        if (slot.data instanceof Promise) {
          slot.data = await slot.data;
          continue;
        }
        // Gather consecutive ready responses into one write, releasing each slot as it is taken.
        const parts: Uint8Array[] = [];
        let total = 0;
        let closeAfter = false;
        while (this.#head < this.#slots.length && total < WRITE_BATCH) {
          const next = this.#slots[this.#head];
          if (next.data instanceof Promise) break;
          parts.push(next.data);
          total += next.data.length;
          this.#slots[this.#head++] = DONE;
          if (next.close) {
            closeAfter = true;
            break;
          }
        }
        this.#compact();
        await this.#writeAll(parts.length === 1 ? parts[0] : concatBytes(parts, total));
        if (closeAfter) {
          this.close();
          return;
        }
      }
    } catch {
      this.close();
      return;
    } finally {
      this.#pumping = false;
    }
    if (this.#closing && !this.#closed && this.#head >= this.#slots.length) this.close();
  }

  #compact(): void {
    if (this.#head === this.#slots.length) {
      this.#slots.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
    if (this.#drained && this.#slots.length - this.#head < MAX_QUEUED / 2) {
      const wake = this.#drained;
      this.#drained = null;
      wake();
    }
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += await this.conn.write(off === 0 ? data : data.subarray(off));
    }
  }
}
