/**
 * The kernel's internal, typed event bus. Syscalls and the agent supervisor publish here;
 * logging, metrics and (later) SUBSCRIBE consume.
 * @module
 */

/** Every event the kernel publishes, by type. */
export interface KernelEvents {
  "connection.opened": { connectionId: number; identityId: number };
  "connection.closed": { connectionId: number; identityId: number };
  "syscall.blocked": { identityId: number; op: string; reason: string };
  "agent.spawned": { agentId: number; name: string; pid: number; level: string };
  "agent.state": { agentId: number; name: string; state: string; reason?: string };
  "agent.exited": {
    agentId: number;
    name: string;
    exitCode: number | null;
    reason: string;
  };
  "message.received": { to: number; from: number; seq: number };
  "kernel.shutdown": { reason: string };
}

/** A listener for events of type `K`. */
export type Listener<K extends keyof KernelEvents> = (event: KernelEvents[K]) => void;

/** Synchronous, typed publish/subscribe. A throwing listener never affects the publisher. */
export class EventBus {
  #listeners = new Map<keyof KernelEvents, Set<Listener<never>>>();

  /** Subscribe to `type`; returns a function that unsubscribes. */
  on<K extends keyof KernelEvents>(type: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Publish `event` to every listener of `type`. */
  emit<K extends keyof KernelEvents>(type: K, event: KernelEvents[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(event);
      } catch {
        // A listener's failure is its own; publishers never see it.
      }
    }
  }
}
