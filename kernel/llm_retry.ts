/**
 * Retry policy of THINK: which API answers are retried, and how long to wait before the next
 * attempt (exponential backoff with jitter, or the server's `retry-after`, capped).
 * @module
 */

/** Tunables of {@link retryDelayMs}. */
export interface RetryPolicy {
  /** Attempts in total, the first included (at least 1). */
  maxAttempts: number;
  /** Backoff before the second attempt when the server gives no `retry-after`. */
  baseDelayMs: number;
  /** Largest backoff computed without `retry-after`. */
  maxDelayMs: number;
  /** Largest wait honoured from a `retry-after` header. */
  maxRetryAfterMs: number;
}

/** Defaults: 4 attempts, 0.5 s doubling to at most 8 s, `retry-after` honoured up to 60 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/** True for the statuses worth another attempt: 429 (rate limit), 529 (overload), 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 529 || (status >= 500 && status <= 599);
}

/**
 * The wait the server asked for, in ms, from `retry-after-ms` (milliseconds) or `retry-after`
 * (seconds, or an HTTP date). Null when absent or unreadable; never negative.
 */
export function parseRetryAfter(
  headers: Headers | undefined | null,
  now: number = Date.now(),
): number | null {
  if (!headers) return null;
  const ms = headers.get("retry-after-ms")?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.max(0, Math.ceil(Number(ms)));
  const value = headers.get("retry-after")?.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.max(0, Math.ceil(Number(value) * 1000));
  const date = Date.parse(value);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/**
 * How long to wait after failed attempt number `attempt` (1-based) before the next one: the
 * server's `retry-after` capped at `maxRetryAfterMs`, else `baseDelayMs * 2^(attempt-1)`
 * capped at `maxDelayMs`, with up to 25% jitter subtracted so clients do not retry in lockstep.
 */
export function retryDelayMs(
  attempt: number,
  retryAfterMs: number | null,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const exp = Math.min(policy.baseDelayMs * 2 ** Math.max(0, attempt - 1), policy.maxDelayMs);
  return Math.round(exp * (1 - 0.25 * random()));
}

/** Resolve after `ms`, or reject with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error("aborted"));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error("aborted"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
