/**
 * Bounds on how many calls of one op may run at once, per identity and kernel-wide. Ops that
 * hold real resources (processes, sockets) declare `maxInFlight` in the registry; dispatch
 * refuses a call over the bound with `QUOTA_EXCEEDED` instead of queueing without limit.
 * @module
 */

/** The bound an op declares. */
export interface InFlightBound {
  /** Calls of this op one identity may have running at once. */
  perIdentity: number;
  /** Calls of this op all identities together may have running at once. */
  total: number;
}

/** Counts running calls per op and per (identity, op). */
export class InFlightLimiter {
  readonly #total = new Map<number, number>();
  readonly #perIdentity = new Map<string, number>();

  /** Number of calls of `op` running now (all identities). */
  running(op: number): number {
    return this.#total.get(op) ?? 0;
  }

  /**
   * Take a slot for `identityId` calling `op` under `bound`. Returns a release function, or a
   * sentence saying which bound is full.
   */
  acquire(op: number, identityId: number, bound: InFlightBound): (() => void) | string {
    const key = `${identityId}:${op}`;
    const mine = this.#perIdentity.get(key) ?? 0;
    const all = this.#total.get(op) ?? 0;
    if (mine >= bound.perIdentity) {
      return `${bound.perIdentity} calls of this op are already running for this identity; wait for one to finish`;
    }
    if (all >= bound.total) {
      return `${bound.total} calls of this op are already running in the kernel; try again shortly`;
    }
    this.#perIdentity.set(key, mine + 1);
    this.#total.set(op, all + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const m = (this.#perIdentity.get(key) ?? 1) - 1;
      if (m === 0) this.#perIdentity.delete(key);
      else this.#perIdentity.set(key, m);
      this.#total.set(op, (this.#total.get(op) ?? 1) - 1);
    };
  }
}
