/**
 * Messaging publishes `message.received` on the kernel's bus, and releasing an identity drops
 * its mailbox. An in-process kernel (real server, real socket) so the bus can be observed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kernel } from "../kernel/kernel.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { Logger } from "../kernel/log.ts";
import { STORED_OVERHEAD } from "../kernel/mailbox.ts";

Deno.test({
  name: "ipc: a message.received event per delivered message; release drops the mailbox",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aos" });
    const kernel = new Kernel(
      { socket: join(dir, "k.sock"), stateDir: join(dir, "state") },
      allSyscalls,
      new Logger("error", "text"),
    );
    const clients: AgentOSClient[] = [];
    try {
      await kernel.start();
      const events: { to: number; from: number; seq: number }[] = [];
      kernel.bus.on("message.received", (e) => events.push(e));
      const connect = async () => {
        const c = await AgentOSClient.connect({ socket: kernel.config.socket });
        clients.push(c);
        return c;
      };
      const a = await connect();
      const b = await connect();
      const c = await connect();
      const aId = (await a.registerName("a") as { agent_id: number }).agent_id;
      const bId = (await b.registerName("b") as { agent_id: number }).agent_id;
      const cId = (await c.registerName("c") as { agent_id: number }).agent_id;
      assert.ok(!isKernelError(await a.sendMessage("x", { toName: "b" })));
      assert.ok(!isKernelError(await a.sendMessage("y", { toName: "b" })));
      assert.ok(isKernelError(await a.sendMessage("z", { toName: "nobody" })));
      const bc = await c.broadcast("all");
      assert.ok(!isKernelError(bc) && bc.delivered_count === 2);
      assert.deepEqual(events.slice(0, 2), [
        { to: bId, from: aId, seq: 1 },
        { to: bId, from: aId, seq: 2 },
      ]);
      assert.deepEqual(
        events.slice(2).sort((p, q) => p.to - q.to),
        [{ to: aId, from: cId, seq: 1 }, { to: bId, from: cId, seq: 3 }],
      );
      // b's three messages are held until b leaves; then they are freed with its mailbox.
      assert.equal(kernel.mailboxes.pending(bId), 3);
      const held = kernel.mailboxes.totalBytes;
      assert.ok(held > 0);
      b.close();
      const deadline = Date.now() + 5_000;
      while (kernel.identities.get(bId)) {
        assert.ok(Date.now() < deadline, "b's identity was not released");
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(kernel.mailboxes.pending(bId), 0);
      // b held '"x"', '"y"' and '"all"' (11 bytes); only a's '"all"' (5 bytes) remains.
      assert.equal(held, 16 + 4 * STORED_OVERHEAD);
      assert.equal(kernel.mailboxes.totalBytes, 5 + STORED_OVERHEAD);
      // A dead identity gets no new mailbox.
      assert.equal(kernel.mailboxes.deliver(bId, aId, "a", "1", 1).ok, false);
    } finally {
      for (const c of clients) c.close();
      await kernel.shutdown("test over");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ipc: an agent identity keeps its name and mailbox across connections until released",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aos" });
    const kernel = new Kernel(
      { socket: join(dir, "k.sock"), stateDir: join(dir, "state") },
      allSyscalls,
      new Logger("error", "text"),
    );
    const clients: AgentOSClient[] = [];
    const connect = async (socket: string) => {
      const c = await AgentOSClient.connect({ socket });
      clients.push(c);
      return c;
    };
    try {
      await kernel.start();
      // An agent's identity and private socket, as the supervisor sets them up: every
      // connection on that socket is the agent, and closing one does not release it.
      const agent = kernel.identities.create({ kind: "agent", level: "minimal", name: "worker" });
      const agentSocket = join(kernel.layout.runDir, "worker.sock");
      kernel.server.listen(agentSocket, () => agent, false);
      const user = await connect(kernel.config.socket);
      // Addressable by its spawn name without REGISTER; reached by BROADCAST.
      const sent = await user.sendMessage({ n: 1 }, { toName: "worker" });
      assert.ok(!isKernelError(sent) && sent.delivered_to === agent.id);
      const bc = await user.broadcast({ n: 2 });
      assert.ok(!isKernelError(bc) && bc.delivered_count === 1);
      // The agent (minimal level) may use IPC; it keeps its spawn name.
      const first = await connect(agentSocket);
      const r1 = await first.recvMessages({ max: 1 });
      assert.ok(!isKernelError(r1));
      assert.deepEqual(r1.messages.map((m) => m.message), [{ n: 1 }]);
      const rename = await first.registerName("other");
      assert.ok(
        isKernelError(rename) && rename.code === "PERMISSION_DENIED",
        JSON.stringify(rename),
      );
      const same = await first.registerName("worker");
      assert.ok(!isKernelError(same) && same.agent_id === agent.id);
      // A client cannot take the agent's name.
      const steal = await user.registerName("worker");
      assert.ok(isKernelError(steal) && steal.code === "ERROR");
      // The connection goes (as in a restart): the mailbox stays, seq continues.
      first.close();
      await new Promise((r) => setTimeout(r, 50));
      const sent3 = await user.sendMessage({ n: 3 }, { toName: "worker" });
      assert.ok(!isKernelError(sent3) && sent3.seq === 3);
      const second = await connect(agentSocket);
      const r2 = await second.recvMessages();
      assert.ok(!isKernelError(r2));
      assert.deepEqual(r2.messages.map((m) => [m.seq, m.message]), [[2, { n: 2 }], [3, { n: 3 }]]);
      // A waiting RECV wakes on a SEND.
      const waiting = second.recvMessages({ wait: true, timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(!isKernelError(await user.sendMessage({ n: 4 }, { toName: "worker" })));
      const woke = await waiting;
      assert.ok(!isKernelError(woke) && woke.count === 1 && woke.messages[0].seq === 4);
      // The agent exits for good while a RECV waits: the RECV ends at once (empty), the
      // mailbox and the name are gone, and a client can take the name.
      const finalWait = second.recvMessages({ wait: true, timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      kernel.releaseIdentity(agent.id);
      const ended = await finalWait;
      assert.ok(!isKernelError(ended) && ended.count === 0);
      assert.ok(performance.now() - t0 < 2_000, "the waiting RECV outlived its identity");
      kernel.releaseIdentity(agent.id);
      kernel.server.unlisten(agentSocket, agent.id);
      assert.equal(kernel.mailboxes.pending(agent.id), 0);
      const gone = await user.sendMessage({ n: 5 }, { toName: "worker" });
      assert.ok(isKernelError(gone) && gone.code === "NOT_FOUND");
      const taken = await user.registerName("worker");
      assert.ok(!isKernelError(taken), JSON.stringify(taken));
    } finally {
      for (const c of clients) c.close();
      await kernel.shutdown("test over");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
