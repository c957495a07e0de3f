/**
 * An orchestrator: spawns sandboxed workers (`examples/worker.ts`), hands each a slice of the
 * work over IPC, and collects their results with blocking receives.
 *
 * ```sh
 * deno task start &                               # a kernel on /tmp/agentos.sock
 * deno run -A examples/orchestrator.ts [workers] [limit]
 * ```
 *
 * It counts the primes below `limit` (default 100,000) with `workers` agents (default 3), and
 * checks that every worker's sandbox refused a direct read of `/etc/passwd`. Exit code 0 when
 * every result arrived and every sandbox held.
 * @module
 */
import { fileURLToPath } from "node:url";
import { connect, isKernelError } from "../sdk/mod.ts";

const workers = Number(Deno.args[0] ?? 3);
const limit = Number(Deno.args[1] ?? 100_000);
if (!Number.isInteger(workers) || workers < 1 || workers > 50) {
  console.error("usage: orchestrator.ts [workers 1-50] [limit]");
  Deno.exit(2);
}

/** What a worker sends back. */
interface Result {
  task_id: number;
  worker: string;
  from: number;
  to: number;
  primes: number;
  ms: number;
  sandbox_refused_read: boolean;
}

const script = fileURLToPath(new URL("./worker.ts", import.meta.url));
const tag = `${Deno.pid}`;
const me = `orchestrator-${tag}`;

await using os = await connect();
const reg = await os.registerName(me);
if (isKernelError(reg)) throw new Error(`REGISTER failed: ${reg.error}`);

const names: string[] = [];
try {
  // Spawn the workers, each sandboxed: its workspace only, no network, no subprocesses.
  for (let i = 0; i < workers; i++) {
    const name = `prime-worker-${i}-${tag}`;
    const r = await os.spawn({ name, script, level: "sandboxed" });
    if (isKernelError(r)) throw new Error(`SPAWN ${name} failed: ${r.error}`);
    names.push(name);
    console.log(`spawned ${name} (id ${r.agent_id}, pid ${r.pid}, ${r.level})`);
  }

  // Hand out the work: worker i counts primes in its slice of [0, limit).
  const step = Math.ceil(limit / workers);
  for (const [i, name] of names.entries()) {
    const task = { reply_to: me, task_id: i, from: i * step, to: Math.min(limit, (i + 1) * step) };
    const s = await os.sendMessage(task, { toName: name });
    if (isKernelError(s)) throw new Error(`SEND to ${name} failed: ${s.error}`);
  }

  // Collect the results as they come.
  const results = new Map<number, Result>();
  const deadline = Date.now() + 120_000;
  while (results.size < workers && Date.now() < deadline) {
    const r = await os.recvMessages({ wait: true, timeoutMs: 5_000 });
    if (isKernelError(r)) throw new Error(`RECV failed: ${r.error}`);
    for (const m of r.messages) {
      const result = m.message as Result;
      results.set(result.task_id, result);
      console.log(
        `${m.from_name}: ${result.primes} primes in [${result.from}, ${result.to}) ` +
          `in ${result.ms} ms; sandbox refused /etc/passwd: ${result.sandbox_refused_read}`,
      );
    }
  }

  const total = [...results.values()].reduce((sum, r) => sum + r.primes, 0);
  const held = [...results.values()].every((r) => r.sandbox_refused_read);
  console.log(`primes below ${limit}: ${total} (${results.size}/${workers} workers answered)`);
  console.log(`every worker's sandbox held: ${held}`);
  if (results.size < workers || !held) Deno.exitCode = 1;
  await waitForExit(names, 10_000);
} finally {
  // Workers exit after their task; make sure none is left behind.
  const running = await stillRunning(names);
  for (const name of running) {
    const k = await os.kill({ name });
    if (!isKernelError(k)) console.log(`killed ${name}`);
  }
}

/** The names among `names` whose agents have not finished. */
async function stillRunning(names: string[]): Promise<string[]> {
  const list = await os.listAgents();
  if (isKernelError(list)) return names;
  const done = new Set(
    list.filter((a) => ["exited", "failed", "killed"].includes(a.state)).map((a) => a.name),
  );
  return names.filter((n) => !done.has(n));
}

/** Wait until every agent in `names` has finished on its own, or `ms` has passed. */
async function waitForExit(names: string[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await stillRunning(names)).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
