/**
 * Unit tests of THINK's pure parts: the fair scheduler, the retry policy, quotas, the request
 * mapping (thinking budgets, images) and key redaction.
 */
import assert from "node:assert/strict";
import {
  FairScheduler,
  QueueAbortedError,
  QueueFullError,
  QueueTimeoutError,
} from "../kernel/llm_scheduler.ts";
import {
  DEFAULT_RETRY_POLICY,
  isRetryableStatus,
  parseRetryAfter,
  retryDelayMs,
} from "../kernel/llm_retry.ts";
import { type LlmQuota, quotaRefusal, recordCall, recordTokens } from "../kernel/llm_quota.ts";
import {
  ANSWER_TOKENS_WITH_THINKING,
  apiHeaders,
  buildMessageParams,
  DEFAULT_MAX_TOKENS,
  imageProblem,
  LEGACY_SAMPLING_API_VERSION,
  MAX_IMAGE_BYTES,
  THINKING_BUDGETS,
  THINKING_LEVELS,
  ThinkRequestError,
} from "../kernel/llm_request.ts";
import { API_KEY_ENV, redactSecrets, takeApiKeyFromEnv } from "../kernel/llm.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("scheduler: serves identities round-robin, not first-come-first-served", async () => {
  const s = new FairScheduler(1);
  const order: string[] = [];
  const first = await s.acquire(1); // A holds the only slot
  const waits: Promise<void>[] = [];
  const enqueue = (key: number, label: string) =>
    waits.push(
      s.acquire(key).then((release) => {
        order.push(label);
        release();
      }),
    );
  for (let i = 2; i <= 6; i++) enqueue(1, `A${i}`);
  enqueue(2, "B1");
  enqueue(3, "C1");
  enqueue(2, "B2");
  assert.equal(s.queued, 8);
  first();
  await Promise.all(waits);
  // A was just served (its first call): B and C, never served, go first; then turns alternate.
  assert.deepEqual(order, ["B1", "C1", "A2", "B2", "A3", "A4", "A5", "A6"]);
  assert.equal(s.active, 0);
  assert.equal(s.queued, 0);
});

Deno.test("scheduler: never more than `concurrency` slots, and FIFO within one identity", async () => {
  const s = new FairScheduler(3);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(Array.from({ length: 20 }, (_, i) =>
    s.acquire(7).then(async (release) => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await tick();
      running--;
      release();
    })));
  assert.equal(peak, 3);
  assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => i));
});

Deno.test("scheduler: an identity returning after a pause gets the next slot, once", async () => {
  const s = new FairScheduler(1);
  const order: string[] = [];
  const run = (key: number, label: string) =>
    s.acquire(key).then((release) => {
      order.push(label);
      release();
    });
  await run(2, "B0"); // B was served long ago
  const hold = await s.acquire(1);
  const waits = [run(1, "A1"), run(1, "A2"), run(1, "A3")];
  waits.push(run(2, "B1"), run(2, "B2"));
  hold();
  await Promise.all(waits);
  assert.deepEqual(order, ["B0", "B1", "A1", "B2", "A2", "A3"]);
});

Deno.test("scheduler: a queued waiter times out, and a late grant never reaches it", async () => {
  const s = new FairScheduler(1);
  const hold = await s.acquire(1);
  await assert.rejects(s.acquire(2, { timeoutMs: 30 }), QueueTimeoutError);
  assert.equal(s.queued, 0);
  hold();
  assert.equal(s.active, 0);
});

Deno.test("scheduler: an aborted waiter leaves the queue and the next one is served", async () => {
  const s = new FairScheduler(1);
  const hold = await s.acquire(1);
  const ac = new AbortController();
  const cancelled = s.acquire(2, { signal: ac.signal });
  const next = s.acquire(3);
  ac.abort();
  await assert.rejects(cancelled, QueueAbortedError);
  assert.equal(s.queued, 1);
  hold();
  const release = await next;
  assert.equal(s.active, 1);
  release();
  release(); // idempotent
  assert.equal(s.active, 0);
  const already = new AbortController();
  already.abort();
  await assert.rejects(s.acquire(4, { signal: already.signal }), QueueAbortedError);
});

Deno.test("scheduler: per-identity queue cap and cancelAll", async () => {
  const s = new FairScheduler(1, 2);
  const hold = await s.acquire(1);
  const a = s.acquire(1);
  const b = s.acquire(1);
  await assert.rejects(s.acquire(1), QueueFullError);
  const other = s.acquire(2); // other identities are not affected by one's cap
  s.cancelAll();
  await assert.rejects(a, QueueAbortedError);
  await assert.rejects(b, QueueAbortedError);
  await assert.rejects(other, QueueAbortedError);
  hold();
  assert.throws(() => new FairScheduler(0), RangeError);
});

Deno.test("retry: retryable statuses", () => {
  for (const s of [429, 500, 502, 503, 529]) assert.ok(isRetryableStatus(s), String(s));
  for (const s of [400, 401, 403, 404, 413, 422]) assert.ok(!isRetryableStatus(s), String(s));
});

Deno.test("retry: retry-after in seconds, milliseconds and HTTP dates", () => {
  const h = (init: Record<string, string>) => new Headers(init);
  assert.equal(parseRetryAfter(h({ "retry-after": "3" })), 3000);
  assert.equal(parseRetryAfter(h({ "retry-after": "0.5" })), 500);
  assert.equal(parseRetryAfter(h({ "retry-after-ms": "250", "retry-after": "9" })), 250);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter(h({ "retry-after": "Thu, 01 Jan 2026 00:00:07 GMT" }), now), 7000);
  assert.equal(parseRetryAfter(h({ "retry-after": "Wed, 31 Dec 2025 00:00:00 GMT" }), now), 0);
  assert.equal(parseRetryAfter(h({ "retry-after": "soon" })), null);
  assert.equal(parseRetryAfter(h({})), null);
  assert.equal(parseRetryAfter(undefined), null);
});

Deno.test("retry: backoff doubles, is capped, and honours a capped retry-after", () => {
  const p = DEFAULT_RETRY_POLICY;
  const none = () => 0;
  assert.equal(retryDelayMs(1, null, p, none), p.baseDelayMs);
  assert.equal(retryDelayMs(2, null, p, none), p.baseDelayMs * 2);
  assert.equal(retryDelayMs(3, null, p, none), p.baseDelayMs * 4);
  assert.equal(retryDelayMs(30, null, p, none), p.maxDelayMs);
  const jittered = retryDelayMs(2, null, p, () => 1);
  assert.ok(jittered >= p.baseDelayMs * 2 * 0.75 && jittered <= p.baseDelayMs * 2);
  assert.equal(retryDelayMs(1, 4000, p), 4000);
  assert.equal(retryDelayMs(1, 10 * 60_000, p), p.maxRetryAfterMs);
});

Deno.test("quota: refusals before the call, counters after", () => {
  const llm: LlmQuota = { max_tokens: 100, max_calls: 2, tokens_used: 0, calls_made: 0 };
  assert.equal(quotaRefusal(llm), null);
  assert.match(quotaRefusal(llm, 2)!, /0 of 2 calls used and 2 in progress.*max_calls/);
  recordCall(llm);
  recordTokens(llm, 60, 50);
  assert.equal(llm.calls_made, 1);
  assert.equal(llm.tokens_used, 110);
  assert.match(quotaRefusal(llm)!, /110 of 100 tokens used.*max_tokens/);
  recordCall(llm);
  assert.match(quotaRefusal(llm)!, /2 of 2 calls/);
  const open: LlmQuota = { max_tokens: null, max_calls: null, tokens_used: 9e9, calls_made: 9e9 };
  assert.equal(quotaRefusal(open, 100), null);
  const zero: LlmQuota = { max_tokens: null, max_calls: 0, tokens_used: 0, calls_made: 0 };
  assert.notEqual(quotaRefusal(zero), null);
});

Deno.test("request: every option maps to the Messages API request", () => {
  const p = buildMessageParams({
    prompt: "hi",
    system_instruction: "sys",
    model: "claude-x",
    max_tokens: 77,
    image: { data: "iVBORw0KGgo=", mime_type: "image/png" },
  }, "default-model");
  assert.deepEqual(p, {
    model: "claude-x",
    max_tokens: 77,
    system: "sys",
    messages: [{
      role: "user",
      content: [
        {
          type: "image",
          source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
        },
        { type: "text", text: "hi" },
      ],
    }],
  });
  assert.deepEqual(apiHeaders(p), {});
  const d = buildMessageParams({ prompt: "x" }, "default-model");
  assert.equal(d.model, "default-model");
  assert.equal(d.max_tokens, DEFAULT_MAX_TOKENS);
  assert.equal(d.thinking, undefined);
  const t = buildMessageParams({ prompt: "x", temperature: 0.2 }, "m");
  assert.equal(t.temperature, 0.2);
  assert.deepEqual(apiHeaders(t), { "anthropic-version": LEGACY_SAMPLING_API_VERSION });
});

Deno.test("request: thinking budgets grow and max_tokens must exceed them", () => {
  let last = 0;
  for (const level of THINKING_LEVELS) {
    const p = buildMessageParams({ prompt: "x", thinking_level: level }, "m");
    assert.deepEqual(p.thinking, { type: "enabled", budget_tokens: THINKING_BUDGETS[level] });
    assert.equal(p.max_tokens, THINKING_BUDGETS[level] + ANSWER_TOKENS_WITH_THINKING);
    assert.ok(THINKING_BUDGETS[level] > last && THINKING_BUDGETS[level] >= 1024);
    last = THINKING_BUDGETS[level];
  }
  assert.throws(
    () => buildMessageParams({ prompt: "x", thinking_level: "low", max_tokens: 2048 }, "m"),
    (e: Error) =>
      e instanceof ThinkRequestError && /greater than the thinking budget/.test(e.message),
  );
  assert.throws(
    () => buildMessageParams({ prompt: "x", thinking_level: "high", temperature: 0.5 }, "m"),
    (e: Error) => e instanceof ThinkRequestError && /temperature/.test(e.message),
  );
  const ok = buildMessageParams({ prompt: "x", thinking_level: "low", temperature: 1 }, "m");
  assert.equal(ok.temperature, 1);
});

Deno.test("request: images are checked for base64, size and type", () => {
  const b64 = (bytes: number[]) => btoa(String.fromCharCode(...bytes));
  const png = b64([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  const jpeg = b64([0xff, 0xd8, 0xff, 0xe0, 0, 16]);
  const gif = b64([...new TextEncoder().encode("GIF89a"), 1, 0]);
  const webp = b64([
    ...new TextEncoder().encode("RIFF"),
    0,
    0,
    0,
    0,
    ...new TextEncoder().encode("WEBPVP8 "),
  ]);
  assert.equal(imageProblem(png, "image/png"), null);
  assert.equal(imageProblem(jpeg, "image/jpeg"), null);
  assert.equal(imageProblem(gif, "image/gif"), null);
  assert.equal(imageProblem(webp, "image/webp"), null);
  assert.match(
    imageProblem(png, "image/jpeg")!,
    /image\/png image, but mime_type says image\/jpeg/,
  );
  assert.match(imageProblem(b64([1, 2, 3, 4, 5, 6]), "image/png")!, /not a JPEG, PNG, GIF or WebP/);
  assert.match(imageProblem("not base64!", "image/png")!, /not base64/);
  assert.match(imageProblem("data:image/png;base64," + png, "image/png")!, /not base64/);
  assert.match(imageProblem(png.slice(0, -1), "image/png")!, /not base64/);
  assert.match(imageProblem("", "image/png")!, /empty/);
  const huge = "A".repeat(Math.ceil((MAX_IMAGE_BYTES + 3) / 3) * 4);
  assert.match(imageProblem(huge, "image/png")!, /over the/);
});

Deno.test("redaction: the key and key-shaped strings never pass", () => {
  const key = "sk-ant-api03-secretsecretsecret";
  assert.equal(redactSecrets(`bad key ${key}!`, [key]), "bad key [redacted]!");
  assert.equal(redactSecrets("x test-key-123456 y", ["test-key-123456"]), "x [redacted] y");
  assert.equal(redactSecrets("leak sk-ant-abcdefghijk", []), "leak [redacted]");
  assert.equal(redactSecrets("nothing here", ["abc"]), "nothing here"); // too short to match
  assert.equal(
    redactSecrets("at http://me:pw@proxy:8080/v1 and https://tok@h/x", []),
    "at http://proxy:8080/v1 and https://h/x",
  );
});

Deno.test("the key is taken out of the process environment, so children cannot inherit it", async () => {
  const saved = Deno.env.get(API_KEY_ENV);
  try {
    Deno.env.set(API_KEY_ENV, "  test-key-from-env  ");
    assert.equal(takeApiKeyFromEnv(), "test-key-from-env");
    assert.equal(Deno.env.get(API_KEY_ENV), undefined);
    const child = await new Deno.Command("sh", { args: ["-c", `echo "[$${API_KEY_ENV}]"`] })
      .output();
    assert.equal(new TextDecoder().decode(child.stdout), "[]\n");
    assert.equal(takeApiKeyFromEnv(), null);
    Deno.env.set(API_KEY_ENV, "");
    assert.equal(takeApiKeyFromEnv(), null);
  } finally {
    if (saved !== undefined) Deno.env.set(API_KEY_ENV, saved);
  }
});
