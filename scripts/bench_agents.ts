/**
 * Agent benchmarks (issue 4): spawn-to-first-syscall latency, and 100 agents spawned at once
 * (wall time until all have made their first syscall, kernel RSS, median agent RSS).
 *
 * `benchAgents()` is wired into `scripts/bench.ts`; run alone with
 * `deno run -A scripts/bench_agents.ts`.
 * @module
 */
import { join, resolve } from "node:path";
import { AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { probeSocket } from "../kernel/probe.ts";
import { readRss, treeRss } from "../kernel/agent_runtime.ts";

const MAIN = resolve(import.meta.dirname!, "..", "main.ts");

/** Result of {@link benchAgents}. */
export interface AgentBench {
  spawn_to_first_syscall_ms: { p50: number; p95: number; samples: number };
  spawn_100: { wall_ms: number; kernel_rss_mb: number; agent_rss_median_mb: number };
}

/** RSS in MiB of `pid` and its descendants (an agent is bwrap + its init + Deno). */
function rssMb(pid: number): number {
  return Math.round((treeRss(pid) ?? 0) / 104857.6) / 10;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const AGENT = `import { connect } from "agentos";
const os = await connect();
await os.echo("first");
console.log("FIRST " + Date.now());
setInterval(() => {}, 60_000);`;

async function firstSyscallAt(stateDir: string, name: string, timeoutMs = 60_000) {
  const path = join(stateDir, "logs", `${name}.log`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const m = (await Deno.readTextFile(path)).match(/FIRST (\d+)/);
      if (m) return Number(m[1]);
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${name} never made its first syscall`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Run the agent benchmarks against a fresh kernel process; returns the figures. */
export async function benchAgents(samples = 20): Promise<AgentBench> {
  const dir = await Deno.makeTempDir({ prefix: "aosbench" });
  const socket = join(dir, "k.sock");
  const stateDir = join(dir, "state");
  const kernel = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "kernel",
      "--socket",
      socket,
      "--state-dir",
      stateDir,
      "--log-level",
      "warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    while (!(await probeSocket(socket, 500))) await new Promise((r) => setTimeout(r, 50));
    const client = await AgentOSClient.connect({ socket });
    try {
      const lat: number[] = [];
      for (let i = 0; i < samples; i++) {
        const name = `lat-${i}`;
        const t0 = Date.now();
        const r = await client.spawn({ name, script: AGENT });
        if (isKernelError(r)) throw new Error(r.error);
        lat.push((await firstSyscallAt(stateDir, name)) - t0);
        await client.kill({ id: r.id });
      }
      lat.sort((a, b) => a - b);

      const t0 = performance.now();
      const spawned = await Promise.all(
        Array.from({ length: 100 }, (_, i) => client.spawn({ name: `many-${i}`, script: AGENT })),
      );
      const pids: number[] = [];
      for (const r of spawned) {
        if (isKernelError(r)) throw new Error(r.error);
        pids.push(r.pid);
      }
      await Promise.all(spawned.map((_, i) => firstSyscallAt(stateDir, `many-${i}`, 120_000)));
      const wall = performance.now() - t0;
      const agentRss = pids.map(rssMb).sort((a, b) => a - b);
      const result: AgentBench = {
        spawn_to_first_syscall_ms: {
          p50: percentile(lat, 50),
          p95: percentile(lat, 95),
          samples,
        },
        spawn_100: {
          wall_ms: Math.round(wall),
          kernel_rss_mb: Math.round((readRss(kernel.pid) ?? 0) / 104857.6) / 10,
          agent_rss_median_mb: agentRss[Math.floor(agentRss.length / 2)],
        },
      };
      return result;
    } finally {
      client.close();
    }
  } finally {
    kernel.kill("SIGTERM");
    await kernel.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await benchAgents()));
}
