import assert from "node:assert/strict";
import { join } from "node:path";
import { concatBytes, encodeFrame } from "../kernel/frame.ts";
import { HEADER_LEN, MAGIC, MAX_PAYLOAD, Op } from "../kernel/protocol.ts";
import { json, RawConn } from "./helpers/raw.ts";
import { runCli, startKernel } from "./helpers/kernel.ts";
import { AgentOSClient, isKernelError } from "../sdk/mod.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function header(op: number, length: bigint, magic = MAGIC): Uint8Array {
  const h = new Uint8Array(HEADER_LEN);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, magic, true);
  dv.setUint8(8, op);
  dv.setBigUint64(9, length, true);
  return h;
}

async function freshNoop(socket: string): Promise<boolean> {
  const c = await RawConn.open(socket);
  try {
    await c.write(encodeFrame(Op.NOOP, 0, te.encode("still-alive")));
    const [f] = await c.waitFrames(1, 5000);
    return f !== undefined && td.decode(f.payload) === "still-alive";
  } finally {
    await c.close();
  }
}

Deno.test("wire protocol against a real kernel", async (t) => {
  const k = await startKernel({ args: ["--frame-timeout", "300"] });
  try {
    await t.step("frames split byte by byte", async () => {
      const c = await RawConn.open(k.socket);
      const bytes = [
        ...encodeFrame(Op.NOOP, 0, te.encode("split")),
        ...encodeFrame(Op.KERNEL_STATUS, 0, te.encode("{}")),
      ];
      for (const b of bytes) await c.write(new Uint8Array([b]));
      const frames = await c.waitFrames(2);
      assert.equal(td.decode(frames[0].payload), "split");
      assert.equal(frames[1].op, Op.KERNEL_STATUS);
      assert.equal(json(frames[1]).success, true);
      await c.close();
    });

    await t.step("1,000 frames in one write come back in order", async () => {
      const c = await RawConn.open(k.socket);
      const parts = Array.from(
        { length: 1000 },
        (_, i) => encodeFrame(Op.NOOP, 0, te.encode(`n${i}`)),
      );
      await c.write(concatBytes(parts));
      const frames = await c.waitFrames(1000);
      assert.equal(frames.length, 1000);
      frames.forEach((f, i) => assert.equal(td.decode(f.payload), `n${i}`));
      await c.close();
    });

    await t.step("a maximum-size echo round-trips", async () => {
      const payload = new Uint8Array(MAX_PAYLOAD);
      for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
      const c = await RawConn.open(k.socket);
      await c.write(encodeFrame(Op.NOOP, 0, payload));
      const [f] = await c.waitFrames(1);
      assert.equal(f.payload.length, MAX_PAYLOAD);
      assert.deepEqual(f.payload, payload);
      await c.close();
    });

    await t.step("announced length 2^40: one INVALID_MSG frame, then closed", async () => {
      const c = await RawConn.open(k.socket);
      // Header and 64 stray bytes in one write: the kernel may close before a second write.
      const bytes = new Uint8Array(HEADER_LEN + 64);
      bytes.set(header(Op.NOOP, 2n ** 40n));
      await c.write(bytes);
      assert.equal(await c.waitClosed(5000), true);
      assert.equal(c.frames.length, 1);
      assert.equal(json(c.frames[0]).code, "INVALID_MSG");
      assert.match(String(json(c.frames[0]).error), /over the maximum/);
      await c.close();
    });

    await t.step("bad magic: one INVALID_MSG frame, then closed", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(
        encodeFrame(Op.NOOP, 0, te.encode("0123456789abcdef")).map((b, i) => i === 0 ? 0xef : b),
      );
      assert.equal(await c.waitClosed(5000), true);
      assert.equal(c.frames.length, 1);
      assert.equal(json(c.frames[0]).code, "INVALID_MSG");
      assert.match(String(json(c.frames[0]).error), /bad magic/);
      await c.close();
    });

    await t.step("truncated header then close", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(header(Op.NOOP, 0n).subarray(0, 9));
      await c.close();
    });

    await t.step("a half-sent frame is dropped after the idle timeout", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(encodeFrame(Op.NOOP, 0, te.encode("abcdefgh")).subarray(0, 20));
      assert.equal(await c.waitClosed(5000), true);
      assert.equal(c.frames.length, 0);
      await c.close();
    });

    await t.step("invalid JSON on a JSON op: INVALID_MSG, connection stays open", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(encodeFrame(Op.KERNEL_STATUS, 0, te.encode('{"oops": ')));
      await c.write(encodeFrame(Op.SHUTDOWN, 0, te.encode('{"reason": 5}')));
      await c.write(encodeFrame(Op.KERNEL_STATUS, 0, new Uint8Array([0xff, 0xfe])));
      await c.write(encodeFrame(Op.NOOP, 0, te.encode("after")));
      const frames = await c.waitFrames(4);
      assert.equal(json(frames[0]).code, "INVALID_MSG");
      assert.match(String(json(frames[0]).error), /not valid JSON/);
      assert.equal(json(frames[1]).code, "INVALID_MSG");
      assert.match(String(json(frames[1]).error), /field "reason"/);
      assert.equal(json(frames[2]).code, "INVALID_MSG");
      assert.equal(td.decode(frames[3].payload), "after");
      assert.equal(c.closed, false);
      await c.close();
    });

    await t.step("unknown op: NOT_FOUND with the op echoed", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(encodeFrame(0x77, 0, te.encode("x")));
      const [f] = await c.waitFrames(1);
      assert.equal(f.op, 0x77);
      assert.equal(json(f).code, "NOT_FOUND");
      assert.equal(json(f).success, false);
      await c.close();
    });

    await t.step("identity comes from the connection, never the header", async () => {
      const a = await RawConn.open(k.socket);
      const b = await RawConn.open(k.socket);
      await a.write(encodeFrame(Op.KERNEL_STATUS, 999, te.encode("{}")));
      await b.write(encodeFrame(Op.KERNEL_STATUS, 999, te.encode("{}")));
      const [fa] = await a.waitFrames(1);
      const [fb] = await b.waitFrames(1);
      assert.notEqual(fa.agentId, 999);
      assert.notEqual(fa.agentId, fb.agentId);
      assert.equal(json(fa).agent_id, fa.agentId);
      await a.close();
      await b.close();
    });

    await t.step("200 concurrent connections", async () => {
      const conns = await Promise.all(Array.from({ length: 200 }, () => RawConn.open(k.socket)));
      await Promise.all(conns.map((c, i) => c.write(encodeFrame(Op.NOOP, 0, te.encode(`c${i}`)))));
      const got = await Promise.all(conns.map((c) => c.waitFrames(1)));
      got.forEach((frames, i) => assert.equal(td.decode(frames[0].payload), `c${i}`));
      assert.equal(new Set(got.map((f) => f[0].agentId)).size, 200);
      await Promise.all(conns.map((c) => c.close()));
    });

    await t.step("EXIT acknowledges and closes", async () => {
      const c = await RawConn.open(k.socket);
      await c.write(encodeFrame(Op.EXIT, 0, new Uint8Array(0)));
      await c.write(encodeFrame(Op.NOOP, 0, te.encode("ignored")));
      assert.equal(await c.waitClosed(5000), true);
      assert.equal(c.frames.length, 1);
      assert.equal(json(c.frames[0]).success, true);
      await c.close();
    });

    await t.step("a client that closes during a 1 MB reply does not hurt the kernel", async () => {
      for (let i = 0; i < 5; i++) {
        const c = await RawConn.open(k.socket);
        await c.write(encodeFrame(Op.NOOP, 0, new Uint8Array(1_000_000)));
        await c.close();
      }
    });

    await t.step("after all of that the same kernel answers a fresh NOOP", async () => {
      assert.equal(await freshNoop(k.socket), true);
    });
  } finally {
    assert.equal(await k.stop(), 0);
  }
});

Deno.test("socket lifecycle: mode 0600, second kernel refused, SIGTERM removes the socket", async () => {
  const k = await startKernel();
  try {
    const info = await Deno.stat(k.socket);
    assert.equal(info.mode! & 0o777, 0o600);
    const second = await runCli([
      "kernel",
      "--socket",
      k.socket,
      "--state-dir",
      join(k.dir, "state2"),
    ]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /already running/);
    assert.equal(await freshNoop(k.socket), true, "the first kernel keeps serving");
  } finally {
    assert.equal(await k.stop(), 0);
  }
  await assert.rejects(Deno.stat(k.socket), Deno.errors.NotFound);
});

Deno.test("a stale socket file is reclaimed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aos" });
  const socket = join(dir, "k.sock");
  const stale = Deno.listen({ transport: "unix", path: socket });
  stale.close(); // Deno removes the file on close; recreate a dead socket file the hard way
  const l2 = Deno.listen({ transport: "unix", path: socket });
  // Leak the file: rename it away and back so close() cannot unlink it.
  await Deno.rename(socket, socket + ".keep");
  l2.close();
  await Deno.rename(socket + ".keep", socket);
  assert.equal((await Deno.lstat(socket)).isSocket, true);
  const k = await startKernel({ dir });
  try {
    assert.equal(await freshNoop(k.socket), true);
    assert.match(k.logs(), /stale socket/);
  } finally {
    await k.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a regular file at the socket path is never replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aos" });
  const socket = join(dir, "k.sock");
  await Deno.writeTextFile(socket, "precious");
  const r = await runCli(["kernel", "--socket", socket, "--state-dir", join(dir, "state")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not a socket/);
  assert.equal(await Deno.readTextFile(socket), "precious");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("CLI: status, call, stop, usage errors", async () => {
  const k = await startKernel();
  try {
    const s = await runCli(["status", "--socket", k.socket, "--json"]);
    assert.equal(s.code, 0, s.stderr);
    const status = JSON.parse(s.stdout);
    assert.equal(status.running, true);
    assert.equal(status.socket, k.socket);
    assert.equal(typeof status.uptime_ms, "number");
    assert.ok(status.connections >= 1);

    const echo = await runCli(["call", "noop", "hello there", "--socket", k.socket]);
    assert.equal(echo.stdout.trim(), "hello there");
    const unknown = await runCli(["call", "0x77", "--socket", k.socket]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /NOT_FOUND/);
    const bad = await runCli(["call", "KERNEL_STATUS", "{nope", "--socket", k.socket]);
    assert.equal(bad.code, 2);
    assert.equal((await runCli(["status", "--bogus"])).code, 2);
    assert.equal((await runCli(["frobnicate"])).code, 2);
    const help = await runCli(["call", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: agentos call/);
    assert.match((await runCli(["--version"])).stdout, /^agentos \d+\.\d+\.\d+/);

    const stop = await runCli(["stop", "--socket", k.socket]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await k.process.status).code, 0);
    await assert.rejects(Deno.stat(k.socket), Deno.errors.NotFound);
    const after = await runCli(["status", "--socket", k.socket]);
    assert.equal(after.code, 1);
    assert.match(after.stdout, /not running.*start one with `agentos kernel`/);
  } finally {
    await k.stop();
  }
});

Deno.test("only unrestricted callers may stop the kernel", async () => {
  const k = await startKernel({ args: ["--client-level", "standard"] });
  try {
    const r = await runCli(["stop", "--socket", k.socket]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(await freshNoop(k.socket), true);
  } finally {
    await k.stop();
  }
});

Deno.test("SDK: connection errors say what to do; round-trips the core ops", async () => {
  await assert.rejects(
    AgentOSClient.connect({ socket: "/tmp/definitely-no-kernel-here.sock" }),
    /no kernel on \/tmp\/definitely-no-kernel-here\.sock — start one with `agentos kernel`/,
  );
  const k = await startKernel();
  try {
    await using c = await AgentOSClient.connect({ socket: k.socket });
    assert.equal(await c.echo("ping"), "ping");
    assert.deepEqual(await c.echo(new Uint8Array([0, 1, 255])), new Uint8Array([0, 1, 255]));
    // Concurrent calls on one connection resolve to their own responses.
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => c.echo(`m${i}`)));
    many.forEach((m, i) => assert.equal(m, `m${i}`));
    const s = await c.status();
    assert.ok(!isKernelError(s));
    assert.equal(s.version.length > 0, true);
    const raw = await c.call(0x77, "x");
    assert.equal(raw.op, 0x77);
    const e = await c.exit();
    assert.equal(e.success, true);
    await assert.rejects(c.echo("closed"), /closed/);

    await using standard = await startKernel({ args: ["--client-level", "minimal"] }).then((m) => ({
      m,
      async [Symbol.asyncDispose]() {
        await m.stop();
      },
    }));
    const mc = await standard.m.client();
    const denied = await mc.shutdown();
    assert.ok(isKernelError(denied));
    assert.equal(denied.code, "PERMISSION_DENIED");
    assert.match(denied.error, /^Permission denied/);
  } finally {
    await k.stop();
  }
});
