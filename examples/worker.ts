/**
 * A worker agent for `examples/orchestrator.ts`.
 *
 * The orchestrator spawns it as a sandboxed agent. It waits for one task over IPC
 * (`{reply_to, task_id, from, to}`), counts the primes in `[from, to)`, checks that its sandbox
 * really holds (reading `/etc/passwd` directly must fail), and sends the result to the name in
 * `reply_to`. It imports the SDK as `"agentos"`: the kernel supplies the import map and the
 * socket (`AGENTOS_SOCKET`), so the script needs no setup.
 * @module
 */
import { connect, isKernelError } from "agentos";

/** The task the orchestrator sends. */
interface Task {
  reply_to: string;
  task_id: number;
  from: number;
  to: number;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Try to read a file outside the workspace directly; true if the runtime refused. */
async function sandboxHolds(): Promise<boolean> {
  try {
    await Deno.readTextFile("/etc/passwd");
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
  }
}

const name = Deno.env.get("AGENTOS_AGENT_NAME") ?? "worker";
await using os = await connect();

const got = await os.recvMessages({ wait: true, timeoutMs: 60_000 });
if (isKernelError(got) || got.count === 0) {
  console.error(`${name}: no task arrived`, got);
  Deno.exit(1);
}
const task = got.messages[0].message as Task;

const started = performance.now();
let primes = 0;
for (let n = task.from; n < task.to; n++) if (isPrime(n)) primes++;

const sent = await os.sendMessage({
  task_id: task.task_id,
  worker: name,
  from: task.from,
  to: task.to,
  primes,
  ms: Math.round(performance.now() - started),
  sandbox_refused_read: await sandboxHolds(),
}, { toName: task.reply_to });
if (isKernelError(sent)) {
  console.error(`${name}: could not send the result: ${sent.error}`);
  Deno.exit(1);
}
console.log(`${name}: ${primes} primes in [${task.from}, ${task.to})`);
