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
import { AgentOSClient } from "../sdk/mod.ts";
import { startFakeAnthropic } from "../tests/helpers/fake_anthropic.ts";
import { nearestRank, startBenchKernel } from "./bench_util.ts";

const KEY = "bench-key";
const N = 300;

/** Percentile `p` (0–100) of ascending milliseconds, in whole microseconds. */
function pctUs(sorted: number[], p: number): number {
  return Math.round(nearestRank(sorted, p) * 1000);
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
  const k = await startBenchKernel({
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
  });
  try {
    await using c = await AgentOSClient.connect({ socket: k.socket });
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
      kernel_p50_us: pctUs(viaKernel, 50),
      kernel_p99_us: pctUs(viaKernel, 99),
      direct_sdk_p50_us: pctUs(direct, 50),
      direct_sdk_p99_us: pctUs(direct, 99),
    };
  } finally {
    await k.stop();
    await fake.close();
  }
}

async function fairness() {
  const fake = await startFakeAnthropic({ delayMs: 20 });
  const k = await startBenchKernel({
    args: ["--llm-concurrency", "1"],
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
  });
  try {
    await using a = await AgentOSClient.connect({ socket: k.socket });
    await using b = await AgentOSClient.connect({ socket: k.socket });
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
