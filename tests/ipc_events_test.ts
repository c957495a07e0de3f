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
