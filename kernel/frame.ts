/**
 * Frame encoding and a streaming decoder (DESIGN section 2).
 *
 * The decoder accepts bytes in chunks of any size: a frame split at every byte, or a thousand
 * frames in one read. Each byte is copied at most once (into a frame's own payload buffer, or
 * into the small carry-over of a split header), so decoding is linear in the input.
 * @module
 */
import { HEADER_LEN, MAGIC, MAX_PAYLOAD } from "./protocol.ts";

/** One decoded frame. `payload` is only valid until the callback returns unless copied. */
export interface Frame {
  agentId: number;
  op: number;
  payload: Uint8Array;
}

/** Why the decoder gave up on a stream; after this the stream cannot be resynchronised. */
export interface DecodeError {
  reason: "bad_magic" | "too_large";
  message: string;
}

/** Encode one frame: the 17-byte header followed by `payload`. */
export function encodeFrame(op: number, agentId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LEN + payload.length);
  writeHeader(out, 0, op, agentId, payload.length);
  out.set(payload, HEADER_LEN);
  return out;
}

/** Join `parts` into one buffer of `total` bytes (their summed length unless given). */
export function concatBytes(
  parts: readonly Uint8Array[],
  total = parts.reduce((n, p) => n + p.length, 0),
): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Write a header into `buf` at `offset`. */
export function writeHeader(
  buf: Uint8Array,
  offset: number,
  op: number,
  agentId: number,
  length: number,
): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_LEN);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, agentId >>> 0, true);
  dv.setUint8(8, op);
  dv.setUint32(9, length >>> 0, true);
  dv.setUint32(13, Math.floor(length / 0x1_0000_0000), true);
}

/** Parsed header fields; `length` is exact up to 2^53 and flagged `huge` beyond. */
export interface Header {
  magic: number;
  agentId: number;
  op: number;
  length: number;
}

/** Read a header from `buf` at `offset` (which must hold HEADER_LEN bytes). */
export function readHeader(buf: Uint8Array, offset: number): Header {
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_LEN);
  const lo = dv.getUint32(9, true);
  const hi = dv.getUint32(13, true);
  return {
    magic: dv.getUint32(0, true),
    agentId: dv.getUint32(4, true),
    op: dv.getUint8(8),
    // Anything with high bits set is over the limit; keep the number finite and large.
    length: hi === 0 ? lo : hi * 0x1_0000_0000 + lo,
  };
}

/**
 * Incremental frame decoder. Feed it chunks with {@link FrameDecoder.push}; it calls `onFrame`
 * for each complete frame in order and `onError` once if the stream is corrupt, after which it
 * ignores all further input.
 */
export class FrameDecoder {
  #header = new Uint8Array(HEADER_LEN);
  #headerFill = 0;
  #current: Header | null = null;
  #payload: Uint8Array | null = null;
  #payloadFill = 0;
  #failed = false;
  readonly #maxPayload: number;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly onError: (error: DecodeError) => void,
    maxPayload = MAX_PAYLOAD,
  ) {
    this.#maxPayload = maxPayload;
  }

  /** True while a frame has been started but not finished. */
  get partial(): boolean {
    return this.#headerFill > 0 || this.#current !== null;
  }

  /** True once the stream has been declared corrupt. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Consume `chunk`. The chunk may be reused by the caller after this returns. */
  push(chunk: Uint8Array): void {
    let off = 0;
    const n = chunk.length;
    while (off < n && !this.#failed) {
      if (this.#current === null) {
        if (this.#headerFill === 0 && n - off >= HEADER_LEN) {
          // Fast path: a whole header (and often the whole frame) sits in the chunk.
          const h = readHeader(chunk, off);
          if (!this.#accept(h)) return;
          off += HEADER_LEN;
          if (n - off >= h.length) {
            this.#current = null;
            this.onFrame({
              agentId: h.agentId,
              op: h.op,
              payload: chunk.subarray(off, off + h.length),
            });
            off += h.length;
            continue;
          }
          this.#begin(h);
          continue;
        }
        const take = Math.min(HEADER_LEN - this.#headerFill, n - off);
        this.#header.set(chunk.subarray(off, off + take), this.#headerFill);
        this.#headerFill += take;
        off += take;
        if (this.#headerFill < HEADER_LEN) return;
        this.#headerFill = 0;
        const h = readHeader(this.#header, 0);
        if (!this.#accept(h)) return;
        if (h.length === 0) {
          this.onFrame({ agentId: h.agentId, op: h.op, payload: new Uint8Array(0) });
          continue;
        }
        this.#begin(h);
        continue;
      }
      // Filling a payload that spans chunks.
      const payload = this.#payload!;
      const take = Math.min(payload.length - this.#payloadFill, n - off);
      payload.set(chunk.subarray(off, off + take), this.#payloadFill);
      this.#payloadFill += take;
      off += take;
      if (this.#payloadFill === payload.length) {
        const h = this.#current;
        this.#current = null;
        this.#payload = null;
        this.#payloadFill = 0;
        this.onFrame({ agentId: h.agentId, op: h.op, payload });
      }
    }
  }

  #accept(h: Header): boolean {
    if (h.magic !== MAGIC) {
      this.#fail({
        reason: "bad_magic",
        message: `bad magic 0x${
          h.magic.toString(16).padStart(8, "0")
        }: expected 0x41474e54 ("AGNT")`,
      });
      return false;
    }
    if (h.length > this.#maxPayload) {
      this.#fail({
        reason: "too_large",
        message: `payload_len ${h.length} is over the maximum of ${this.#maxPayload} bytes`,
      });
      return false;
    }
    return true;
  }

  #begin(h: Header): void {
    this.#current = h;
    this.#payload = new Uint8Array(h.length);
    this.#payloadFill = 0;
  }

  #fail(error: DecodeError): void {
    this.#failed = true;
    this.#current = null;
    this.#payload = null;
    this.onError(error);
  }
}
