/**
 * The AgentOS TypeScript SDK: one {@link AgentOSClient} per connection to a kernel, with one
 * typed method per syscall.
 *
 * ```ts
 * import { connect, isKernelError } from "agentos"; // "./sdk/mod.ts" outside an agent
 *
 * await using os = await connect(); // AGENTOS_SOCKET, else /tmp/agentos.sock
 * const r = await os.readFile("notes.txt");
 * if (isKernelError(r)) console.error(r.code, r.error);
 * else console.log(r.content);
 * ```
 *
 * Transport failures throw {@link AgentOSConnectionError}; kernel-level errors come back as a
 * {@link KernelError} value (`success: false`), which {@link isKernelError} recognises.
 * Every request and response type is derived from the kernel's syscall registry
 * ({@link RequestFor}, {@link ResponseFor}), never written twice. The module has no runtime
 * dependencies (it only imports types from the kernel), so it loads inside any sandboxed agent.
 * @module
 */
import { concatBytes } from "../kernel/frame.ts";
import { ErrorCode, type ErrorCodeName, Op, type OpName } from "../kernel/protocol.ts";
import type { Syscalls } from "../syscalls/mod.ts";
import type { JsonSyscall, RequestOf, ResponseOf } from "../syscalls/registry.ts";
import { AgentOSConnectionError, defaultSocket, type RawResponse, Transport } from "./client.ts";

export { AgentOSConnectionError, defaultSocket, ErrorCode, Op };
export type { ErrorCodeName, OpName, RawResponse };

/** Names of the syscalls that take JSON (every op but NOOP), e.g. `"READ"`. */
export type JsonOpName = {
  [K in keyof Syscalls]: Syscalls[K] extends JsonSyscall ? K : never;
}[keyof Syscalls];

/**
 * The request payload of syscall `K`, as the kernel's zod schema accepts it.
 *
 * @example
 * ```ts
 * const req: RequestFor<"EXEC"> = { command: "ls", timeout: 5 };
 * ```
 */
export type RequestFor<K extends JsonOpName> = RequestOf<Syscalls[K]>;

/**
 * The success response of syscall `K`, as its handler returns it.
 *
 * @example
 * ```ts
 * function show(r: ResponseFor<"EXEC">) {
 *   console.log(r.exit_code, r.stdout);
 * }
 * ```
 */
export type ResponseFor<K extends JsonOpName> = ResponseOf<Syscalls[K]>;

/**
 * A kernel-level error response: `{success: false, error, code}` plus the op's usual fields
 * with empty values.
 */
export interface KernelError {
  /** Always `false` for an error. */
  success: false;
  /** A sentence a person can act on; permission errors start with "Permission denied". */
  error: string;
  /** The error's code, e.g. `"NOT_FOUND"` or `"PERMISSION_DENIED"`. */
  code: ErrorCodeName;
  /** The op's usual response fields, with empty values. */
  [field: string]: unknown;
}

/** A syscall's result: its response `T`, or a {@link KernelError}. */
export type Result<T> = T | KernelError;

/**
 * True if `r` is a kernel error response; narrows a {@link Result} to {@link KernelError}.
 *
 * @example
 * ```ts
 * const r = await os.exec("make test");
 * if (isKernelError(r)) throw new Error(`${r.code}: ${r.error}`);
 * console.log(r.stdout); // r is ResponseFor<"EXEC"> here
 * ```
 */
export function isKernelError(r: unknown): r is KernelError {
  return typeof r === "object" && r !== null && !Array.isArray(r) &&
    (r as { success?: unknown }).success === false &&
    typeof (r as { code?: unknown }).code === "string";
}

/** Who a message goes to: an identity's id (`{ to: 7 }`), or its name (`{ toName: "worker" }`). */
export type MessageTarget =
  | { to: NonNullable<RequestFor<"SEND">["to"]>; toName?: never }
  | { toName: NonNullable<RequestFor<"SEND">["to_name"]>; to?: never };

/** Options of {@link AgentOSClient.recvMessages} (RECV's fields, in camelCase). */
export interface RecvOptions {
  /** Most messages to return (1–10,000; default 100). */
  max?: RequestFor<"RECV">["max"];
  /** Block until a message arrives or the timeout passes. */
  wait?: RequestFor<"RECV">["wait"];
  /** How long a blocking receive waits, in ms (default 30,000; at most 600,000). */
  timeoutMs?: RequestFor<"RECV">["timeout_ms"];
}

/** Options of {@link AgentOSClient.messages}: {@link RecvOptions} without `wait` (always on). */
export type MessagesOptions = Omit<RecvOptions, "wait">;

/** Options of {@link AgentOSClient.broadcast}. */
export interface BroadcastOptions {
  /** Also deliver to this caller (default false). */
  includeSelf?: RequestFor<"BROADCAST">["include_self"];
}

/** One received message: sender id and name, the message, its age and its mailbox seq. */
export type MessageEnvelope = ResponseFor<"RECV">["messages"][number];

/** Options of {@link AgentOSClient.readFile}: READ's fields but `path`. */
export type ReadOptions = Omit<RequestFor<"READ">, "path">;

/**
 * Options of {@link AgentOSClient.writeFile}: WRITE's `mode` and `mkdirs` (the content's
 * `encoding` follows from passing a string or bytes).
 */
export type WriteOptions = Pick<RequestFor<"WRITE">, "mode" | "mkdirs">;

/** Options of {@link AgentOSClient.exec}: EXEC's fields but `command`. */
export type ExecOptions = Omit<RequestFor<"EXEC">, "command">;

/** Options of {@link AgentOSClient.http}: HTTP's fields but `url`. */
export type HttpOptions = Omit<RequestFor<"HTTP">, "url">;

/** Options of {@link AgentOSClient.think}: THINK's fields but `prompt`. */
export type ThinkOptions = Omit<RequestFor<"THINK">, "prompt">;

/**
 * Options of {@link AgentOSClient.setPermissions}: SET_PERMS's fields, with `agentId` for
 * `agent_id`.
 */
export type SetPermissionsOptions = Omit<RequestFor<"SET_PERMS">, "agent_id"> & {
  /** The identity to change (default: this caller). */
  agentId?: RequestFor<"SET_PERMS">["agent_id"];
};

/** Options for {@link connect}. */
export interface ConnectOptions {
  /** Socket path; default `AGENTOS_SOCKET`, else `/tmp/agentos.sock`. */
  socket?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A client of one kernel over one connection. Safe to use from concurrent tasks: requests are
 * pipelined and each call resolves with its own response.
 *
 * @example
 * ```ts
 * await using os = await AgentOSClient.connect({ socket: "/tmp/agentos.sock" });
 * const status = await os.status();
 * if (!isKernelError(status)) console.log(status.version, status.uptime_ms);
 * ```
 */
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
   *
   * @example
   * ```ts
   * const r = await os.call("KERNEL_STATUS", {});
   * console.log(new TextDecoder().decode(r.payload));
   * ```
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

  /**
   * Call JSON syscall `name` with a typed request and return its typed result. Every typed
   * method below is a thin wrapper around this.
   *
   * @example
   * ```ts
   * const r = await os.request("READ", { path: "notes.txt", encoding: "utf8" });
   * ```
   */
  async request<K extends JsonOpName>(
    name: K,
    input: RequestFor<K>,
  ): Promise<Result<ResponseFor<K>>> {
    const r = await this.call(Op[name], input as object);
    return JSON.parse(decoder.decode(r.payload)) as Result<ResponseFor<K>>;
  }

  /** NOOP: the kernel echoes `data`; a string comes back as a string. */
  async echo(data: string): Promise<string>;
  /** NOOP: the kernel echoes `data`; bytes come back as bytes. */
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
  shutdown(reason?: RequestFor<"SHUTDOWN">["reason"]): Promise<Result<ResponseFor<"SHUTDOWN">>> {
    return this.request("SHUTDOWN", reason ? { reason } : {});
  }

  /** EXIT: the kernel acknowledges and closes this connection; this client is closed too. */
  async exit(): Promise<Result<ResponseFor<"EXIT">>> {
    const r = await this.request("EXIT", {});
    this.transport.close();
    return r;
  }

  // Permissions and host syscalls
  /**
   * EXEC: run `sh -c command` confined as the caller's level allows (bubblewrap for standard
   * and sandboxed). Resolves with `{success, stdout, stderr, exit_code, timed_out, truncated}`;
   * `success` is true when the command exited 0 within its time.
   *
   * @param command shell command line, e.g. `"ls -la"`
   * @param options `cwd` (default: the caller's workspace), `timeout` in seconds (default 30,
   *   capped by `max_exec_time_ms`), extra `env` variables, `stdin` text
   * @example
   * ```ts
   * const r = await os.exec("echo hi", { timeout: 5 });
   * if (!isKernelError(r)) console.log(r.stdout);
   * ```
   */
  exec(command: string, options: ExecOptions = {}): Promise<Result<ResponseFor<"EXEC">>> {
    return this.request("EXEC", { ...options, command });
  }

  /**
   * HTTP: one request to a host the caller's `network` allowlist names; redirects are followed
   * and re-checked hop by hop. Resolves with `{success, status_code, headers, body,
   * body_encoding, truncated, url}`; `body` is base64 when `body_encoding` is `"base64"`.
   *
   * @param url absolute http:// or https:// URL
   * @param options `method` (default GET), `headers`, `body` (with `body_encoding`), `timeout`
   *   in seconds (default 30; expiry answers code `TIMEOUT`)
   * @example
   * ```ts
   * const r = await os.http("https://api.example.com/data");
   * if (!isKernelError(r)) console.log(r.status_code, r.body);
   * ```
   */
  http(url: string, options: HttpOptions = {}): Promise<Result<ResponseFor<"HTTP">>> {
    return this.request("HTTP", { ...options, url });
  }

  /**
   * READ: read a file, or one page of it. Relative paths are relative to the caller's workspace.
   * A file larger than one response (about 900 KiB of content) comes back in pages:
   * `truncated` is true and the next page starts at `offset + length`. Use
   * `encoding: "base64"` for binary files. See {@link AgentOSClient.readAll} for the whole file.
   *
   * @example
   * ```ts
   * const r = await os.readFile("notes.txt");
   * if (!isKernelError(r)) console.log(r.content, r.size);
   * ```
   */
  readFile(path: string, options: ReadOptions = {}): Promise<Result<ResponseFor<"READ">>> {
    return this.request("READ", { ...options, path });
  }

  /**
   * READ a whole file of any size as bytes, page by page. Returns the kernel's error if a page
   * fails, and a `QUOTA_EXCEEDED` error once the file is larger than `maxBytes` (default
   * 256 MiB).
   *
   * @example
   * ```ts
   * const bytes = await os.readAll("image.png");
   * if (!isKernelError(bytes)) console.log(bytes.length);
   * ```
   */
  async readAll(path: string, maxBytes = 256 * 1024 * 1024): Promise<Result<Uint8Array>> {
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const r = await this.readFile(path, { offset, encoding: "base64" });
      if (isKernelError(r)) return r;
      const bytes = base64ToBytes(r.content);
      parts.push(bytes);
      offset += r.length;
      if (offset > maxBytes) {
        return {
          success: false,
          code: "QUOTA_EXCEEDED",
          error: `${path} is larger than maxBytes (${maxBytes})`,
        };
      }
      if (!r.truncated || r.length === 0) break;
    }
    return concatBytes(parts, offset);
  }

  /**
   * WRITE: write `content` (a string, sent as UTF-8, or bytes, sent as base64) to `path`.
   * `mode`: `"write"` (default) replaces the file atomically and keeps its mode bits;
   * `"create"` fails if the file exists; `"append"` appends. `mkdirs` creates missing parent
   * directories.
   *
   * @example
   * ```ts
   * const r = await os.writeFile("out/report.txt", "done\n", { mkdirs: true });
   * if (!isKernelError(r)) console.log(r.bytes_written, r.path);
   * ```
   */
  writeFile(
    path: string,
    content: string | Uint8Array,
    options: WriteOptions = {},
  ): Promise<Result<ResponseFor<"WRITE">>> {
    return this.request("WRITE", {
      ...options,
      path,
      ...(typeof content === "string"
        ? { content }
        : { content: bytesToBase64(content), encoding: "base64" as const }),
    });
  }

  /**
   * GET_PERMS: the caller's permission record, or (`agentId`) a descendant's — any identity's
   * for an unrestricted caller.
   *
   * @example
   * ```ts
   * const r = await os.getPermissions();
   * if (!isKernelError(r)) console.log(r.permissions.level, r.permissions.can_exec);
   * ```
   */
  getPermissions(
    agentId?: RequestFor<"GET_PERMS">["agent_id"],
  ): Promise<Result<ResponseFor<"GET_PERMS">>> {
    return this.request("GET_PERMS", agentId === undefined ? {} : { agent_id: agentId });
  }

  /**
   * SET_PERMS: change the caller's own permissions (lowering only) or a descendant's (needs
   * `can_spawn`; any identity's for an unrestricted caller), never above the caller's own.
   * `level` resets to that level's defaults; `permissions` changes single fields. For a
   * running agent the response's `enforcement` says the Deno flags of its process stay as
   * they were until it restarts.
   *
   * @example
   * ```ts
   * await os.setPermissions({ agentId: 7, permissions: { can_http: false } });
   * ```
   */
  setPermissions(options: SetPermissionsOptions): Promise<Result<ResponseFor<"SET_PERMS">>> {
    const { agentId, ...rest } = options;
    return this.request("SET_PERMS", agentId === undefined ? rest : { ...rest, agent_id: agentId });
  }

  /**
   * SPAWN: start an agent. `script` is a `.ts`/`.js` path or inline TypeScript; the agent
   * imports this SDK as `"agentos"`. Without `level`, `sandboxed` (default true) picks
   * `sandboxed`, false picks `standard`. Needs `can_spawn`; a level above yours is refused.
   *
   * @example
   * ```ts
   * const r = await os.spawn({ name: "worker", script: "console.log('hi')" });
   * if (!isKernelError(r)) console.log(r.id, r.pid, r.level);
   * ```
   */
  spawn(options: RequestFor<"SPAWN">): Promise<Result<ResponseFor<"SPAWN">>> {
    return this.request("SPAWN", options);
  }

  /**
   * KILL: stop an agent (and its descendants) by `{name}` or `{id}`: SIGTERM, a grace period,
   * then SIGKILL.
   *
   * @example
   * ```ts
   * await os.kill({ name: "worker" });
   * ```
   */
  kill(target: RequestFor<"KILL">): Promise<Result<ResponseFor<"KILL">>> {
    return this.request("KILL", target);
  }

  /**
   * LIST: agents, live and recently finished — every agent for an unrestricted caller, else
   * the caller itself and its descendants — with state, pid, uptime, level in force, parent,
   * exit code and reason, and restarts. The success response is an array.
   *
   * @example
   * ```ts
   * const agents = await os.listAgents();
   * if (!isKernelError(agents)) for (const a of agents) console.log(a.name, a.state);
   * ```
   */
  listAgents(): Promise<Result<ResponseFor<"LIST">>> {
    return this.request("LIST", {});
  }

  /**
   * REGISTER: take the unique name `name` (1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter
   * or digit, not purely numeric), so that others can reach this connection with
   * `sendMessage(m, { toName: name })`. The name is released when this connection closes. A
   * spawned agent already holds its spawn name.
   *
   * @example
   * ```ts
   * await os.registerName("inbox");
   * ```
   */
  registerName(name: RequestFor<"REGISTER">["name"]): Promise<Result<ResponseFor<"REGISTER">>> {
    return this.request("REGISTER", { name });
  }

  /**
   * SEND: queue `message` (any JSON value) for one identity, by id (`{ to: 7 }`) or by name
   * (`{ toName: "worker" }`). Answers `{ delivered_to, seq }`; a full mailbox answers
   * `QUOTA_EXCEEDED` (nothing is dropped: retry later), an unknown target `NOT_FOUND`.
   *
   * @example
   * ```ts
   * await os.sendMessage({ task: "go" }, { toName: "worker" });
   * ```
   */
  sendMessage(
    message: RequestFor<"SEND">["message"],
    target: MessageTarget,
  ): Promise<Result<ResponseFor<"SEND">>> {
    return this.request(
      "SEND",
      target.to !== undefined ? { to: target.to, message } : { to_name: target.toName, message },
    );
  }

  /**
   * RECV: take waiting messages, oldest first (FIFO per sender). With `wait: true`, blocks until
   * a message arrives or `timeoutMs` passes (default 30 s, at most 10 min) and then answers an
   * empty list, not an error. `max` defaults to 100; a response never exceeds 1 MiB, so fewer
   * may come back (`remaining` says how many still wait).
   *
   * While a blocking RECV waits, later requests on this same connection wait behind it
   * (responses come in request order); other connections are never held.
   *
   * @example
   * ```ts
   * const r = await os.recvMessages({ wait: true, timeoutMs: 5_000 });
   * if (!isKernelError(r)) for (const m of r.messages) console.log(m.from_name, m.message);
   * ```
   */
  recvMessages(options: RecvOptions = {}): Promise<Result<ResponseFor<"RECV">>> {
    const input: RequestFor<"RECV"> = {};
    if (options.max !== undefined) input.max = options.max;
    if (options.wait) {
      input.wait = true;
      if (options.timeoutMs !== undefined) input.timeout_ms = options.timeoutMs;
    }
    return this.request("RECV", input);
  }

  /**
   * BROADCAST: queue `message` for every live identity that has a name (spawned agents
   * included), and for this caller too with `includeSelf`. Full mailboxes are skipped and
   * listed in `skipped`; `delivered_count` counts the rest.
   *
   * @example
   * ```ts
   * const r = await os.broadcast({ event: "shutdown" });
   * if (!isKernelError(r)) console.log(r.delivered_count);
   * ```
   */
  broadcast(
    message: RequestFor<"BROADCAST">["message"],
    options: BroadcastOptions = {},
  ): Promise<Result<ResponseFor<"BROADCAST">>> {
    return this.request(
      "BROADCAST",
      options.includeSelf ? { message, include_self: true } : { message },
    );
  }

  /**
   * Every message sent to this caller, as they arrive, through repeated blocking RECVs.
   * Ends when this client is closed; throws if the connection is lost or RECV fails. Each
   * blocking RECV waits up to `timeoutMs` (default 30 s) before the next one is sent.
   *
   * @example
   * ```ts
   * for await (const m of os.messages()) console.log(m.from_name, m.message);
   * ```
   */
  async *messages(
    options: MessagesOptions = {},
  ): AsyncGenerator<MessageEnvelope, void, undefined> {
    for (;;) {
      if (this.transport.closed) return;
      let r: Result<ResponseFor<"RECV">>;
      try {
        r = await this.recvMessages({ ...options, wait: true });
      } catch (err) {
        if (this.transport.closed) return;
        throw err;
      }
      if (isKernelError(r)) throw new Error(`RECV failed (${r.code}): ${r.error}`);
      for (const m of r.messages) yield m;
    }
  }

  // THINK
  /**
   * THINK: ask the kernel's Claude model. The kernel holds the API key, applies this caller's
   * quotas and queues the call fairly among all callers.
   *
   * @param prompt the user message
   * @param options `image` ({data: base64, mime_type}), `system_instruction`,
   *   `thinking_level` ("low" | "medium" | "high"), `temperature`, `model`, `max_tokens`
   * @returns `{success, content, tokens, error, model, stop_reason, usage}` or a kernel error
   *   (`QUOTA_EXCEEDED`, `TIMEOUT` after waiting too long in the queue, `ERROR` for API
   *   failures and a missing key, `INVALID_MSG` for a bad payload)
   * @example
   * ```ts
   * const r = await os.think("What is 2+2?", { thinking_level: "low" });
   * if (!isKernelError(r)) console.log(r.content, r.tokens);
   * ```
   */
  think(prompt: string, options: ThinkOptions = {}): Promise<Result<ResponseFor<"THINK">>> {
    return this.request("THINK", { ...options, prompt });
  }

  /** Close the connection; requests still waiting fail with {@link AgentOSConnectionError}. */
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

/**
 * Encode bytes as standard base64, e.g. for THINK's `image.data` or an HTTP `body` with
 * `body_encoding: "base64"`.
 *
 * @example
 * ```ts
 * const data = bytesToBase64(await Deno.readFile("chart.png"));
 * await os.think("What does this chart show?", { image: { data, mime_type: "image/png" } });
 * ```
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/**
 * Decode standard base64, e.g. a READ page with `encoding: "base64"`; throws a DOMException
 * on invalid input.
 */
export function base64ToBytes(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Connect to a kernel: `options.socket`, else `AGENTOS_SOCKET`, else `/tmp/agentos.sock`.
 * Throws {@link AgentOSConnectionError} (saying how to start one) when no kernel answers.
 *
 * @example
 * ```ts
 * await using os = await connect();
 * console.log(await os.echo("ping"));
 * ```
 */
export function connect(options: ConnectOptions = {}): Promise<AgentOSClient> {
  return AgentOSClient.connect(options);
}
