/**
 * A minimal, allocation-light benchmark client: one connection, sequential round trips.
 * Shared by the benchmark's main thread and its workers.
 * @module
 */
import { encodeFrame, FrameDecoder } from "../kernel/frame.ts";

/** A connection that sends one frame at a time and waits for its reply. */
export class BenchConn {
  #resolve: ((p: Uint8Array) => void) | null = null;
  readonly #decoder = new FrameDecoder((f) => {
    const r = this.#resolve;
    this.#resolve = null;
    r?.(f.payload.slice());
  }, () => {});
  readonly #buf = new Uint8Array(1 << 20);

  private constructor(readonly conn: Deno.UnixConn) {
    void this.#read();
  }

  /** Open a connection to `socket`. */
  static async open(socket: string): Promise<BenchConn> {
    return new BenchConn(await Deno.connect({ transport: "unix", path: socket }));
  }

  /** Send `frame` (already encoded) and wait for one reply payload. */
  async roundTrip(frame: Uint8Array): Promise<Uint8Array> {
    const reply = new Promise<Uint8Array>((resolve) => this.#resolve = resolve);
    let off = 0;
    while (off < frame.length) off += await this.conn.write(frame.subarray(off));
    return await reply;
  }

  /** Encode and send one request. */
  call(op: number, payload: Uint8Array): Promise<Uint8Array> {
    return this.roundTrip(encodeFrame(op, 0, payload));
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const n = await this.conn.read(this.#buf);
        if (n === null) return;
        this.#decoder.push(this.#buf.subarray(0, n));
      }
    } catch { /* closed */ }
  }
}
