/**
 * THINK end to end: a real kernel process, the real `@anthropic-ai/sdk` inside it, pointed by
 * ANTHROPIC_BASE_URL at a fake Messages API served on loopback by this test (hono), which
 * records every request it gets.
 */
import assert from "node:assert/strict";
import { runCli, startKernel, type TestKernel } from "./helpers/kernel.ts";
import {
  type FakeAnthropic,
  fakeError,
  fakeMessage,
  startFakeAnthropic,
} from "./helpers/fake_anthropic.ts";
import type { AgentOSClient } from "../sdk/mod.ts";
import { THINKING_BUDGETS, THINKING_LEVELS } from "../kernel/llm_request.ts";
import { DEFAULT_MODEL } from "../kernel/config.ts";

const KEY = `test-key-${crypto.randomUUID()}`;

/** Start a fake API and a kernel using it; run `body`; clean both up. */
async function withKernel(
  options: {
    args?: string[];
    env?: Record<string, string>;
    delayMs?: number;
    usage?: { input_tokens: number; output_tokens: number };
  },
  body: (k: TestKernel, fake: FakeAnthropic) => Promise<void>,
): Promise<void> {
  const fake = await startFakeAnthropic({ delayMs: options.delayMs, usage: options.usage });
  let kernel: TestKernel | undefined;
  try {
    kernel = await startKernel({
      args: ["--log-level", "debug", ...(options.args ?? [])],
      env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url, ...options.env },
    });
    // The socket answers before every service has started and logged; wait for the end.
    const deadline = Date.now() + 30_000;
    while (!kernel.logs().includes("kernel listening") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await body(kernel, fake);
  } finally {
    if (kernel) {
      await kernel.stop();
      assert.ok(!kernel.logs().includes(KEY), "the API key appeared in the kernel's log");
    }
    await fake.close();
  }
}

function png(): string {
  const bytes = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44];
  return btoa(String.fromCharCode(...bytes));
}

/** Every response a test saw, to check that none carries the key. */
const seen: unknown[] = [];
async function think(
  c: AgentOSClient,
  prompt: string,
  options: Parameters<AgentOSClient["think"]>[1] = {},
) {
  const r = await c.think(prompt, options);
  seen.push(r);
  assert.ok(!JSON.stringify(r).includes(KEY), "the API key appeared in a THINK response");
  return r;
}

Deno.test("THINK maps every option, surfaces API errors, retries 429/529/5xx, never leaks the key", async (t) => {
  await withKernel({
    args: ["--model", "claude-flag-model", "--llm-max-attempts", "3"],
    env: { AGENTOS_MODEL: "claude-env-model" },
  }, async (k, fake) => {
    const c = await k.client();

    await t.step(
      "prompt, system, model and max_tokens reach the API; the answer comes back",
      async () => {
        const r = await think(c, "hello", {
          system_instruction: "be brief",
          model: "claude-x-1",
          max_tokens: 100,
        });
        assert.deepEqual(r, {
          success: true,
          content: "echo: hello",
          tokens: 18,
          error: null,
          model: "claude-x-1",
          stop_reason: "end_turn",
          usage: { input_tokens: 11, output_tokens: 7 },
        });
        const [req] = fake.requestsFor("hello");
        assert.equal(req.method, "POST");
        assert.equal(req.path, "/v1/messages");
        assert.deepEqual(req.body, {
          model: "claude-x-1",
          max_tokens: 100,
          system: "be brief",
          messages: [{ role: "user", content: [{ type: "text", text: "hello" }] }],
        });
        // The SDK sends the kernel's key; which header depends on the SDK version.
        assert.ok(
          req.headers["authorization"] === `Bearer ${KEY}` || req.headers["x-api-key"] === KEY,
          "the kernel's key was not sent",
        );
        assert.equal(req.headers["anthropic-version"], "2026-10-21");
      },
    );

    await t.step(
      "defaults: --model beats AGENTOS_MODEL; max_tokens 4096; no thinking",
      async () => {
        const r = await think(c, "defaults");
        assert.equal(r.success, true);
        const [req] = fake.requestsFor("defaults");
        assert.equal(req.body?.model, "claude-flag-model");
        assert.equal(req.body?.max_tokens, 4096);
        assert.equal(req.body?.system, undefined);
        assert.equal(req.body?.thinking, undefined);
        assert.equal(req.body?.temperature, undefined);
      },
    );

    await t.step("temperature is sent, with the API version that accepts it", async () => {
      const r = await think(c, "warm", { temperature: 0.3 });
      assert.equal(r.success, true);
      const [req] = fake.requestsFor("warm");
      assert.equal(req.body?.temperature, 0.3);
      assert.equal(req.headers["anthropic-version"], "2023-06-01");
    });

    await t.step("an image becomes a base64 image block before the prompt", async () => {
      const data = png();
      const r = await think(c, "what is this?", { image: { data, mime_type: "image/png" } });
      assert.equal(r.success, true);
      const [req] = fake.requestsFor("what is this?");
      assert.deepEqual((req.body?.messages as unknown[])[0], {
        role: "user",
        content: [
          { type: "image", source: { type: "base64", media_type: "image/png", data } },
          { type: "text", text: "what is this?" },
        ],
      });
    });

    await t.step("bad images are refused before any request", async () => {
      const before = fake.requests.length;
      const cases: [unknown, RegExp][] = [
        [{ data: "%%%not-base64", mime_type: "image/png" }, /image\.data.*not base64/],
        [
          { data: png(), mime_type: "image/jpeg" },
          /image\/png image, but mime_type says image\/jpeg/,
        ],
        [{ data: btoa("plain text here"), mime_type: "image/png" }, /not a JPEG, PNG, GIF or WebP/],
        [{ data: png(), mime_type: "image/bmp" }, /image\.mime_type/],
        [{ data: png(), mime_type: "image/png", url: "http://x" }, /image/],
      ];
      for (const [image, pattern] of cases) {
        const r = await c.request("THINK", { prompt: "img", image } as never);
        assert.equal(r.success, false);
        assert.equal((r as { code: string }).code, "INVALID_MSG");
        assert.match((r as { error: string }).error, pattern);
      }
      assert.equal(fake.requests.length, before);
    });

    await t.step(
      "thinking levels: extended thinking with growing budgets; text blocks only",
      async () => {
        let previous = 0;
        for (const level of THINKING_LEVELS) {
          fake.script((req) => ({
            body: fakeMessage(req, { input_tokens: 5, output_tokens: 40 }, [
              { type: "thinking", thinking: "secret reasoning", signature: "sig" },
              { type: "text", text: `answer ${level}, `, citations: null },
              { type: "text", text: "part two", citations: null },
            ]),
          }));
          const r = await think(c, `think ${level}`, { thinking_level: level });
          assert.equal(r.success, true);
          if (r.success) {
            assert.equal(r.content, `answer ${level}, part two`);
            assert.equal(r.tokens, 45);
          }
          const [req] = fake.requestsFor(`think ${level}`);
          const budget = THINKING_BUDGETS[level];
          assert.deepEqual(req.body?.thinking, { type: "enabled", budget_tokens: budget });
          assert.ok((req.body?.max_tokens as number) > budget);
          assert.ok(budget > previous);
          previous = budget;
        }
        const explicit = await think(c, "think explicit", {
          thinking_level: "medium",
          max_tokens: 9000,
        });
        assert.equal(explicit.success, true);
        assert.equal(fake.requestsFor("think explicit")[0].body?.max_tokens, 9000);
      },
    );

    await t.step(
      "payloads the API would refuse are refused clearly, without a request",
      async () => {
        const before = fake.requests.length;
        const cases: [Record<string, unknown>, RegExp][] = [
          [
            { prompt: "x", thinking_level: "low", max_tokens: 1000 },
            /greater than the thinking budget/,
          ],
          [
            { prompt: "x", thinking_level: "high", temperature: 0.5 },
            /temperature cannot be combined/,
          ],
          [{ prompt: "x", model: "bad model!" }, /field "model"/],
          [{ prompt: "x", thinking_level: "extreme" }, /field "thinking_level"/],
          [{ prompt: "x", temperature: 3 }, /field "temperature"/],
          [{ prompt: "x", max_tokens: 0 }, /field "max_tokens"/],
          [{ prompt: "" }, /field "prompt"/],
          [{ prompt: "x", api_key: "mine" }, /api_key/],
          [{}, /field "prompt"/],
        ];
        for (const [payload, pattern] of cases) {
          const r = await c.request("THINK", payload as never);
          seen.push(r);
          assert.equal(r.success, false, JSON.stringify(payload));
          assert.equal((r as { code: string }).code, "INVALID_MSG", JSON.stringify(r));
          assert.match((r as { error: string }).error, pattern);
          assert.equal((r as unknown as { content: string }).content, "");
        }
        assert.equal(fake.requests.length, before);
      },
    );

    await t.step("401: surfaced with the API's message, not retried, key scrubbed", async () => {
      fake.script((req) => ({
        status: 401,
        // A hostile or careless server echoing the credential it got.
        body: fakeError(
          "authentication_error",
          `invalid x-api-key: ${req.headers["authorization"]}`,
        ),
      }));
      const r = await think(c, "unauthorised");
      assert.equal(r.success, false);
      if (!r.success) {
        assert.equal(r.code, "ERROR");
        assert.match(r.error, /^authentication failed: invalid x-api-key: Bearer \[redacted\]/);
        assert.match(r.error, /ANTHROPIC_API_KEY/);
      }
      assert.equal(fake.requestsFor("unauthorised").length, 1);
    });

    await t.step("400: the API's message, not retried", async () => {
      fake.script({ status: 400, body: fakeError("invalid_request_error", "prompt is too long") });
      const r = await think(c, "too long");
      assert.equal(r.success, false);
      if (!r.success) assert.match(r.error, /refused the request \(400\): prompt is too long/);
      assert.equal(fake.requestsFor("too long").length, 1);
    });

    await t.step("429 with retry-after: waits as told, then succeeds", async () => {
      fake.script({
        status: 429,
        body: fakeError("rate_limit_error", "slow down"),
        headers: { "retry-after": "1" },
      });
      const r = await think(c, "rate limited");
      assert.equal(r.success, true);
      const reqs = fake.requestsFor("rate limited");
      assert.equal(reqs.length, 2);
      assert.ok(reqs[1].at - reqs[0].at >= 900, `retried after ${reqs[1].at - reqs[0].at} ms`);
    });

    await t.step("529 (retry-after as an HTTP date) then 500, then success", async () => {
      fake.script(
        {
          status: 529,
          body: fakeError("overloaded_error", "overloaded"),
          headers: { "retry-after": new Date(Date.now() + 3000).toUTCString() },
        },
        { status: 500, body: fakeError("api_error", "boom"), headers: { "retry-after": "0" } },
      );
      const r = await think(c, "overloaded");
      assert.equal(r.success, true);
      const reqs = fake.requestsFor("overloaded");
      assert.equal(reqs.length, 3);
      // At least ~2 s: the date, not the 0.5 s backoff the kernel would use without it.
      assert.ok(reqs[1].at - reqs[0].at >= 1500, `retried after ${reqs[1].at - reqs[0].at} ms`);
    });

    await t.step(
      "retries are bounded: 503 three times is an error naming the attempts",
      async () => {
        const fail = {
          status: 503,
          body: fakeError("api_error", "down for maintenance"),
          headers: { "retry-after": "0" },
        };
        fake.script(fail, fail, fail);
        const r = await think(c, "down");
        assert.equal(r.success, false);
        if (!r.success) {
          assert.equal(r.code, "ERROR");
          assert.match(r.error, /failed \(503\) after 3 attempts: down for maintenance/);
        }
        assert.equal(fake.requestsFor("down").length, 3);
      },
    );

    await t.step("agentos think: flags map to the request; usage errors exit 2", async () => {
      const out = await runCli([
        "think",
        "from the cli",
        "--socket",
        k.socket,
        "--system",
        "S",
        "--thinking",
        "low",
        "--max-tokens",
        "5000",
        "--model",
        "claude-cli",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, "echo: from the cli\n");
      const [req] = fake.requestsFor("from the cli");
      assert.equal(req.body?.system, "S");
      assert.equal(req.body?.model, "claude-cli");
      assert.equal(req.body?.max_tokens, 5000);
      assert.deepEqual(req.body?.thinking, {
        type: "enabled",
        budget_tokens: THINKING_BUDGETS.low,
      });

      const json = await runCli(["think", "as json", "--socket", k.socket, "--json"]);
      assert.equal(json.code, 0, json.stderr);
      const parsed = JSON.parse(json.stdout);
      assert.equal(parsed.content, "echo: as json");
      assert.equal(parsed.tokens, 18);

      fake.script({ status: 401, body: fakeError("authentication_error", "no") });
      const failed = await runCli(["think", "cli 401", "--socket", k.socket]);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /authentication failed: no/);

      const usage = await runCli(["think", "x", "--socket", k.socket, "--thinking", "huge"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /--thinking must be one of low, medium, high/);
      for (const out of [json, failed, usage]) {
        assert.ok(!(out.stdout + out.stderr).includes(KEY));
      }
    });

    await t.step("the key is in no response and no log line", () => {
      assert.ok(seen.length > 20);
      assert.ok(!JSON.stringify(seen).includes(KEY));
      const logs = k.logs();
      assert.match(logs, /THINK ready/);
      assert.match(logs, /THINK retrying/);
      assert.match(logs, /THINK answered/);
      assert.ok(!logs.includes(KEY));
    });
  });
});

Deno.test("THINK without a key: a clear error naming ANTHROPIC_API_KEY, and no request", async () => {
  await withKernel(
    { env: { ANTHROPIC_API_KEY: "", AGENTOS_MODEL: "claude-env-model" } },
    async (k, fake) => {
      const c = await k.client();
      const r = await c.think("anyone there?");
      assert.equal(r.success, false);
      if (!r.success) {
        assert.equal(r.code, "ERROR");
        assert.match(r.error, /ANTHROPIC_API_KEY/);
        assert.equal(r.content, "");
        assert.equal(r.tokens, 0);
      }
      assert.equal(fake.requests.length, 0);
      assert.match(k.logs(), /THINK unavailable: no API key/);
      assert.match(k.logs(), /claude-env-model/); // AGENTOS_MODEL is the default without --model
    },
  );
});

Deno.test("THINK quotas: refused with QUOTA_EXCEEDED before any request; usage counted", async () => {
  await withKernel({
    args: ["--client-llm-max-calls", "3", "--client-llm-max-tokens", "30", "--llm-timeout", "1"],
    usage: { input_tokens: 1, output_tokens: 1 },
  }, async (k, fake) => {
    // Calls: three answered, the fourth refused without reaching the API.
    const a = await k.client();
    for (let i = 0; i < 3; i++) assert.equal((await a.think(`a${i}`)).success, true);
    const refused = await a.think("a-over");
    assert.equal(refused.success, false);
    if (!refused.success) {
      assert.equal(refused.code, "QUOTA_EXCEEDED");
      assert.match(refused.error, /3 of 3 calls used.*max_calls/);
    }
    assert.equal(fake.requestsFor("a-over").length, 0);

    // Tokens: one call reports 35 tokens; the next is refused.
    const b = await k.client();
    fake.script((req) => ({ body: fakeMessage(req, { input_tokens: 20, output_tokens: 15 }) }));
    assert.equal((await b.think("b0")).success, true);
    const over = await b.think("b-over");
    assert.equal(over.success, false);
    if (!over.success) {
      assert.equal(over.code, "QUOTA_EXCEEDED");
      assert.match(over.error, /35 of 30 tokens used.*max_tokens/);
    }
    assert.equal(fake.requestsFor("b-over").length, 0);

    // Concurrent calls cannot overrun max_calls together.
    const c = await k.client();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => c.think(`c${i}`)));
    assert.equal(results.filter((r) => r.success).length, 3);
    assert.equal(
      results.filter((r) => !r.success && r.code === "QUOTA_EXCEEDED").length,
      3,
    );
    assert.equal(
      fake.requests.filter((r) =>
        /^c\d$/.test(
          ((r.body?.messages as { content: { text?: string }[] }[])[0].content.at(-1)?.text) ?? "",
        )
      ).length,
      3,
    );

    // A request the API does not answer within --llm-timeout is TIMEOUT, and not retried.
    const d = await k.client();
    fake.script({ delayMs: 2500 });
    const slow = await d.think("too slow");
    assert.equal(slow.success, false);
    if (!slow.success) {
      assert.equal(slow.code, "TIMEOUT");
      assert.match(slow.error, /did not answer within 1 s/);
    }
    assert.equal(fake.requestsFor("too slow").length, 1);
  });
});

Deno.test("THINK fairness: B's one call, sent after A's 20, finishes before A's last", async () => {
  await withKernel({ args: ["--llm-concurrency", "1"], delayMs: 50 }, async (k, fake) => {
    const a = await k.client();
    const b = await k.client();
    const done: string[] = [];
    const aCalls = Array.from({ length: 20 }, (_, i) =>
      a.think(`A${i}`).then((r) => {
        assert.equal(r.success, true);
        done.push(`A${i}`);
      }));
    // Wait until A's calls are in the kernel: the first is at the API, the rest queued.
    while (fake.requests.length < 1) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 150));
    const bCall = b.think("B").then((r) => {
      assert.equal(r.success, true);
      done.push("B");
    });
    await Promise.all([...aCalls, bCall]);
    assert.equal(fake.maxInFlight(), 1, "--llm-concurrency 1 was exceeded");
    assert.ok(done.indexOf("B") < done.indexOf("A19"), `completion order: ${done.join(" ")}`);
    // Round-robin: B is served within one rotation of its arrival, not after A's 20.
    assert.ok(done.indexOf("B") <= 5, `completion order: ${done.join(" ")}`);
    const order = fake.requests.map((
      r,
    ) => ((r.body?.messages as { content: { text?: string }[] }[])[0].content.at(-1)?.text));
    assert.ok(order.indexOf("B") <= 5, `API order: ${order.join(" ")}`);
  });
});

Deno.test("THINK queue: waiting too long is TIMEOUT; queued calls are cancelled at shutdown", async () => {
  await withKernel({
    args: ["--llm-concurrency", "1", "--llm-queue-timeout", "2"],
  }, async (k, fake) => {
    // Timeout: X holds the only slot for 3 s; Y gives up after the 2 s queue bound.
    const x = await k.client();
    fake.script({ delayMs: 3000 });
    const slow = x.think("slow");
    while (fake.requestsFor("slow").length < 1) await new Promise((r) => setTimeout(r, 10));
    const y = await k.client();
    const started = Date.now();
    const r = await y.think("waiter");
    const waited = Date.now() - started;
    assert.equal(r.success, false);
    if (!r.success) {
      assert.equal(r.code, "TIMEOUT");
      assert.match(r.error, /THINK queue/);
    }
    assert.ok(waited >= 1500 && waited < 2900, `waited ${waited} ms`);
    assert.equal(fake.requestsFor("waiter").length, 0);
    assert.equal((await slow).success, true);

    // Cancellation: X2 holds the slot, C is queued, the kernel stops: C never reaches the API.
    fake.script({ delayMs: 1500 });
    const slow2 = x.think("slow2").catch((err) => err);
    while (fake.requestsFor("slow2").length < 1) await new Promise((r) => setTimeout(r, 10));
    const c = await k.client();
    const queued = c.think("cancelled").catch((err) => err);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await k.stop(), 0);
    const outcome = await queued;
    assert.ok(
      outcome instanceof Error || outcome.success === false,
      `a queued call survived shutdown: ${JSON.stringify(outcome)}`,
    );
    await slow2;
    assert.equal(fake.requestsFor("cancelled").length, 0);
  });
});

Deno.test("THINK with the API unreachable: retried, then a clear error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  await withKernel({
    args: ["--llm-max-attempts", "2"],
    env: { ANTHROPIC_BASE_URL: `http://user:pw@127.0.0.1:${port}` },
  }, async (k) => {
    const c = await k.client();
    const r = await c.think("anyone?");
    assert.equal(r.success, false);
    if (!r.success) {
      assert.equal(r.code, "ERROR");
      assert.match(
        r.error,
        new RegExp(
          `cannot reach the Anthropic API at http://127\\.0\\.0\\.1:${port} after 2 attempts`,
        ),
      );
      assert.ok(!r.error.includes("pw"), `credentials in the base URL were shown: ${r.error}`);
    }
    assert.match(k.logs(), /THINK retrying.*connection error/);
  });
});

Deno.test("kernel refuses bad THINK flags", async () => {
  for (
    const args of [
      ["--llm-concurrency", "0"],
      ["--llm-queue-timeout", "-1"],
      ["--model", "no spaces please"],
      ["--client-llm-max-calls", "many"],
    ]
  ) {
    const out = await runCli(["kernel", "--socket", "/nonexistent/k.sock", ...args]);
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
  }
  assert.match(DEFAULT_MODEL, /^claude-/);
});
