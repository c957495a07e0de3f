/**
 * THINK benchmark (`deno run -A scripts/bench_think.ts`): a real kernel pointed at the fake
 * Messages API of the tests (loopback, no network). Prints one JSON object:
 * - `overhead`: THINK round trip through the kernel vs the same request straight from the SDK
 *   to the fake (p50/p99 µs over sequential calls), i.e. what the kernel adds;
 * - `fairness`: with `--llm-concurrency 1` and a 20 ms fake, a flooder queues 50 calls and a
 *   second client sends one; where the second client's call lands among all completions.
 * @module
 */
import Anthropic from "@anthropic-ai/sdk";
import { startKernel } from "../tests/helpers/kernel.ts";
import { startFakeAnthropic } from "../tests/helpers/fake_anthropic.ts";

const KEY = "bench-key";
const N = 300;

function pct(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 1000);
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn(); // warm up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

async function overhead() {
  const fake = await startFakeAnthropic();
  const k = await startKernel({ env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url } });
  try {
    const c = await k.client();
    const viaKernel = await timed(N, () => c.think("bench"));
    const sdk = new Anthropic({ apiKey: KEY, baseURL: fake.url, maxRetries: 0, logLevel: "off" });
    const direct = await timed(N, () =>
      sdk.messages.create({
        model: "claude-sonnet-5-5",
        max_tokens: 4096,
        messages: [{ role: "user", content: [{ type: "text", text: "bench" }] }],
      }));
    return {
      calls: N,
      kernel_p50_us: pct(viaKernel, 0.5),
      kernel_p99_us: pct(viaKernel, 0.99),
      direct_sdk_p50_us: pct(direct, 0.5),
      direct_sdk_p99_us: pct(direct, 0.99),
    };
  } finally {
    await k.stop();
    await fake.close();
  }
}

async function fairness() {
  const fake = await startFakeAnthropic({ delayMs: 20 });
  const k = await startKernel({
    args: ["--llm-concurrency", "1"],
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
  });
  try {
    const a = await k.client();
    const b = await k.client();
    const done: string[] = [];
    const flood = Array.from(
      { length: 50 },
      (_, i) => a.think(`A${i}`).then(() => done.push(`A${i}`)),
    );
    while (fake.requests.length < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    const sent = done.length;
    const t = performance.now();
    await b.think("B").then(() => done.push("B"));
    const bMs = Math.round(performance.now() - t);
    await Promise.all(flood);
    return {
      flood_calls: 50,
      flood_done_when_b_sent: sent,
      b_finished_at_position: done.indexOf("B") + 1,
      b_latency_ms: bMs,
      fake_delay_ms: 20,
    };
  } finally {
    await k.stop();
    await fake.close();
  }
}

console.log(JSON.stringify({ overhead: await overhead(), fairness: await fairness() }, null, 2));
