/**
 * Test helper: a raw socket client for sending arbitrary bytes and reading frames.
 * @module
 */
import { type Frame, FrameDecoder } from "../../kernel/frame.ts";

/** A raw connection that collects every frame the kernel sends. */
export class RawConn {
  readonly frames: Frame[] = [];
  closed = false;
  #waiters: (() => void)[] = [];
  readonly #done: Promise<void>;

  private constructor(readonly conn: Deno.UnixConn) {
    const decoder = new FrameDecoder(
      (f) => {
        this.frames.push({ ...f, payload: f.payload.slice() });
        this.#wake();
      },
      () => {},
      1 << 30,
    );
    this.#done = (async () => {
      const buf = new Uint8Array(1 << 16);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          decoder.push(buf.subarray(0, n));
        }
      } catch { /* reset */ }
      this.closed = true;
      this.#wake();
    })();
  }

  /** Connect to `path`. */
  static async open(path: string): Promise<RawConn> {
    return new RawConn(await Deno.connect({ transport: "unix", path }));
  }

  /** Write all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Wait until `count` frames have arrived (or the connection closed, or the timeout passed). */
  async waitFrames(count: number, timeoutMs = 10_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames;
  }

  /** Wait until the kernel closes the connection (true) or the timeout passes (false). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await this.waitFrames(this.frames.length + 1, deadline - Date.now());
    }
    return this.closed;
  }

  /** Close and wait for the reader to end. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed */ }
    await this.#done;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** Parse a frame's payload as JSON. */
export function json(frame: Frame): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(frame.payload));
}
