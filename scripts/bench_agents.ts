/**
 * Agent benchmarks: spawn-to-first-syscall latency, and 100 agents spawned at once
 * (wall time until all have made their first syscall, kernel RSS, median agent RSS).
 *
 * `benchAgents()` is wired into `scripts/bench.ts`; run alone with
 * `deno run -A scripts/bench_agents.ts`.
 * @module
 */
import { join } from "node:path";
import { AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { treeRss } from "../kernel/agent_runtime.ts";
import { mib, nearestRank, rssMb, startBenchKernel } from "./bench_util.ts";

/** Result of {@link benchAgents}. */
export interface AgentBench {
  spawn_to_first_syscall_ms: { p50: number; p95: number; samples: number };
  spawn_100: { wall_ms: number; kernel_rss_mb: number; agent_rss_median_mb: number };
}

/** RSS in MiB of `pid` and its descendants (an agent is bwrap + its init + Deno). */
function treeRssMb(pid: number): number {
  return mib(treeRss(pid) ?? 0);
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
  const kernel = await startBenchKernel();
  const { socket, stateDir } = kernel;
  try {
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
      const agentRss = pids.map(treeRssMb).sort((a, b) => a - b);
      const result: AgentBench = {
        spawn_to_first_syscall_ms: {
          p50: nearestRank(lat, 50),
          p95: nearestRank(lat, 95),
          samples,
        },
        spawn_100: {
          wall_ms: Math.round(wall),
          kernel_rss_mb: rssMb(kernel.pid) ?? 0,
          agent_rss_median_mb: agentRss[Math.floor(agentRss.length / 2)],
        },
      };
      return result;
    } finally {
      client.close();
    }
  } finally {
    await kernel.stop();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await benchAgents()));
}
