/**
 * Messaging (issue 5): REGISTER, SEND, RECV, BROADCAST against a real kernel over real sockets.
 */
import assert from "node:assert/strict";
import { type TestKernel, withKernel } from "./helpers/kernel.ts";
import {
  type AgentOSClient,
  isKernelError,
  type MessageEnvelope,
  type Result,
} from "../sdk/mod.ts";
import { MAX_MESSAGE_BYTES } from "../kernel/mailbox.ts";
import { MAX_PAYLOAD, Op } from "../kernel/protocol.ts";

/** Fail with the kernel's error text unless `r` succeeded. */
function ok<T>(r: Result<T>, what = "call"): T {
  if (isKernelError(r)) throw new Error(`${what} failed: ${r.code}: ${r.error}`);
  return r;
}

/** Assert `r` is a kernel error with `code`; returns its text. */
function fails(r: unknown, code: string): string {
  assert.ok(isKernelError(r), `expected ${code}, got ${JSON.stringify(r).slice(0, 300)}`);
  assert.equal(r.code, code, r.error);
  return r.error;
}

/** A client holding `name`. */
async function named(k: TestKernel, name: string): Promise<AgentOSClient> {
  const c = await k.client();
  ok(await c.registerName(name), `REGISTER ${name}`);
  return c;
}

/** Receive until `count` messages have arrived (blocking receives, bounded overall). */
async function drain(c: AgentOSClient, count: number, timeoutMs = 30_000) {
  const out: MessageEnvelope[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    assert.ok(Date.now() < deadline, `only ${out.length} of ${count} messages arrived`);
    const r = ok(await c.recvMessages({ wait: true, timeoutMs: 2_000, max: 10_000 }));
    out.push(...r.messages);
  }
  return out;
}

Deno.test("ipc: per-sender FIFO under concurrent senders, gapless seq", async () => {
  await withKernel([], async (k) => {
    const rx = await named(k, "rx");
    const senders = 4;
    const each = 500;
    const clients = await Promise.all(Array.from({ length: senders }, () => k.client()));
    const receiving = drain(rx, senders * each);
    await Promise.all(clients.map(async (c, s) => {
      for (let n = 0; n < each; n++) {
        ok(await c.sendMessage({ s, n }, { toName: "rx" }), "SEND");
      }
    }));
    const got = await receiving;
    assert.equal(got.length, senders * each);
    const next = new Array(senders).fill(0);
    const ids = new Map<number, number>();
    got.forEach((m, i) => {
      assert.equal(m.seq, i + 1, "seq counts 1, 2, 3... in arrival order");
      const { s, n } = m.message as { s: number; n: number };
      assert.equal(n, next[s], `sender ${s}: expected message ${next[s]}, got ${n}`);
      next[s]++;
      if (!ids.has(s)) ids.set(s, m.from);
      assert.equal(m.from, ids.get(s));
      assert.equal(m.from_name, null);
    });
    assert.deepEqual(next, new Array(senders).fill(each));
    assert.equal(new Set(ids.values()).size, senders);
    // Nothing left behind.
    assert.equal(ok(await rx.recvMessages()).count, 0);
  });
});

Deno.test("ipc: unknown targets are NOT_FOUND; SEND by id and to self works", async () => {
  await withKernel([], async (k) => {
    const a = await k.client();
    fails(await a.sendMessage(1, { toName: "ghost" }), "NOT_FOUND");
    fails(await a.sendMessage(1, { to: 999_999 }), "NOT_FOUND");
    const me = ok(await a.status()).agent_id;
    const r = ok(await a.sendMessage({ hi: "me" }, { to: me }));
    assert.equal(r.delivered_to, me);
    assert.equal(r.seq, 1);
    const got = ok(await a.recvMessages());
    assert.equal(got.count, 1);
    assert.deepEqual(got.messages[0].message, { hi: "me" });
    assert.equal(got.messages[0].from, me);
    assert.equal(got.remaining, 0);
  });
});

Deno.test("ipc: a full mailbox refuses with QUOTA_EXCEEDED and recovers once drained", async () => {
  await withKernel(["--mailbox-max-messages", "5"], async (k) => {
    const rx = await named(k, "rx");
    const tx = await k.client();
    const delivered: number[] = [];
    for (let i = 0; i < 5; i++) {
      ok(await tx.sendMessage(i, { toName: "rx" }));
      delivered.push(i);
    }
    const err = fails(await tx.sendMessage(5, { toName: "rx" }), "QUOTA_EXCEEDED");
    assert.match(err, /full/);
    assert.match(err, /5 of 5 messages/);
    // Take two; two more fit, the third does not.
    const first = ok(await rx.recvMessages({ max: 2 }));
    assert.deepEqual(first.messages.map((m) => m.message), [0, 1]);
    assert.equal(first.remaining, 3);
    ok(await tx.sendMessage(6, { toName: "rx" }));
    ok(await tx.sendMessage(7, { toName: "rx" }));
    fails(await tx.sendMessage(8, { toName: "rx" }), "QUOTA_EXCEEDED");
    const rest = ok(await rx.recvMessages());
    // Exactly the acknowledged messages, in order: nothing silently dropped or duplicated.
    assert.deepEqual(rest.messages.map((m) => m.message), [2, 3, 4, 6, 7]);
    assert.deepEqual(rest.messages.map((m) => m.seq), [3, 4, 5, 6, 7]);
    ok(await tx.sendMessage(9, { toName: "rx" }));
    assert.deepEqual(ok(await rx.recvMessages()).messages.map((m) => m.message), [9]);
  });
});

Deno.test("ipc: the per-mailbox byte limit refuses and recovers", async () => {
  await withKernel(["--mailbox-max-bytes", "1000"], async (k) => {
    const rx = await named(k, "rx");
    const tx = await k.client();
    const big = "x".repeat(400); // 402 bytes as JSON
    ok(await tx.sendMessage(big, { toName: "rx" }));
    ok(await tx.sendMessage(big, { toName: "rx" }));
    const err = fails(await tx.sendMessage(big, { toName: "rx" }), "QUOTA_EXCEEDED");
    assert.match(err, /1000-byte limit/);
    // A small one still fits: the limit is bytes, not count.
    ok(await tx.sendMessage("small", { toName: "rx" }));
    assert.equal(ok(await rx.recvMessages()).count, 3);
    ok(await tx.sendMessage(big, { toName: "rx" }));
    // Bad flag values are usage errors.
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "kernel", "--mailbox-max-bytes", "lots"],
      cwd: new URL("..", import.meta.url),
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /--mailbox-max-bytes/);
  });
});

Deno.test("ipc: the kernel-wide message memory budget refuses and recovers", async () => {
  await withKernel(["--mailbox-max-total-bytes", "3000"], async (k) => {
    const r1 = await named(k, "r1");
    const r2 = await named(k, "r2");
    const tx = await k.client();
    const msg = "m".repeat(600); // 602 bytes of ASCII + 128 bookkeeping = 730 charged
    for (let i = 0; i < 2; i++) ok(await tx.sendMessage(msg, { toName: "r1" }));
    for (let i = 0; i < 2; i++) ok(await tx.sendMessage(msg, { toName: "r2" }));
    const err = fails(await tx.sendMessage(msg, { toName: "r2" }), "QUOTA_EXCEEDED");
    assert.match(err, /kernel's message memory is full/);
    // Non-ASCII text is charged two bytes per UTF-16 unit: 302 units -> 732 charged.
    ok(await r1.recvMessages());
    ok(await tx.sendMessage("é".repeat(300), { toName: "r2" }));
    ok(await tx.sendMessage("é".repeat(300), { toName: "r2" }));
    fails(await tx.sendMessage("é", { toName: "r1" }), "QUOTA_EXCEEDED");
    assert.equal(ok(await r2.recvMessages()).count, 4);
    ok(await tx.sendMessage(msg, { toName: "r1" }));
  });
});

Deno.test("ipc: a blocking RECV wakes promptly and holds no other connection", async () => {
  await withKernel([], async (k) => {
    const rx = await named(k, "rx");
    const tx = await k.client();
    const other = await k.client();
    const waiting = rx.recvMessages({ wait: true, timeoutMs: 20_000 });
    let settled = false;
    void waiting.then(() => settled = true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(settled, false, "RECV with wait answered before any message");
    // Other connections are served while the RECV waits.
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) assert.equal(await other.echo(`ping ${i}`), `ping ${i}`);
    assert.equal(ok(await other.recvMessages()).count, 0);
    const noopMs = performance.now() - t0;
    assert.ok(noopMs < 1_000, `20 NOOPs + RECV on another connection took ${noopMs} ms`);
    assert.equal(settled, false);
    // A SEND wakes it.
    const sentAt = performance.now();
    ok(await tx.sendMessage({ wake: true }, { toName: "rx" }));
    const r = ok(await waiting);
    const wakeMs = performance.now() - sentAt;
    assert.equal(r.count, 1);
    assert.deepEqual(r.messages[0].message, { wake: true });
    assert.ok(wakeMs < 200, `blocking RECV woke ${wakeMs} ms after SEND`);
  });
});

Deno.test("ipc: a blocking RECV times out with an empty result, not an error", async () => {
  await withKernel([], async (k) => {
    const rx = await k.client();
    const t0 = performance.now();
    const r = ok(await rx.recvMessages({ wait: true, timeoutMs: 300 }));
    const ms = performance.now() - t0;
    assert.equal(r.success, true);
    assert.equal(r.count, 0);
    assert.deepEqual(r.messages, []);
    assert.ok(ms >= 280, `returned after ${ms} ms`);
    assert.ok(ms < 5_000, `returned after ${ms} ms`);
    // timeout 0 answers at once.
    assert.equal(ok(await rx.recvMessages({ wait: true, timeoutMs: 0 })).count, 0);
  });
});

Deno.test("ipc: two waiters on one kernel, and a waiter that disconnects", async () => {
  await withKernel([], async (k) => {
    const a = await named(k, "a");
    const b = await named(k, "b");
    const tx = await k.client();
    const wa = a.recvMessages({ wait: true, timeoutMs: 10_000 });
    const wb = b.recvMessages({ wait: true, timeoutMs: 10_000 });
    // A waiter that leaves: its RECV is cancelled and its name is freed.
    const gone = await named(k, "gone");
    const wg = gone.recvMessages({ wait: true, timeoutMs: 10_000 }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    gone.close();
    assert.ok((await wg) instanceof Error);
    ok(await tx.sendMessage("to-b", { toName: "b" }));
    assert.deepEqual(ok(await wb).messages.map((m) => m.message), ["to-b"]);
    ok(await tx.sendMessage("to-a", { toName: "a" }));
    assert.deepEqual(ok(await wa).messages.map((m) => m.message), ["to-a"]);
    const deadline = Date.now() + 5_000;
    while (!isKernelError(await tx.sendMessage(1, { toName: "gone" }))) {
      assert.ok(Date.now() < deadline, "the departed waiter's name stayed addressable");
      await new Promise((r) => setTimeout(r, 20));
    }
    fails(await tx.sendMessage(1, { toName: "gone" }), "NOT_FOUND");
  });
});

Deno.test("ipc: BROADCAST reaches named identities, with and without include_self", async () => {
  await withKernel(["--mailbox-max-messages", "3"], async (k) => {
    const a = await named(k, "a");
    const b = await named(k, "b");
    const d = await named(k, "d");
    const anon = await k.client();
    const r1 = ok(await a.broadcast({ n: 1 }));
    assert.equal(r1.delivered_count, 2, "b and d");
    assert.deepEqual(r1.skipped, []);
    const r2 = ok(await a.broadcast({ n: 2 }, { includeSelf: true }));
    assert.equal(r2.delivered_count, 3, "a, b and d");
    // An unnamed caller reaches every named identity, and itself only when asked.
    assert.equal(ok(await anon.broadcast({ n: 3 })).delivered_count, 3);
    // b now has 3 messages (its limit); d is drained; a has 2.
    ok(await d.recvMessages());
    const r4 = ok(await anon.broadcast({ n: 4 }, { includeSelf: true }));
    assert.equal(r4.delivered_count, 3, "a, d and anon; b is full");
    assert.equal(r4.skipped_count, 1);
    assert.equal(r4.skipped.length, 1);
    assert.equal(r4.skipped[0].name, "b");
    assert.match(r4.skipped[0].reason, /full/);
    const bGot = ok(await b.recvMessages()).messages;
    assert.deepEqual(bGot.map((m) => m.message), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(bGot.map((m) => m.from_name), ["a", "a", null]);
    assert.deepEqual(ok(await a.recvMessages()).messages.map((m) => m.message), [
      { n: 2 },
      { n: 3 },
      { n: 4 },
    ]);
    assert.deepEqual(ok(await anon.recvMessages()).messages.map((m) => m.message), [{ n: 4 }]);
    assert.deepEqual(ok(await d.recvMessages()).messages.map((m) => m.message), [{ n: 4 }]);
  });
});

Deno.test("ipc: a name is unique, freed when its owner disconnects, then taken by another", async () => {
  await withKernel([], async (k) => {
    const a = await k.client();
    const b = await k.client();
    const r = ok(await a.registerName("alpha"));
    assert.equal(r.name, "alpha");
    assert.equal(r.agent_id, ok(await a.status()).agent_id);
    // Registering one's own name again is fine; another identity cannot take it.
    ok(await a.registerName("alpha"));
    const taken = fails(await b.registerName("alpha"), "ERROR");
    assert.match(taken, /taken/);
    // Renaming releases the old name.
    ok(await a.registerName("alpha2"));
    ok(await b.registerName("alpha"));
    fails(await a.registerName("alpha"), "ERROR");
    a.close();
    const deadline = Date.now() + 5_000;
    for (;;) {
      const rr = await b.registerName("alpha2");
      if (!isKernelError(rr)) break;
      assert.ok(Date.now() < deadline, "alpha2 was not released after its owner disconnected");
      await new Promise((res) => setTimeout(res, 20));
    }
    // b took alpha2, so alpha is free again and a newcomer may take it.
    const c = await k.client();
    ok(await c.registerName("alpha"));
    ok(await c.sendMessage("hi", { toName: "alpha2" }));
    assert.equal(ok(await b.recvMessages()).messages[0].from_name, "alpha");
  });
});

Deno.test("ipc: RECV responses stay under 1 MiB; the largest message round-trips", async () => {
  await withKernel([], async (k) => {
    const rx = await named(k, "rx");
    const tx = await k.client();
    const chunk = "y".repeat(300_000);
    for (let i = 0; i < 10; i++) ok(await tx.sendMessage({ i, chunk }, { toName: "rx" }));
    let seen = 0;
    let calls = 0;
    while (seen < 10) {
      const raw = await rx.call(Op.RECV, { max: 10 });
      assert.ok(raw.payload.length <= MAX_PAYLOAD, `RECV answered ${raw.payload.length} bytes`);
      const r = ok(JSON.parse(new TextDecoder().decode(raw.payload)) as Result<{
        count: number;
        remaining: number;
        messages: MessageEnvelope[];
      }>);
      assert.ok(r.count >= 1 && r.count <= 3, `count ${r.count}`);
      for (const m of r.messages) assert.equal((m.message as { i: number }).i, seen++);
      assert.equal(r.remaining, 10 - seen);
      calls++;
    }
    assert.ok(calls >= 4);
    // The largest message fits in one RECV response, even from a 64-character name.
    const longName = await named(k, "n".repeat(64));
    const largest = "z".repeat(MAX_MESSAGE_BYTES - 2);
    ok(await longName.sendMessage(largest, { toName: "rx" }), "largest SEND");
    const r = ok(await rx.recvMessages());
    assert.equal(r.count, 1);
    assert.equal(r.messages[0].message, largest);
    // One byte more is refused up front.
    const over = fails(
      await longName.sendMessage("z".repeat(MAX_MESSAGE_BYTES - 1), { toName: "rx" }),
      "INVALID_MSG",
    );
    assert.match(over, /over the \d+-byte limit/);
    // Many small messages are also capped by max.
    for (let i = 0; i < 50; i++) ok(await tx.sendMessage(i, { toName: "rx" }));
    assert.equal(ok(await rx.recvMessages({ max: 7 })).count, 7);
    assert.equal(ok(await rx.recvMessages()).count, 43);
  });
});

Deno.test("ipc: invalid payloads are INVALID_MSG and change nothing", async () => {
  await withKernel([], async (k) => {
    const rx = await named(k, "rx");
    const c = await k.client();
    const bad: [string, unknown][] = [
      ["SEND", { to: 1, to_name: "rx", message: 1 }],
      ["SEND", { message: 1 }],
      ["SEND", { to_name: "rx" }],
      ["SEND", { to_name: "bad name", message: 1 }],
      ["SEND", { to_name: "", message: 1 }],
      ["SEND", { to_name: "12345", message: 1 }],
      ["SEND", { to_name: "x".repeat(65), message: 1 }],
      ["SEND", { to: 0, message: 1 }],
      ["SEND", { to: -1, message: 1 }],
      ["SEND", { to: 1.5, message: 1 }],
      ["SEND", { to: 2 ** 32, message: 1 }],
      ["SEND", { to: "1", message: 1 }],
      ["SEND", { to_name: "rx", message: 1, extra: true }],
      ["SEND", [1, 2]],
      ["RECV", { max: 0 }],
      ["RECV", { max: 10_001 }],
      ["RECV", { wait: "yes" }],
      ["RECV", { timeout_ms: 100 }],
      ["RECV", { wait: true, timeout_ms: 600_001 }],
      ["RECV", { wait: true, timeout_ms: -1 }],
      ["RECV", { other: 1 }],
      ["BROADCAST", {}],
      ["BROADCAST", { message: 1, include_self: "yes" }],
      ["BROADCAST", { message: 1, to: 2 }],
      ["REGISTER", {}],
      ["REGISTER", { name: "" }],
      ["REGISTER", { name: "42" }],
      ["REGISTER", { name: "a/b" }],
      ["REGISTER", { name: ".." }],
      ["REGISTER", { name: "-x" }],
      ["REGISTER", { name: ".hidden" }],
      ["REGISTER", { name: "é" }],
      ["REGISTER", { name: "x".repeat(65) }],
      ["REGISTER", { name: 7 }],
    ];
    for (const [op, payload] of bad) {
      const raw = await c.call(op as "SEND", payload as object);
      const r = JSON.parse(new TextDecoder().decode(raw.payload));
      fails(r, "INVALID_MSG");
      assert.match(r.error, new RegExp(`^${op}: `), r.error);
    }
    // Invalid JSON too.
    fails(
      JSON.parse(new TextDecoder().decode((await c.call(Op.SEND, "{")).payload)),
      "INVALID_MSG",
    );
    // Nothing was delivered, and the connection still works.
    assert.equal(ok(await rx.recvMessages()).count, 0);
    assert.equal(
      ok(await c.sendMessage(null, { toName: "rx" })).delivered_to,
      ok(await rx.status()).agent_id,
    );
    assert.deepEqual(ok(await rx.recvMessages()).messages.map((m) => m.message), [null]);
  });
});

Deno.test("ipc: two connections exchange 10,000 messages each way, none lost or reordered", async () => {
  await withKernel(["--mailbox-max-messages", "200"], async (k) => {
    const a = await named(k, "ping");
    const b = await named(k, "pong");
    const a2 = await k.client(); // a's sending connection (a different identity)
    const b2 = await k.client();
    const total = 10_000;
    let refusals = 0;
    /** Send 0..total-1 to `to`, one at a time, retrying while the mailbox is full. */
    const pump = async (c: AgentOSClient, to: string) => {
      for (let i = 0; i < total;) {
        const r = await c.sendMessage({ i }, { toName: to });
        if (isKernelError(r)) {
          assert.equal(r.code, "QUOTA_EXCEEDED", r.error);
          refusals++;
          await new Promise((res) => setTimeout(res, 2));
          continue;
        }
        i++;
      }
    };
    const check = async (c: AgentOSClient) => {
      const got = await drain(c, total, 60_000);
      got.forEach((m, i) => assert.equal((m.message as { i: number }).i, i));
      assert.equal(ok(await c.recvMessages()).count, 0);
    };
    await Promise.all([pump(a2, "pong"), pump(b2, "ping"), check(a), check(b)]);
    console.log(`backpressure refusals while exchanging: ${refusals}`);
  });
});

Deno.test("ipc: messages() iterates blocking receives and ends when the client closes", async () => {
  await withKernel([], async (k) => {
    const rx = await named(k, "rx");
    const tx = await k.client();
    const seen: unknown[] = [];
    const loop = (async () => {
      for await (const m of rx.messages({ timeoutMs: 200 })) {
        seen.push(m.message);
        if (seen.length === 3) break;
      }
    })();
    for (let i = 0; i < 3; i++) {
      ok(await tx.sendMessage(i, { toName: "rx" }));
      await new Promise((r) => setTimeout(r, 30));
    }
    await loop;
    assert.deepEqual(seen, [0, 1, 2]);
    // A loop left waiting ends (without throwing) when the client is closed.
    let after = 0;
    const waiting = (async () => {
      for await (const _ of rx.messages({ timeoutMs: 10_000 })) after++;
    })();
    await new Promise((r) => setTimeout(r, 100));
    rx.close();
    await waiting;
    assert.equal(after, 0);
  });
});
