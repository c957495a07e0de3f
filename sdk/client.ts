/**
 * The transport half of the TypeScript SDK: a connection that pipelines requests and matches
 * responses to them in order. It has no dependencies, so it loads inside any sandboxed agent.
 * @module
 */
import { encodeFrame, type Frame, FrameDecoder } from "../kernel/frame.ts";
import { DEFAULT_SOCKET, MAX_PAYLOAD } from "../kernel/protocol.ts";

/** Thrown when the kernel cannot be reached or the connection breaks. */
export class AgentOSConnectionError extends Error {
  /** `message` says what went wrong and what to do; `options.cause` keeps the OS error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AgentOSConnectionError";
  }
}

/** A raw response: the op it answers, the caller's id, and the payload bytes. */
export interface RawResponse {
  /** The opcode answered (the request's). */
  op: number;
  /** The caller's kernel-assigned identity id. */
  agentId: number;
  /** The response payload: JSON text for JSON ops, the echoed bytes for NOOP. */
  payload: Uint8Array;
}

interface Pending {
  resolve: (r: RawResponse) => void;
  reject: (e: Error) => void;
}

/** The socket path the SDK uses by default: `AGENTOS_SOCKET`, else `/tmp/agentos.sock`. */
export function defaultSocket(): string {
  try {
    return Deno.env.get("AGENTOS_SOCKET") || DEFAULT_SOCKET;
  } catch {
    return DEFAULT_SOCKET; // no env permission: use the default
  }
}

/** One connection to a kernel. Requests may be issued concurrently; responses arrive in order. */
export class Transport {
  /** Requests waiting for their response, oldest at `#head` (answered slots are cleared). */
  readonly #pending: (Pending | undefined)[] = [];
  #head = 0;
  #closed = false;
  #failure: Error | null = null;
  readonly #decoder: FrameDecoder;
  readonly #reader: Promise<void>;

  private constructor(private readonly conn: Deno.UnixConn, readonly socket: string) {
    this.#decoder = new FrameDecoder(
      (frame) => this.#deliver(frame),
      (err) =>
        this.#fail(new AgentOSConnectionError(`the kernel sent a corrupt frame: ${err.message}`)),
      MAX_PAYLOAD,
    );
    this.#reader = this.#read();
  }

  /** Connect to the kernel listening on `socket`. */
  static async connect(socket: string = defaultSocket()): Promise<Transport> {
    try {
      const conn = await Deno.connect({ transport: "unix", path: socket });
      return new Transport(conn, socket);
    } catch (err) {
      const what =
        err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused
          ? `no kernel on ${socket} — start one with \`agentos kernel\``
          : err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
          ? `not allowed to connect to ${socket} (${(err as Error).message})`
          : `cannot connect to ${socket}: ${(err as Error).message}`;
      throw new AgentOSConnectionError(what, { cause: err });
    }
  }

  /** Send one frame and wait for its response. */
  async request(op: number, payload: Uint8Array): Promise<RawResponse> {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new AgentOSConnectionError("the connection is closed");
    if (payload.length > MAX_PAYLOAD) {
      throw new RangeError(
        `payload of ${payload.length} bytes is over the ${MAX_PAYLOAD}-byte limit`,
      );
    }
    const response = new Promise<RawResponse>((resolve, reject) =>
      this.#pending.push({ resolve, reject })
    );
    const frame = encodeFrame(op, 0, payload);
    try {
      let off = 0;
      while (off < frame.length) off += await this.conn.write(frame.subarray(off));
    } catch (err) {
      this.#fail(
        new AgentOSConnectionError(
          `lost the connection to ${this.socket}: ${(err as Error).message}`,
        ),
      );
    }
    return await response;
  }

  /** Close the connection; pending requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
    this.#rejectAll(new AgentOSConnectionError("the connection was closed"));
  }

  /** True once {@link close} has been called (not when the kernel dropped the connection). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the read loop has ended. */
  get done(): Promise<void> {
    return this.#reader;
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.#decoder.push(buf.subarray(0, n));
      }
    } catch (err) {
      if (!this.#closed) {
        this.#fail(
          new AgentOSConnectionError(
            `lost the connection to ${this.socket}: ${(err as Error).message}`,
          ),
        );
      }
      return;
    }
    if (!this.#closed) {
      this.#fail(new AgentOSConnectionError(`the kernel on ${this.socket} closed the connection`));
    }
  }

  #deliver(frame: Frame): void {
    const p = this.#pending[this.#head];
    if (!p) return; // unsolicited: ignore
    this.#pending[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    p.resolve({ op: frame.op, agentId: frame.agentId, payload: frame.payload.slice() });
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#rejectAll(err);
  }

  #rejectAll(err: Error): void {
    while (this.#head < this.#pending.length) this.#pending[this.#head++]?.reject(err);
    this.#pending.length = 0;
    this.#head = 0;
  }
}
