/**
 * The socket server: listeners (the main socket and each agent's private socket), the
 * connection table, and the idle sweep that drops half-sent frames.
 * @module
 */
import process from "node:process";
import { Connection } from "./connection.ts";
import { InFlightLimiter } from "./inflight.ts";
import { dispatch } from "./dispatch.ts";
import { errorFrame } from "./response.ts";
import type { Identity } from "./identity.ts";
import type { Kernel } from "./kernel.ts";
import type { Syscall } from "../syscalls/registry.ts";
import { buildDispatchTable } from "../syscalls/registry.ts";

/** How a listener assigns identities to its connections. */
export type IdentitySource = () => Identity;

interface ListenerEntry {
  listener: Deno.Listener;
  path: string;
  /** Whether the identity is per-connection (and dies with it). */
  perConnection: boolean;
}

/** Serves the registry over Unix sockets. */
export class Server {
  readonly #table: (Syscall | undefined)[];
  /** Running calls of ops that declare `maxInFlight`. */
  readonly inFlight = new InFlightLimiter();
  readonly #connections = new Map<number, Connection>();
  readonly #listeners = new Set<ListenerEntry>();
  #nextConnectionId = 1;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #accepting = true;

  constructor(private readonly kernel: Kernel, syscalls: readonly Syscall[]) {
    this.#table = buildDispatchTable(syscalls);
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Listen on `path` with mode 0600. `identity` returns the identity of each new connection;
   * with `perConnection`, that identity is removed when its connection closes.
   */
  listen(path: string, identity: IdentitySource, perConnection: boolean): Deno.Listener {
    // Bind under a umask that leaves the socket private from its first instant.
    const old = process.umask(0o177);
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ transport: "unix", path });
    } finally {
      process.umask(old);
    }
    Deno.chmodSync(path, 0o600);
    const entry = { listener, path, perConnection };
    this.#listeners.add(entry);
    void this.#accept(entry, identity);
    this.#startSweep();
    return listener;
  }

  /** Stop listening on `path` and close its connections whose identity is `identityId`. */
  unlisten(path: string, identityId?: number): void {
    for (const entry of this.#listeners) {
      if (entry.path !== path) continue;
      this.#listeners.delete(entry);
      try {
        entry.listener.close();
      } catch { /* already closed */ }
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    }
    if (identityId !== undefined) {
      for (const c of this.#connections.values()) if (c.identity.id === identityId) c.close();
    }
  }

  async #accept(entry: ListenerEntry, identity: IdentitySource): Promise<void> {
    try {
      for await (const conn of entry.listener) {
        if (!this.#accepting || this.#connections.size >= this.kernel.config.maxConnections) {
          if (this.#accepting) this.kernel.log.warn("connection refused: too many connections");
          try {
            conn.close();
          } catch { /* ignore */ }
          continue;
        }
        this.#open(conn, identity(), entry.perConnection);
      }
    } catch (err) {
      if (this.#accepting && this.#listeners.has(entry)) {
        this.kernel.log.error("listener failed", { path: entry.path, error: String(err) });
      }
    }
  }

  #open(conn: Deno.Conn, identity: Identity, perConnection: boolean): void {
    const id = this.#nextConnectionId++;
    const kernel = this.kernel;
    const table = this.#table;
    const connection = new Connection(
      id,
      identity,
      conn,
      {
        handle(frame, c) {
          const syscall = table[frame.op];
          const data = dispatch(table, kernel, frame, {
            connectionId: c.id,
            identity: c.identity,
            signal: c.abort.signal,
          });
          return { data, close: syscall?.kind === "json" && syscall.closeAfter === true };
        },
        streamError(error, c) {
          kernel.log.warn("closing connection: corrupt stream", {
            connection: c.id,
            reason: error.message,
          });
          return errorFrame(
            0,
            c.identity.id,
            "INVALID_MSG",
            `${error.message}; closing the connection`,
          );
        },
      },
      (c) => {
        this.#connections.delete(c.id);
        kernel.bus.emit("connection.closed", { connectionId: c.id, identityId: c.identity.id });
        if (perConnection) kernel.releaseIdentity(c.identity.id);
      },
    );
    this.#connections.set(id, connection);
    kernel.bus.emit("connection.opened", { connectionId: id, identityId: identity.id });
    void connection.run();
  }

  #startSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setInterval(() => {
      const cutoff = Date.now() - this.kernel.config.frameTimeoutMs;
      for (const c of this.#connections.values()) {
        if (c.partial && c.lastProgress < cutoff) {
          this.kernel.log.warn("closing connection: frame left unfinished", { connection: c.id });
          c.close();
        }
      }
    }, 1000);
    Deno.unrefTimer(this.#sweep as unknown as number);
  }

  /** Stop accepting, close every listener (removing socket files) and every connection. */
  close(): void {
    this.#accepting = false;
    for (const entry of [...this.#listeners]) this.unlisten(entry.path);
    for (const c of [...this.#connections.values()]) c.close();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
  }
}
