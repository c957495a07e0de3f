/**
 * The AgentOS TypeScript SDK.
 *
 * ```ts
 * import { connect } from "agentos";
 * await using os = await connect();
 * const perms = await os.getPermissions();
 * ```
 *
 * Transport failures throw {@link AgentOSConnectionError}; kernel-level errors come back as a
 * {@link KernelError} value (`success: false`), which {@link isKernelError} recognises.
 * Request and response types are derived from the kernel's syscall registry.
 * @module
 */
import { type ErrorCodeName, Op, type OpName } from "../kernel/protocol.ts";
import type { Syscalls } from "../syscalls/mod.ts";
import type { JsonSyscall, RequestOf, ResponseOf } from "../syscalls/registry.ts";
import { AgentOSConnectionError, defaultSocket, type RawResponse, Transport } from "./client.ts";

export { AgentOSConnectionError, defaultSocket, Op };
export type { ErrorCodeName, OpName, RawResponse };

/** Names of the syscalls that take JSON. */
export type JsonOpName = {
  [K in keyof Syscalls]: Syscalls[K] extends JsonSyscall ? K : never;
}[keyof Syscalls];
/** The request payload of syscall `K`. */
export type RequestFor<K extends JsonOpName> = RequestOf<Syscalls[K]>;
/** The success response of syscall `K`. */
export type ResponseFor<K extends JsonOpName> = ResponseOf<Syscalls[K]>;

/** A kernel-level error response. */
export interface KernelError {
  success: false;
  error: string;
  code: ErrorCodeName;
  [field: string]: unknown;
}

/** A syscall's result: its response, or a kernel error. */
export type Result<T> = T | KernelError;

/** True if `r` is a kernel error response. */
export function isKernelError(r: unknown): r is KernelError {
  return typeof r === "object" && r !== null && !Array.isArray(r) &&
    (r as { success?: unknown }).success === false &&
    typeof (r as { code?: unknown }).code === "string";
}

/** Options for {@link connect}. */
export interface ConnectOptions {
  /** Socket path; default `AGENTOS_SOCKET`, else `/tmp/agentos.sock`. */
  socket?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client of one kernel over one connection. Safe to use from concurrent tasks. */
export class AgentOSClient {
  private constructor(private readonly transport: Transport) {}

  /** Connect to a kernel. Throws {@link AgentOSConnectionError} if none answers. */
  static async connect(options: ConnectOptions = {}): Promise<AgentOSClient> {
    return new AgentOSClient(await Transport.connect(options.socket ?? defaultSocket()));
  }

  /** The socket this client is connected to. */
  get socket(): string {
    return this.transport.socket;
  }

  /**
   * Send any op with any payload and return the raw response. Objects are sent as JSON,
   * strings as UTF-8, bytes as they are.
   */
  async call(
    op: number | OpName,
    payload: Uint8Array | string | object = new Uint8Array(0),
  ): Promise<RawResponse> {
    const code = typeof op === "number" ? op : Op[op];
    if (code === undefined || !Number.isInteger(code) || code < 0 || code > 255) {
      throw new RangeError(`unknown op ${String(op)}`);
    }
    const bytes = payload instanceof Uint8Array
      ? payload
      : encoder.encode(typeof payload === "string" ? payload : JSON.stringify(payload));
    return await this.transport.request(code, bytes);
  }

  /** Call JSON syscall `name` with a typed request and return its typed result. */
  async request<K extends JsonOpName>(
    name: K,
    input: RequestFor<K>,
  ): Promise<Result<ResponseFor<K>>> {
    const r = await this.call(Op[name], input as object);
    return JSON.parse(decoder.decode(r.payload)) as Result<ResponseFor<K>>;
  }

  /** NOOP: the kernel echoes `data`; a string comes back as a string, bytes as bytes. */
  async echo(data: string): Promise<string>;
  async echo(data: Uint8Array): Promise<Uint8Array>;
  async echo(data: string | Uint8Array): Promise<string | Uint8Array> {
    const r = await this.call(Op.NOOP, data);
    return typeof data === "string" ? decoder.decode(r.payload) : r.payload;
  }

  /** KERNEL_STATUS: version, pid, uptime, socket, connection count, and this caller's id. */
  status(): Promise<Result<ResponseFor<"KERNEL_STATUS">>> {
    return this.request("KERNEL_STATUS", {});
  }

  /** SHUTDOWN: stop the kernel cleanly (unrestricted callers only). */
  shutdown(reason?: string): Promise<Result<ResponseFor<"SHUTDOWN">>> {
    return this.request("SHUTDOWN", reason ? { reason } : {});
  }

  /** EXIT: the kernel acknowledges and closes this connection. */
  async exit(): Promise<Result<ResponseFor<"EXIT">>> {
    const r = await this.request("EXIT", {});
    this.transport.close();
    return r;
  }

  // methods: issue 3 (permissions and host syscalls)

  // methods: issue 4 (agents)

  /**
   * SPAWN: start an agent. `script` is a `.ts`/`.js` path or inline TypeScript; the agent
   * imports this SDK as `"agentos"`. Without `level`, `sandboxed` (default true) picks
   * `sandboxed`, false picks `standard`. Needs `can_spawn`; a level above yours is refused.
   *
   * ```ts
   * const r = await os.spawn({ name: "worker", script: "console.log('hi')" });
   * ```
   */
  spawn(options: RequestFor<"SPAWN">): Promise<Result<ResponseFor<"SPAWN">>> {
    return this.request("SPAWN", options);
  }

  /** KILL: stop an agent (and its descendants) by `{name}` or `{id}`. */
  kill(target: RequestFor<"KILL">): Promise<Result<ResponseFor<"KILL">>> {
    return this.request("KILL", target);
  }

  /** LIST: every agent with its state, pid, uptime, level, parent, exit code and restarts. */
  listAgents(): Promise<Result<ResponseFor<"LIST">>> {
    return this.request("LIST", {});
  }

  // methods: issue 5 (messaging)

  // methods: issue 6 (think)
  /**
   * THINK: ask the kernel's Claude model. The kernel holds the API key, applies this caller's
   * quotas and queues the call fairly among all callers.
   *
   * ```ts
   * const r = await os.think("What is 2+2?", { thinking_level: "low" });
   * if (!isKernelError(r)) console.log(r.content, r.tokens);
   * ```
   * @param prompt the user message
   * @param options `image` ({data: base64, mime_type}), `system_instruction`,
   *   `thinking_level` ("low" | "medium" | "high"), `temperature`, `model`, `max_tokens`
   * @returns `{success, content, tokens, error, model, stop_reason, usage}` or a kernel error
   *   (`QUOTA_EXCEEDED`, `TIMEOUT` after waiting too long in the queue, `ERROR` for API
   *   failures and a missing key, `INVALID_MSG` for a bad payload)
   */
  think(
    prompt: string,
    options: Omit<RequestFor<"THINK">, "prompt"> = {},
  ): Promise<Result<ResponseFor<"THINK">>> {
    return this.request("THINK", { ...options, prompt });
  }

  /** Close the connection. */
  close(): void {
    this.transport.close();
  }

  /** `await using client = await connect()` closes the connection at scope end. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /** `using client = ...` closes the connection at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Connect to a kernel: `AGENTOS_SOCKET`, else `/tmp/agentos.sock`, unless `options.socket`. */
export function connect(options: ConnectOptions = {}): Promise<AgentOSClient> {
  return AgentOSClient.connect(options);
}
