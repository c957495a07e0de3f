/**
 * The kernel: configuration, state layout, identities, event bus, socket server and the
 * start/shutdown sequence. Syscall handlers reach every service through this object.
 * @module
 */
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { EventBus } from "./events.ts";
import { type KernelConfig, resolveConfig } from "./config.ts";
import { IdentityTable } from "./identity.ts";
import { Logger } from "./log.ts";
import { ensureLayout, type StateLayout, stateLayout } from "./layout.ts";
import { Server } from "./server.ts";
import { probeSocket } from "./probe.ts";
import type { Syscall } from "../syscalls/registry.ts";

// Permissions and host syscalls
import { logExecConfinement } from "../sandbox/bwrap.ts";
import { releaseClientWorkspace } from "../syscalls/fs.ts";

// Agents
import { AgentSupervisor } from "./agents.ts";

// Messaging
import { Mailboxes } from "./mailbox.ts";

// THINK
import { LlmService, MAX_QUEUED_PER_IDENTITY, takeApiKeyFromEnv } from "./llm.ts";
import { DEFAULT_RETRY_POLICY } from "./llm_retry.ts";

/** The kernel's version, from deno.json. */
export const VERSION: string = denoJson.version;

/** Thrown by {@link Kernel.start} when another kernel already answers on the socket. */
export class KernelRunningError extends Error {
  constructor(socket: string) {
    super(
      `a kernel is already running on ${socket}; stop it with \`agentos stop\` or pick another --socket`,
    );
    this.name = "KernelRunningError";
  }
}

/** A running (or startable) kernel. */
export class Kernel {
  readonly config: KernelConfig;
  readonly layout: StateLayout;
  readonly log: Logger;
  readonly bus = new EventBus();
  readonly identities: IdentityTable;
  readonly server: Server;
  readonly startedAt = Date.now();
  readonly version = VERSION;
  /** The agent supervisor (SPAWN, KILL, LIST). */
  readonly agents: AgentSupervisor;
  /** Every identity's bounded message queue (SEND, RECV, BROADCAST). */
  readonly mailboxes: Mailboxes;
  /** THINK: the API key, the fair scheduler and quotas. */
  readonly llm: LlmService;

  #shutdownHooks: (() => void | Promise<void>)[] = [];
  #releaseHooks: ((id: number) => void)[] = [];
  #stopping: Promise<void> | null = null;
  #stopped!: () => void;
  /** Resolves once the kernel has shut down. */
  readonly stopped: Promise<void>;

  constructor(config: Partial<KernelConfig>, syscalls: readonly Syscall[], log?: Logger) {
    this.config = resolveConfig(config);
    this.layout = stateLayout(this.config.stateDir);
    this.log = log ?? new Logger(this.config.logLevel, this.config.logFormat);
    this.identities = new IdentityTable(this.layout.workspacesDir, () => this.blockedPaths());
    this.server = new Server(this, syscalls);
    this.stopped = new Promise((resolve) => this.#stopped = resolve);

    // Permissions and host syscalls
    this.onRelease((id) => releaseClientWorkspace(this, id));

    // Agents
    this.agents = new AgentSupervisor(this);

    // Messaging
    this.mailboxes = new Mailboxes({
      maxMessages: this.config.mailboxMaxMessages,
      maxBytes: this.config.mailboxMaxBytes,
      maxTotalBytes: this.config.mailboxMaxTotalBytes,
    }, (id) => this.identities.get(id) !== undefined);
    this.onRelease((id) => this.mailboxes.drop(id));

    // THINK
    this.llm = new LlmService(this, {
      model: this.config.llmModel,
      concurrency: this.config.llmConcurrency,
      queueTimeoutMs: this.config.llmQueueTimeoutMs,
      requestTimeoutMs: this.config.llmRequestTimeoutMs,
      maxQueuedPerIdentity: MAX_QUEUED_PER_IDENTITY,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: this.config.llmMaxAttempts },
      baseUrl: this.config.llmBaseUrl,
      clientMaxCalls: this.config.clientLlmMaxCalls,
      clientMaxTokens: this.config.clientLlmMaxTokens,
    }, takeApiKeyFromEnv());
  }

  #blocked: readonly string[] | null = null;

  /** Paths blocked for every identity other than through explicit grants. */
  blockedPaths(): readonly string[] {
    return this.#blocked ??= this.#computeBlocked();
  }

  #computeBlocked(): string[] {
    const home = Deno.env.get("HOME");
    const secrets = home
      ? [
        ".ssh",
        ".gnupg",
        ".aws",
        ".config/gcloud",
        ".azure",
        ".kube",
        ".docker/config.json",
        ".netrc",
      ]
        .map((p) => join(home, p))
      : [];
    return [
      this.config.socket,
      this.layout.kernelDir,
      this.layout.runDir,
      this.layout.logsDir,
      ...secrets,
      "/etc/shadow",
      "/etc/gshadow",
      "/etc/sudoers",
      // Host private keys: SSH host keys and TLS keys.
      "/etc/ssh",
      "/etc/ssl/private",
      this.layout.sdkDir,
    ];
  }

  /** Run `hook` during shutdown, after listeners close and before connections do. */
  onShutdown(hook: () => void | Promise<void>): void {
    this.#shutdownHooks.push(hook);
  }

  /** Run `hook` whenever an identity is released (its owner left for good). */
  onRelease(hook: (id: number) => void): void {
    this.#releaseHooks.push(hook);
  }

  /** Forget identity `id` and tell every service that holds state for it. */
  releaseIdentity(id: number): void {
    for (const hook of this.#releaseHooks) {
      try {
        hook(id);
      } catch (err) {
        this.log.error("release hook failed", { identity: id, error: String(err) });
      }
    }
    this.identities.remove(id);
  }

  /** Create the state directories, claim the socket and start serving. */
  async start(): Promise<void> {
    await ensureLayout(this.layout);
    await this.#claimSocket();
    // Permissions and host syscalls
    await logExecConfinement(this.log);

    // Agents
    await this.agents.start();

    // THINK
    this.llm.start();

    // Services are ready before the first connection is accepted.
    this.server.listen(
      this.config.socket,
      () =>
        this.identities.create({
          kind: "client",
          level: this.config.clientLevel,
          network: this.config.clientNetwork,
        }),
      true,
    );
    await Deno.writeTextFile(join(this.layout.kernelDir, "kernel.pid"), `${Deno.pid}\n`);
    this.log.info("kernel listening", {
      version: this.version,
      socket: this.config.socket,
      state_dir: this.layout.root,
      client_level: this.config.clientLevel,
      pid: Deno.pid,
    });
  }

  async #claimSocket(): Promise<void> {
    const path = this.config.socket;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch {
      return; // nothing there
    }
    if (!info.isSocket) {
      throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    }
    if (await probeSocket(path)) throw new KernelRunningError(path);
    this.log.info("removing stale socket file", { socket: path });
    await Deno.remove(path);
  }

  /** Stop accepting, run shutdown hooks, close connections, remove the socket. Idempotent. */
  shutdown(reason: string): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      this.log.info("kernel shutting down", { reason });
      this.bus.emit("kernel.shutdown", { reason });
      for (const hook of this.#shutdownHooks.reverse()) {
        try {
          await hook();
        } catch (err) {
          this.log.error("shutdown hook failed", { error: String(err) });
        }
      }
      this.server.close();
      try {
        await Deno.remove(join(this.layout.kernelDir, "kernel.pid"));
      } catch { /* already gone */ }
      this.log.info("kernel stopped");
      this.#stopped();
    })();
    return this.#stopping;
  }
}
