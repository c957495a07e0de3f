/**
 * Per-agent log files: an agent's stdout and stderr, appended to `logs/<name>.log`, rotated to
 * `<name>.log.1` when the file reaches its size cap (so at most twice the cap is kept).
 * @module
 */

/** An append-only, size-capped log file with one generation of rotation. */
export class AgentLog {
  #file: Deno.FsFile | null = null;
  #size = 0;
  readonly #encoder = new TextEncoder();

  constructor(readonly path: string, readonly maxBytes: number) {}

  /** Append a line of kernel commentary (start, exit, restart). */
  note(text: string): void {
    this.write(this.#encoder.encode(`--- agentos ${new Date().toISOString()} ${text}\n`));
  }

  /** Append raw output bytes. Never throws: a failing log must not take the kernel down. */
  write(chunk: Uint8Array): void {
    try {
      if (!this.#file) this.#open();
      if (this.#size > 0 && this.#size + chunk.length > this.maxBytes) this.#rotate();
      let off = 0;
      // A single chunk larger than the cap is cut to the cap.
      const data = chunk.length > this.maxBytes
        ? chunk.subarray(chunk.length - this.maxBytes)
        : chunk;
      while (off < data.length) off += this.#file!.writeSync(data.subarray(off));
      this.#size += data.length;
    } catch {
      // Disk full or the directory vanished: drop the output rather than fail the agent.
    }
  }

  #open(): void {
    this.#file = Deno.openSync(this.path, { append: true, create: true, mode: 0o600 });
    this.#size = this.#file.statSync().size;
  }

  #rotate(): void {
    this.#file?.close();
    this.#file = null;
    Deno.renameSync(this.path, `${this.path}.1`);
    this.#open();
  }

  /** Close the file (it is reopened on the next write). */
  close(): void {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }
}
