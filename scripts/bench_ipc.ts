/**
 * Messaging benchmark: one-way messages/s between two connections with blocking
 * receive, and ping-pong round trip p50/p99. `scripts/bench.ts` calls {@link benchIpc};
 * run alone with `deno run -A scripts/bench_ipc.ts [--socket PATH]` (without `--socket` it
 * starts a private kernel) to print the JSON.
 * @module
 */
import { parseArgs } from "node:util";
import { AgentOSClient, isKernelError, type Result } from "../sdk/mod.ts";
import { type BenchKernel, percentile, round, startBenchKernel } from "./bench_util.ts";

/** What {@link benchIpc} measures. */
export interface IpcBenchResult {
  /** Messages/s from one connection to another, sender pipelining, receiver blocking in RECV. */
  one_way_msgs_per_s: number;
  /** SEND then blocking RECV of the echo, in microseconds. */
  ping_pong_rtt_us: { p50: number; p99: number };
  /** Messages the one-way run sent, and refusals (full mailbox) it retried. */
  one_way_messages: number;
  one_way_backpressure_retries: number;
  /** Round trips measured. */
  ping_pong_round_trips: number;
}

function ok<T>(r: Result<T>, what: string): T {
  if (isKernelError(r)) throw new Error(`${what}: ${r.code}: ${r.error}`);
  return r;
}

/** One-way throughput: `total` messages, pipelined `window` at a time. */
async function oneWay(socket: string, total: number, window: number) {
  const tag = `${Deno.pid}-${Date.now()}`;
  const rx = await AgentOSClient.connect({ socket });
  const tx = await AgentOSClient.connect({ socket });
  try {
    ok(await rx.registerName(`bench-rx-${tag}`), "REGISTER");
    const target = { toName: `bench-rx-${tag}` };
    let received = 0;
    const t0 = performance.now();
    const receiving = (async () => {
      while (received < total) {
        const r = ok(await rx.recvMessages({ wait: true, max: 10_000, timeoutMs: 10_000 }), "RECV");
        if (r.count === 0) throw new Error(`receiver starved after ${received} messages`);
        received += r.count;
      }
    })();
    let sent = 0;
    let retries = 0;
    while (sent < total) {
      const n = Math.min(window, total - sent);
      const rs = await Promise.all(
        Array.from({ length: n }, (_, i) => tx.sendMessage({ i: sent + i }, target)),
      );
      for (const r of rs) {
        if (!isKernelError(r)) sent++;
        else if (r.code === "QUOTA_EXCEEDED") retries++;
        else throw new Error(`SEND: ${r.code}: ${r.error}`);
      }
      if (rs.some(isKernelError)) await new Promise((res) => setTimeout(res, 1));
    }
    await receiving;
    const seconds = (performance.now() - t0) / 1000;
    return { msgsPerS: Math.round(total / seconds), retries };
  } finally {
    rx.close();
    tx.close();
  }
}

/** Ping-pong: `n` measured round trips after `warmup`. */
async function pingPong(socket: string, n: number, warmup: number) {
  const tag = `${Deno.pid}-${Date.now()}`;
  const ping = await AgentOSClient.connect({ socket });
  const pong = await AgentOSClient.connect({ socket });
  try {
    ok(await ping.registerName(`bench-ping-${tag}`), "REGISTER");
    ok(await pong.registerName(`bench-pong-${tag}`), "REGISTER");
    const echoer = (async () => {
      for (let i = 0; i < n + warmup; i++) {
        const r = ok(await pong.recvMessages({ wait: true, max: 1, timeoutMs: 10_000 }), "RECV");
        if (r.count !== 1) throw new Error("pong: no ping arrived");
        ok(await pong.sendMessage(r.messages[0].message, { toName: `bench-ping-${tag}` }), "SEND");
      }
    })();
    const lat: number[] = [];
    for (let i = 0; i < n + warmup; i++) {
      const t0 = performance.now();
      ok(await ping.sendMessage(i, { toName: `bench-pong-${tag}` }), "SEND");
      const r = ok(await ping.recvMessages({ wait: true, max: 1, timeoutMs: 10_000 }), "RECV");
      if (r.count !== 1 || r.messages[0].message !== i) throw new Error("ping: wrong echo");
      if (i >= warmup) lat.push((performance.now() - t0) * 1000);
    }
    await echoer;
    lat.sort((a, b) => a - b);
    return { p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)) };
  } finally {
    ping.close();
    pong.close();
  }
}

/** Measure messaging on the kernel listening on `socket`. */
export async function benchIpc(
  socket: string,
  options: { messages?: number; window?: number; roundTrips?: number } = {},
): Promise<IpcBenchResult> {
  const total = options.messages ?? 50_000;
  const roundTrips = options.roundTrips ?? 5_000;
  const one = await oneWay(socket, total, options.window ?? 64);
  const rtt = await pingPong(socket, roundTrips, Math.min(500, roundTrips));
  return {
    one_way_msgs_per_s: one.msgsPerS,
    ping_pong_rtt_us: rtt,
    one_way_messages: total,
    one_way_backpressure_retries: one.retries,
    ping_pong_round_trips: roundTrips,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { socket: { type: "string" } } });
  const kernel: BenchKernel | undefined = values.socket
    ? undefined
    : await startBenchKernel({ prefix: "aos-bench-ipc" });
  try {
    console.log(JSON.stringify(await benchIpc(values.socket ?? kernel!.socket)));
  } finally {
    await kernel?.stop();
  }
}
