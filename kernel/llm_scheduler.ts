/**
 * Fair scheduling of THINK calls: a kernel-wide concurrency limit with one FIFO queue per
 * identity, served round-robin. When a slot frees, it goes to the waiting identity that was
 * served longest ago (one that was never served, or has just arrived, comes first; ties go to
 * the one that started waiting first), so every waiting identity gets one turn per round and
 * one identity flooding THINK delays another's call by at most the calls already running.
 * Waiting is bounded (a queue timeout) and cancellable (an AbortSignal).
 * @module
 */

/** The wait in the queue passed its bound. */
export class QueueTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`waited ${Math.round(waitedMs / 1000)} s in the THINK queue without getting a slot`);
    this.name = "QueueTimeoutError";
  }
}

/** The waiter's signal was aborted (its connection closed) or the scheduler was shut down. */
export class QueueAbortedError extends Error {
  constructor(message = "the THINK call was cancelled while queued") {
    super(message);
    this.name = "QueueAbortedError";
  }
}

/** Too many calls of one identity are already waiting. */
export class QueueFullError extends Error {
  constructor(readonly limit: number) {
    super(`${limit} THINK calls of this caller are already queued`);
    this.name = "QueueFullError";
  }
}

/** Options of one {@link FairScheduler.acquire}. */
export interface AcquireOptions {
  /** Leave the queue (rejecting with {@link QueueAbortedError}) when this aborts. */
  signal?: AbortSignal;
  /** Reject with {@link QueueTimeoutError} after this long in the queue. */
  timeoutMs?: number;
}

/** Call once when the work is done; later calls do nothing. */
export type Release = () => void;

interface Waiter {
  readonly key: number;
  readonly since: number;
  resolve(release: Release): void;
  reject(err: Error): void;
  timer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A counting semaphore whose waiters are served round-robin across keys (identities). */
export class FairScheduler {
  #active = 0;
  /** Per-key FIFO queues, in the order the keys started waiting. */
  readonly #queues = new Map<number, Waiter[]>();
  #queued = 0;
  /** When each key was last granted a slot (a grant counter), for the rotation. */
  readonly #lastServed = new Map<number, number>();
  #grants = 0;

  /**
   * @param concurrency most slots held at once (at least 1)
   * @param maxQueuedPerKey most waiters one key may have at once
   */
  constructor(readonly concurrency: number, readonly maxQueuedPerKey = Infinity) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError("concurrency must be an integer of at least 1");
    }
  }

  /** Slots in use. */
  get active(): number {
    return this.#active;
  }

  /** Waiters across all keys. */
  get queued(): number {
    return this.#queued;
  }

  /** Waiters of one key. */
  queuedFor(key: number): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  /** Wait for a slot for `key`. Resolves with the function that gives the slot back. */
  acquire(key: number, options: AcquireOptions = {}): Promise<Release> {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(new QueueAbortedError());
    if (this.#active < this.concurrency && this.#queued === 0) {
      this.#active++;
      this.#lastServed.set(key, ++this.#grants);
      return Promise.resolve(this.#releaser());
    }
    const queue = this.#queues.get(key);
    if ((queue?.length ?? 0) >= this.maxQueuedPerKey) {
      return Promise.reject(new QueueFullError(this.maxQueuedPerKey));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { key, since: Date.now(), resolve, reject, signal };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.#remove(waiter);
          reject(new QueueTimeoutError(Date.now() - waiter.since));
        }, Math.max(0, timeoutMs));
      }
      if (signal) {
        waiter.onAbort = () => {
          this.#remove(waiter);
          reject(new QueueAbortedError());
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      if (queue) queue.push(waiter);
      else this.#queues.set(key, [waiter]);
      this.#queued++;
    });
  }

  /** Forget `key`'s place in the rotation (its identity is gone). */
  forget(key: number): void {
    if (!this.#queues.has(key)) this.#lastServed.delete(key);
  }

  /** Reject every waiter (shutdown). Slots already held stay held until released. */
  cancelAll(message = "the kernel is shutting down"): void {
    for (const queue of [...this.#queues.values()]) {
      for (const waiter of [...queue]) {
        this.#remove(waiter);
        waiter.reject(new QueueAbortedError(message));
      }
    }
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#pump();
    };
  }

  #pump(): void {
    while (this.#active < this.concurrency) {
      const waiter = this.#next();
      if (!waiter) return;
      this.#detach(waiter);
      this.#active++;
      waiter.resolve(this.#releaser());
    }
  }

  /** Take the head of the queue of the waiting key served longest ago. */
  #next(): Waiter | undefined {
    let pick: number | undefined;
    let pickServed = Infinity;
    for (const key of this.#queues.keys()) {
      const served = this.#lastServed.get(key) ?? 0;
      if (served < pickServed) {
        pick = key;
        pickServed = served;
      }
    }
    if (pick === undefined) return undefined;
    const queue = this.#queues.get(pick)!;
    const waiter = queue.shift()!;
    this.#queued--;
    if (queue.length === 0) this.#queues.delete(pick);
    this.#lastServed.set(pick, ++this.#grants);
    return waiter;
  }

  #detach(waiter: Waiter): void {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener("abort", waiter.onAbort);
  }

  #remove(waiter: Waiter): void {
    this.#detach(waiter);
    const queue = this.#queues.get(waiter.key);
    if (!queue) return;
    const i = queue.indexOf(waiter);
    if (i < 0) return;
    queue.splice(i, 1);
    this.#queued--;
    if (queue.length === 0) this.#queues.delete(waiter.key);
  }
}
