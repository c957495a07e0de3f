/**
 * The kernel's LLM service (THINK): holds the only Anthropic API key, shares the model among
 * all identities through a fair scheduler, enforces the permission record's quotas, retries
 * rate-limit and overload answers, and keeps the key out of every response and log line.
 * @module
 */
import Anthropic from "@anthropic-ai/sdk";
import { SyscallError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import type { Kernel } from "./kernel.ts";
import { FairScheduler, QueueFullError, QueueTimeoutError } from "./llm_scheduler.ts";
import { quotaRefusal, recordCall, recordTokens } from "./llm_quota.ts";
import { isRetryableStatus, parseRetryAfter, retryDelayMs, sleep } from "./llm_retry.ts";
import type { RetryPolicy } from "./llm_retry.ts";
import {
  answerText,
  apiHeaders,
  buildMessageParams,
  type MessageParams,
  MODEL_NAME_RE,
  type ThinkInput,
  ThinkRequestError,
} from "./llm_request.ts";

/** The environment variable holding the API key. */
export const API_KEY_ENV = "ANTHROPIC_API_KEY";

/** Most THINK calls one identity may have waiting in the queue at once. */
export const MAX_QUEUED_PER_IDENTITY = 256;

/** What THINK answers when the kernel has no key. */
export const NO_KEY_MESSAGE =
  `THINK is unavailable: the kernel has no Anthropic API key; set ${API_KEY_ENV} in the ` +
  "kernel's environment and restart the kernel (agents never need or see the key)";

/** A THINK call's success response. */
export interface ThinkResponse {
  success: true;
  /** The answer's text blocks joined in order. */
  content: string;
  /** `usage.input_tokens + usage.output_tokens`. */
  tokens: number;
  error: null;
  /** The model that answered. */
  model: string;
  /** Why the model stopped (`end_turn`, `max_tokens`, ...). */
  stop_reason: string | null;
  usage: { input_tokens: number; output_tokens: number };
}

/** Settings of the service (from the kernel's config). */
export interface LlmSettings {
  model: string;
  concurrency: number;
  queueTimeoutMs: number;
  requestTimeoutMs: number;
  maxQueuedPerIdentity: number;
  retry: RetryPolicy;
  /** Explicit API base URL (from `ANTHROPIC_BASE_URL`), or null for the SDK's default. */
  baseUrl: string | null;
  /** Quotas given to every main-socket client's record, if set. */
  clientMaxCalls: number | null;
  clientMaxTokens: number | null;
}

/**
 * Read the API key from the environment and remove it from the kernel's own environment,
 * so no child process (EXEC, agents) can inherit it. Empty means absent.
 */
export function takeApiKeyFromEnv(): string | null {
  let key: string | undefined;
  try {
    key = Deno.env.get(API_KEY_ENV);
    Deno.env.delete(API_KEY_ENV);
  } catch {
    return null;
  }
  key = key?.trim();
  return key ? key : null;
}

/**
 * Replace every occurrence of each secret and anything shaped like an Anthropic key, and drop
 * credentials written into URLs (`https://user:pass@host`).
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]");
  return out.replace(/sk-ant-[A-Za-z0-9_-]{8,}/g, "[redacted]")
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1"); // credentials in URLs
}

/** A base URL fit to print: origin and path, without credentials or query. */
function printableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(unparseable)";
  }
}

const MAX_API_MESSAGE = 1_000;

/** The service behind THINK. One per kernel. */
export class LlmService {
  readonly settings: LlmSettings;
  readonly scheduler: FairScheduler;
  readonly #apiKey: string | null;
  readonly #secrets: string[];
  #client: Anthropic | null = null;
  #configProblem: string | null = null;
  /** Admitted calls per identity not yet sent (counted against max_calls). */
  readonly #reserved = new Map<number, number>();
  readonly #shutdown = new AbortController();

  constructor(private readonly kernel: Kernel, settings: LlmSettings, apiKey: string | null) {
    this.settings = settings;
    this.#apiKey = apiKey;
    this.#secrets = apiKey ? [apiKey] : [];
    this.scheduler = new FairScheduler(settings.concurrency, settings.maxQueuedPerIdentity);
    if (!MODEL_NAME_RE.test(settings.model)) {
      this.#configProblem =
        "the kernel's default model (--model or AGENTOS_MODEL) is not a valid model name";
    } else if (settings.baseUrl !== null) {
      try {
        const u = new URL(settings.baseUrl);
        if (u.protocol !== "http:" && u.protocol !== "https:") {
          this.#configProblem = "ANTHROPIC_BASE_URL must be an http or https URL";
        }
      } catch {
        this.#configProblem = "ANTHROPIC_BASE_URL is not a valid URL";
      }
    }
    if (settings.clientMaxCalls !== null || settings.clientMaxTokens !== null) {
      kernel.bus.on("connection.opened", ({ identityId }) => {
        const identity = kernel.identities.get(identityId);
        if (identity?.kind !== "client") return;
        const llm = identity.permissions.llm;
        if (settings.clientMaxCalls !== null) llm.max_calls = settings.clientMaxCalls;
        if (settings.clientMaxTokens !== null) llm.max_tokens = settings.clientMaxTokens;
      });
    }
    kernel.onRelease((id) => {
      this.#reserved.delete(id);
      this.scheduler.forget(id);
    });
    kernel.onShutdown(() => {
      this.#shutdown.abort(new Error("the kernel is shutting down"));
      this.scheduler.cancelAll();
    });
  }

  /** Whether a key is configured. */
  get hasKey(): boolean {
    return this.#apiKey !== null;
  }

  /** Log what THINK will use (never the key itself). */
  start(): void {
    const fields = {
      model: this.settings.model,
      concurrency: this.settings.concurrency,
      api_key: this.#apiKey ? "set" : `missing (set ${API_KEY_ENV})`,
      base_url: this.settings.baseUrl === null
        ? "default"
        : printableUrl(this.redact(this.settings.baseUrl)),
    };
    if (this.#configProblem) {
      this.kernel.log.error(`THINK: ${this.#configProblem}`, fields);
    } else if (this.#apiKey) this.kernel.log.info("THINK ready", fields);
    else this.kernel.log.info("THINK unavailable: no API key", fields);
  }

  /** Remove the key (and key-shaped strings) from `text`. */
  redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }

  /** Serve one THINK call for `identity`. Throws only {@link SyscallError}. */
  async think(identity: Identity, input: ThinkInput, signal: AbortSignal): Promise<ThinkResponse> {
    try {
      return await this.#think(identity, input, signal);
    } catch (err) {
      if (err instanceof SyscallError) {
        throw new SyscallError(err.code, this.redact(err.message));
      }
      const message = this.redact(err instanceof Error ? err.message : String(err));
      this.kernel.log.error("THINK failed unexpectedly", { identity: identity.id, error: message });
      throw new SyscallError("ERROR", `THINK failed: ${message}`);
    }
  }

  async #think(identity: Identity, input: ThinkInput, signal: AbortSignal): Promise<ThinkResponse> {
    if (this.#apiKey === null) throw new SyscallError("ERROR", NO_KEY_MESSAGE);
    if (this.#configProblem) {
      throw new SyscallError("ERROR", `THINK is unavailable: ${this.#configProblem}`);
    }
    let params: MessageParams;
    try {
      params = buildMessageParams(input, this.settings.model);
    } catch (err) {
      if (err instanceof ThinkRequestError) {
        throw new SyscallError("INVALID_MSG", `THINK: ${err.message}`);
      }
      throw err;
    }
    const id = identity.id;
    const refusal = this.#chainRefusal(identity);
    if (refusal) throw new SyscallError("QUOTA_EXCEEDED", refusal);

    this.#reserve(id, 1);
    let reserved = true;
    const unreserve = () => {
      if (reserved) this.#reserve(id, -1);
      reserved = false;
    };
    const cancel = AbortSignal.any([signal, this.#shutdown.signal]);
    const queuedAt = Date.now();
    try {
      let release: () => void;
      try {
        release = await this.scheduler.acquire(id, {
          signal: cancel,
          timeoutMs: this.settings.queueTimeoutMs,
        });
      } catch (err) {
        if (err instanceof QueueTimeoutError) {
          throw new SyscallError(
            "TIMEOUT",
            `THINK timed out: ${err.message} (limit ${
              Math.round(this.settings.queueTimeoutMs / 1000)
            } s, at most ${this.settings.concurrency} at a time); try again later`,
          );
        }
        if (err instanceof QueueFullError) {
          throw new SyscallError(
            "QUOTA_EXCEEDED",
            `THINK refused: ${err.message}; wait for some to finish before sending more`,
          );
        }
        throw new SyscallError("ERROR", `THINK cancelled: ${(err as Error).message}`);
      }
      try {
        // Another call of this identity may have used up its tokens while this one waited.
        unreserve();
        const late = this.#chainRefusal(identity);
        if (late) throw new SyscallError("QUOTA_EXCEEDED", late);
        const chain = this.#chain(identity);
        for (const who of chain) recordCall(who.permissions.llm);
        const started = Date.now();
        const { message, attempts } = await this.#send(params, cancel, id);
        const input_tokens = nonNegative(message.usage?.input_tokens);
        const output_tokens = nonNegative(message.usage?.output_tokens);
        for (const who of chain) recordTokens(who.permissions.llm, input_tokens, output_tokens);
        this.kernel.log.debug("THINK answered", {
          identity: id,
          model: message.model,
          input_tokens,
          output_tokens,
          attempts,
          queued_ms: started - queuedAt,
          ms: Date.now() - started,
        });
        return {
          success: true,
          content: this.redact(answerText(message)),
          tokens: input_tokens + output_tokens,
          error: null,
          model: typeof message.model === "string" ? message.model : params.model,
          stop_reason: typeof message.stop_reason === "string" ? message.stop_reason : null,
          usage: { input_tokens, output_tokens },
        };
      } finally {
        release();
      }
    } finally {
      unreserve();
    }
  }

  /**
   * `identity` and its live ancestors (spawners), nearest first. A quota binds the whole subtree
   * below it: calls and tokens of an agent count against every live ancestor too, so a spawner
   * with a quota cannot multiply it by spawning children (no escalation, DESIGN section 3).
   */
  #chain(identity: Identity): Identity[] {
    const out = [identity];
    let parent = identity.parentId;
    for (let hops = 0; parent !== null && hops < 10_000; hops++) {
      const up = this.kernel.identities.get(parent);
      if (!up || out.includes(up)) break;
      out.push(up);
      parent = up.parentId;
    }
    return out;
  }

  /** Why THINK is refused for `identity` by its own quota or an ancestor's, or null. */
  #chainRefusal(identity: Identity): string | null {
    for (const who of this.#chain(identity)) {
      const refusal = quotaRefusal(who.permissions.llm, this.#reserved.get(who.id) ?? 0);
      if (refusal === null) continue;
      return who === identity
        ? refusal
        : `${refusal} — the quota of identity ${who.id}, which spawned this agent (directly or through its descendants), covers its descendants too`;
    }
    return null;
  }

  #reserve(id: number, delta: number): void {
    const n = (this.#reserved.get(id) ?? 0) + delta;
    if (n > 0) this.#reserved.set(id, n);
    else this.#reserved.delete(id);
  }

  #sdk(): Anthropic {
    if (!this.#client) {
      this.#client = new Anthropic({
        apiKey: this.#apiKey!,
        ...(this.settings.baseUrl !== null ? { baseURL: this.settings.baseUrl } : {}),
        maxRetries: 0, // retries are ours: see #send
        timeout: this.settings.requestTimeoutMs,
        logLevel: "off",
      });
    }
    return this.#client;
  }

  /** Send with retries on 429, 529, 5xx and dropped connections. */
  async #send(
    params: MessageParams,
    signal: AbortSignal,
    identityId: number,
  ): Promise<{ message: Anthropic.Message; attempts: number }> {
    const policy = this.settings.retry;
    for (let attempt = 1;; attempt++) {
      let err: unknown;
      try {
        const message = await this.#sdk().messages.create(params, {
          signal,
          headers: apiHeaders(params),
        });
        if (!message || !Array.isArray(message.content)) {
          throw new SyscallError("ERROR", "THINK failed: the API answered with an unexpected body");
        }
        return { message, attempts: attempt };
      } catch (e) {
        err = e;
      }
      if (signal.aborted || err instanceof Anthropic.APIUserAbortError) {
        throw new SyscallError(
          "ERROR",
          "THINK cancelled: the connection closed or the kernel stopped",
        );
      }
      if (err instanceof SyscallError) throw err;
      const status = err instanceof Anthropic.APIError ? err.status : undefined;
      const retryable = status !== undefined
        ? isRetryableStatus(status)
        : err instanceof Anthropic.APIConnectionError &&
          !(err instanceof Anthropic.APIConnectionTimeoutError);
      if (!retryable || attempt >= policy.maxAttempts) throw this.#apiFailure(err, attempt);
      const headers = err instanceof Anthropic.APIError ? err.headers : undefined;
      const wait = retryDelayMs(attempt, parseRetryAfter(headers), policy);
      this.kernel.log.warn("THINK retrying", {
        identity: identityId,
        status: status ?? "connection error",
        attempt,
        wait_ms: wait,
      });
      try {
        await sleep(wait, signal);
      } catch {
        throw new SyscallError(
          "ERROR",
          "THINK cancelled: the connection closed or the kernel stopped",
        );
      }
    }
  }

  /** The SyscallError for an API failure, with the API's own message. */
  #apiFailure(err: unknown, attempts: number): SyscallError {
    const after = attempts > 1 ? ` after ${attempts} attempts` : "";
    if (err instanceof Anthropic.APIConnectionTimeoutError) {
      return new SyscallError(
        "TIMEOUT",
        `THINK timed out: the Anthropic API did not answer within ` +
          `${Math.round(this.settings.requestTimeoutMs / 1000)} s${after}`,
      );
    }
    if (err instanceof Anthropic.APIError && err.status === undefined) {
      // The deepest cause says most ("Connection refused" rather than "fetch failed").
      let why = err.message;
      let cause = (err as { cause?: unknown }).cause;
      for (let depth = 0; depth < 5 && cause instanceof Error; depth++) {
        why = cause.message;
        cause = (cause as { cause?: unknown }).cause;
      }
      const where = this.settings.baseUrl === null
        ? ""
        : ` at ${printableUrl(this.settings.baseUrl)}`;
      return new SyscallError("ERROR", `cannot reach the Anthropic API${where}${after}: ${why}`);
    }
    if (err instanceof Anthropic.APIError) {
      const status = err.status!;
      const detail = apiMessage(err);
      const text = status === 401
        ? `authentication failed: ${detail} (check ${API_KEY_ENV} in the kernel's environment)`
        : status === 429
        ? `rate limited by the Anthropic API (429)${after}: ${detail}`
        : status === 529
        ? `the Anthropic API is overloaded (529)${after}: ${detail}`
        : status >= 500
        ? `the Anthropic API failed (${status})${after}: ${detail}`
        : `the Anthropic API refused the request (${status}): ${detail}`;
      return new SyscallError("ERROR", text);
    }
    return new SyscallError("ERROR", `THINK failed: ${err instanceof Error ? err.message : err}`);
  }
}

function apiMessage(err: InstanceType<typeof Anthropic.APIError>): string {
  let text = err.apiMessage ??
    (err.error !== undefined && err.error !== null ? JSON.stringify(err.error) : err.message);
  if (typeof text !== "string" || text === "") text = "(no message)";
  return text.length > MAX_API_MESSAGE ? `${text.slice(0, MAX_API_MESSAGE)}…` : text;
}

function nonNegative(n: unknown): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}
