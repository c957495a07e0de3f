/**
 * Messaging between spawned agents (issue 5 with issue 4): real agent subprocesses on their
 * private sockets exchange 10,000 messages each way.
 */
import assert from "node:assert/strict";
import { startKernel, type TestKernel } from "./helpers/kernel.ts";
import { isKernelError } from "../sdk/mod.ts";

/**
 * The kernel opens its socket before the agent supervisor has finished starting (resolving
 * Deno, copying the SDK), so a SPAWN at once can fail with "no Deno runtime for agents". Wait
 * for the supervisor's start-up log line first.
 */
async function agentsReady(k: TestKernel): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!/agent runtime/.test(k.logs())) {
    assert.ok(Date.now() < deadline, `the agent supervisor did not start:\n${k.logs()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * An agent that sends `count` numbered messages to `peer` (retrying on backpressure) while it
 * receives `count` from it on a second connection (the same identity), checks that they come
 * in order from `peer`, and reports to `observer`.
 */
const EXCHANGER = `
import { connect, isKernelError } from "agentos";
const [peer, observer, countText] = Deno.args;
const count = Number(countText);
const rx = await connect();
const tx = await connect();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let next = 0;
let bad: string | null = null;
const receiving = (async () => {
  while (next < count && bad === null) {
    const r = await rx.recvMessages({ wait: true, max: 10000, timeoutMs: 60000 });
    if (isKernelError(r)) { bad = "RECV: " + r.error; break; }
    if (r.count === 0) { bad = "nothing arrived for 60 s after " + next; break; }
    for (const m of r.messages) {
      const i = (m.message as { i?: number } | null)?.i;
      if (m.from_name !== peer || i !== next) {
        bad = "expected " + next + " from " + peer + ", got " + JSON.stringify(m.message) +
          " from " + m.from_name;
        break;
      }
      next++;
    }
  }
})();
let refused = 0;
let notFound = 0;
for (let i = 0; i < count && bad === null;) {
  const r = await tx.sendMessage({ i }, { toName: peer });
  if (isKernelError(r)) {
    if (r.code === "QUOTA_EXCEEDED") refused++;
    else if (r.code === "NOT_FOUND" && i === 0 && notFound < 10000) notFound++;
    else { bad = "SEND " + i + ": " + r.code + " " + r.error; break; }
    await sleep(1);
    continue;
  }
  i++;
}
await receiving;
const report = await tx.sendMessage({ received: next, bad, refused }, { toName: observer });
if (isKernelError(report)) throw new Error(report.error);
rx.close();
tx.close();
`;

Deno.test("ipc: two spawned agents exchange 10,000 messages each way, none lost or reordered", async () => {
  // A small mailbox so that backpressure (QUOTA_EXCEEDED, then retry) is part of the run.
  const k = await startKernel({ args: ["--mailbox-max-messages", "300"] });
  try {
    await agentsReady(k);
    const os = await k.client();
    const reg = await os.registerName("observer");
    assert.ok(!isKernelError(reg), JSON.stringify(reg));
    const count = 10_000;
    for (const [name, peer] of [["alice", "bob"], ["bob", "alice"]]) {
      const r = await os.spawn({
        name,
        script: EXCHANGER,
        level: "minimal",
        args: [peer, "observer", String(count)],
      });
      assert.ok(!isKernelError(r), `SPAWN ${name}: ${JSON.stringify(r)}\n${k.logs()}`);
    }
    const reports = new Map<string, { received: number; bad: string | null; refused: number }>();
    const deadline = Date.now() + 120_000;
    while (reports.size < 2) {
      assert.ok(Date.now() < deadline, `reports so far: ${JSON.stringify([...reports])}`);
      const r = await os.recvMessages({ wait: true, timeoutMs: 5_000 });
      assert.ok(!isKernelError(r), JSON.stringify(r));
      for (const m of r.messages) {
        reports.set(
          m.from_name!,
          m.message as { received: number; bad: string | null; refused: number },
        );
      }
      if (r.count === 0) {
        const list = await os.listAgents();
        assert.ok(!isKernelError(list));
        for (const a of list) {
          assert.ok(
            a.state === "running" || a.state === "starting" || reports.has(a.name),
            `agent ${a.name} is ${a.state} (${a.exit_reason}) without reporting`,
          );
        }
      }
    }
    for (const name of ["alice", "bob"]) {
      const rep = reports.get(name)!;
      assert.equal(rep.bad, null, `${name}: ${rep.bad}`);
      assert.equal(rep.received, count, name);
    }
    console.log(
      `backpressure refusals: alice ${reports.get("alice")!.refused}, bob ${
        reports.get("bob")!.refused
      }`,
    );
  } finally {
    await k.stop();
  }
});

/** Each run takes one message, forwards it to `observer`, and fails (so it is restarted). */
const PHOENIX = `
import { connect, isKernelError } from "agentos";
const os = await connect();
const r = await os.recvMessages({ wait: true, max: 1, timeoutMs: 30000 });
if (isKernelError(r) || r.count !== 1) Deno.exit(3);
const m = r.messages[0];
await os.sendMessage({ got: m.message, seq: m.seq }, { toName: "observer" });
os.close();
Deno.exit(1);
`;

Deno.test("ipc: a restarted agent keeps its id, name and mailbox", async () => {
  const k = await startKernel();
  try {
    await agentsReady(k);
    const os = await k.client();
    assert.ok(!isKernelError(await os.registerName("observer")));
    const spawned = await os.spawn({
      name: "phoenix",
      script: PHOENIX,
      level: "minimal",
      restart_policy: "on-failure",
      max_restarts: 2,
    });
    assert.ok(!isKernelError(spawned), JSON.stringify(spawned));
    // Queue all three at once: each run of the agent takes one.
    for (const n of [1, 2, 3]) {
      const r = await os.sendMessage({ n }, { toName: "phoenix" });
      assert.ok(!isKernelError(r), JSON.stringify(r));
      assert.equal(r.delivered_to, spawned.agent_id);
    }
    const got: { got: unknown; seq: number }[] = [];
    const froms = new Set<number>();
    const deadline = Date.now() + 60_000;
    while (got.length < 3) {
      assert.ok(Date.now() < deadline, `got ${JSON.stringify(got)}\n${k.logs()}`);
      const r = await os.recvMessages({ wait: true, timeoutMs: 5_000 });
      assert.ok(!isKernelError(r));
      for (const m of r.messages) {
        assert.equal(m.from_name, "phoenix");
        froms.add(m.from);
        got.push(m.message as { got: unknown; seq: number });
      }
    }
    assert.deepEqual(got, [
      { got: { n: 1 }, seq: 1 },
      { got: { n: 2 }, seq: 2 },
      { got: { n: 3 }, seq: 3 },
    ]);
    assert.deepEqual([...froms], [spawned.agent_id]);
    // After its last allowed restart fails, the agent is gone for good: name and mailbox too.
    const until = Date.now() + 30_000;
    for (;;) {
      const r = await os.sendMessage("anyone?", { toName: "phoenix" });
      if (isKernelError(r)) {
        assert.equal(r.code, "NOT_FOUND");
        break;
      }
      assert.ok(Date.now() < until, "phoenix stayed addressable after giving up");
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    await k.stop();
  }
});
