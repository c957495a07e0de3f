/**
 * `deno task bench`: starts a kernel (unless `--socket` names a running one), measures it and
 * prints one JSON object on stdout. Progress goes to stderr.
 *
 * Sections: NOOP round trip (16-byte payload, one connection), NOOP calls/s over 1/4/16/64
 * connections (clients in worker threads), echo MB/s (64 KiB and 1,000,000 bytes), and
 * head-of-line blocking (worst NOOP latency on one connection while another runs EXEC `sleep 2`),
 * messaging (one-way messages/s, ping-pong round trip) and agents (spawn to first syscall,
 * 100 agents at once; on a kernel of its own). `--only rtt,throughput,payload,hol,ipc,agents`
 * picks sections.
 * @module
 */
import { parseArgs } from "node:util";
import { encodeFrame } from "../kernel/frame.ts";
import { Op } from "../kernel/protocol.ts";
import { BenchConn } from "./bench_client.ts";
import { benchIpc } from "./bench_ipc.ts";
import { benchAgents } from "./bench_agents.ts";
import { type BenchKernel, percentile, round, rssMb, startBenchKernel } from "./bench_util.ts";

const log = (...a: unknown[]) => console.error("[bench]", ...a);
const te = new TextEncoder();

/** NOOP round trips on one connection, in microseconds. */
export async function noopRtt(socket: string, n = 20_000, warmup = 2_000) {
  const c = await BenchConn.open(socket);
  const frame = encodeFrame(Op.NOOP, 0, te.encode("0123456789abcdef"));
  for (let i = 0; i < warmup; i++) await c.roundTrip(frame);
  const lat = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await c.roundTrip(frame);
    lat[i] = (performance.now() - t0) * 1000;
  }
  c.close();
  const sorted = [...lat].sort((a, b) => a - b);
  return {
    n,
    p50_us: round(percentile(sorted, 50)),
    p99_us: round(percentile(sorted, 99)),
    max_us: round(sorted[n - 1]),
  };
}

/** NOOP calls/s with `c` concurrent connections spread over worker threads. */
export async function noopThroughput(socket: string, c: number, seconds = 3) {
  const workers = Math.min(c, 4);
  const start = Date.now() + 1500;
  const until = start + seconds * 1000;
  const results = await Promise.all(Array.from({ length: workers }, (_, w) => {
    const connections = Math.floor(c / workers) + (w < c % workers ? 1 : 0);
    const worker = new Worker(new URL("./bench_worker.ts", import.meta.url), { type: "module" });
    return new Promise<number>((resolve, reject) => {
      worker.onmessage = (e) => {
        if (e.data.calls !== undefined) {
          worker.terminate();
          resolve(e.data.calls);
        }
      };
      worker.onerror = (e) => {
        worker.terminate();
        reject(e);
      };
      worker.postMessage({ socket, connections, start, until });
    });
  }));
  const calls = results.reduce((a, b) => a + b, 0);
  return { connections: c, calls, calls_per_s: Math.round(calls / seconds) };
}

/** Echo throughput with payloads of `size` bytes. */
export async function echoThroughput(socket: string, size: number, seconds = 1.5) {
  const c = await BenchConn.open(socket);
  const frame = encodeFrame(Op.NOOP, 0, new Uint8Array(size).fill(120));
  let calls = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const r = await c.roundTrip(frame);
    if (r.length !== size) throw new Error("echo length mismatch");
    calls++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  c.close();
  return { payload_bytes: size, calls, mb_per_s_one_way: round(calls * size / 1e6 / elapsed) };
}

/** Worst NOOP latency on one connection while another runs EXEC `sleep 2`. */
export async function headOfLine(socket: string) {
  const a = await BenchConn.open(socket);
  const b = await BenchConn.open(socket);
  const probe = await a.call(Op.EXEC, te.encode(JSON.stringify({ command: "true" })));
  const probeBody = JSON.parse(new TextDecoder().decode(probe));
  if (probeBody.code === "NOT_FOUND") {
    a.close();
    b.close();
    return { worst_noop_ms: null, reason: "EXEC is not available in this kernel" };
  }
  const t0 = performance.now();
  const slow = a.call(Op.EXEC, te.encode(JSON.stringify({ command: "sleep 2" })));
  let done = false;
  void slow.then(() => done = true);
  const frame = encodeFrame(Op.NOOP, 0, te.encode("hol-probe"));
  let worst = 0;
  let probes = 0;
  while (!done) {
    const s = performance.now();
    await b.roundTrip(frame);
    worst = Math.max(worst, performance.now() - s);
    probes++;
    await new Promise((r) => setTimeout(r, 10));
  }
  const execMs = performance.now() - t0;
  a.close();
  b.close();
  return { worst_noop_ms: round(worst, 3), probes, exec_ms: round(execMs) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { socket: { type: "string" }, only: { type: "string" } },
  });
  const only = new Set((values.only ?? "rtt,throughput,payload,hol,ipc,agents").split(","));
  const kernel: BenchKernel | undefined = values.socket ? undefined : await startBenchKernel();
  const socket = values.socket ?? kernel!.socket;
  const out: Record<string, unknown> = {
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
  };
  try {
    if (only.has("rtt")) {
      log("NOOP round trip");
      out.noop_rtt = await noopRtt(socket);
    }
    if (only.has("throughput")) {
      const tp: Record<string, unknown> = {};
      for (const c of [1, 4, 16, 64]) {
        log(`NOOP throughput, ${c} connections`);
        tp[`c${c}`] = await noopThroughput(socket, c);
      }
      out.noop_throughput = tp;
    }
    if (only.has("payload")) {
      log("echo throughput");
      out.echo = {
        kib64: await echoThroughput(socket, 65536),
        mb1: await echoThroughput(socket, 1_000_000),
      };
    }
    if (only.has("hol")) {
      log("head-of-line blocking");
      out.head_of_line = await headOfLine(socket);
    }
    if (only.has("ipc")) {
      log("messaging");
      out.ipc = await benchIpc(socket);
    }
    if (kernel) out.kernel_rss_mb = rssMb(kernel.pid);
  } finally {
    await kernel?.stop();
  }
  if (only.has("agents")) {
    log("agents (own kernel)");
    out.agents = await benchAgents();
  }
  console.log(JSON.stringify(out, null, 2));
}
