/**
 * Fair scheduling of THINK calls: a kernel-wide concurrency limit with one FIFO queue per
 * identity, served round-robin. When a slot frees, the next identity in the rotation gets it,
 * so one identity flooding THINK delays every other identity by at most one of its calls per
 * round. Waiting is bounded (a queue timeout) and cancellable (an AbortSignal).
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
  /** Per-key FIFO queues; the Map's insertion order is the rotation order. */
  readonly #queues = new Map<number, Waiter[]>();
  #queued = 0;

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

  /** Take the head of the first key in the rotation, and move that key to the back. */
  #next(): Waiter | undefined {
    for (const [key, queue] of this.#queues) {
      const waiter = queue.shift()!;
      this.#queued--;
      this.#queues.delete(key);
      if (queue.length > 0) this.#queues.set(key, queue);
      return waiter;
    }
    return undefined;
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
