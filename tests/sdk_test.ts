/**
 * The SDK round-trips every landed op through its typed method against one real kernel
 * process: successes with their typed responses, and refusals as typed {@link KernelError}
 * values. The last step checks that every op in the registry went over the wire.
 */
import assert from "node:assert/strict";
import { startKernel } from "./helpers/kernel.ts";
import { startFakeAnthropic } from "./helpers/fake_anthropic.ts";
import { waitState } from "./helpers/agents.ts";
import {
  AgentOSClient,
  AgentOSConnectionError,
  connect,
  type ErrorCodeName,
  isKernelError,
  type JsonOpName,
  type KernelError,
  type MessageEnvelope,
  Op,
  type RequestFor,
  type ResponseFor,
  type Result,
} from "../sdk/mod.ts";
import { syscalls } from "../syscalls/mod.ts";
import type { Level } from "../sandbox/permissions.ts";
import { SDK_FILES } from "../kernel/agent_runtime.ts";

/** True if `T` is `any` or `unknown`: a type that checks nothing. */
type Loose<T> = 0 extends 1 & T ? true : unknown extends T ? true : false;
/** `true` only if every op's request and response types are specific (checked by `deno check`). */
type AllSpecific = {
  [K in JsonOpName]: Loose<RequestFor<K>> | Loose<ResponseFor<K>>;
}[JsonOpName] extends false ? true : never;
const allSpecific: AllSpecific = true;

/** The success value of `r`, failing the test on a kernel error. */
function ok<T>(r: Result<T>, what: string): T {
  if (isKernelError(r)) assert.fail(`${what}: ${r.code}: ${r.error}`);
  return r;
}

/** `r` as a kernel error with `code`, failing the test otherwise. */
function refused<T>(r: Result<T>, code: ErrorCodeName, what: string): KernelError {
  assert.ok(isKernelError(r), `${what}: expected ${code}, got ${JSON.stringify(r)}`);
  assert.equal(r.code, code, `${what}: ${r.error}`);
  assert.equal(r.success, false);
  assert.ok(r.error.length > 0);
  return r;
}

/** Record the opcode of every request `client` sends (its typed methods all go through call). */
function track(client: AgentOSClient, seen: Set<number>): AgentOSClient {
  const call = client.call.bind(client);
  client.call = (op, payload) => {
    seen.add(typeof op === "number" ? op : Op[op]);
    return call(op, payload);
  };
  return client;
}

const AGENT = `import { connect } from "agentos";
await using os = await connect();
const me = await os.status();
if (me.success === false) throw new Error(me.error);
const sent = await os.sendMessage({ hello: "from agent", id: me.agent_id }, { toName: "sdk-main" });
if (sent.success === false) throw new Error(sent.error);
for await (const _ of os.messages({ timeoutMs: 1_000 })) { /* wait to be killed */ }`;

Deno.test({
  name: "SDK: every landed op round-trips through its typed method",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const fake = await startFakeAnthropic();
    const web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => new Response(`you asked ${new URL(req.url).pathname}`, { status: 201 }),
    );
    const webUrl = `http://127.0.0.1:${web.addr.port}`;
    const k = await startKernel({
      args: ["--client-network", "127.0.0.1"],
      env: { ANTHROPIC_API_KEY: "test-key", ANTHROPIC_BASE_URL: fake.url },
    });
    const seen = new Set<number>();
    const clients: AgentOSClient[] = [];
    const open = async () => {
      const c = track(await connect({ socket: k.socket }), seen);
      clients.push(c);
      return c;
    };
    try {
      const c = await open();
      const other = await open();

      await t.step("connect: a missing kernel throws AgentOSConnectionError", async () => {
        const err = await AgentOSClient.connect({ socket: `${k.dir}/none.sock` }).catch((e) => e);
        assert.ok(err instanceof AgentOSConnectionError);
        assert.match(err.message, /no kernel on .*none\.sock — start one with `agentos kernel`/);
      });

      await t.step("NOOP: echo and raw call", async () => {
        assert.equal(await c.echo("ping"), "ping");
        assert.deepEqual(await c.echo(new Uint8Array([0, 7, 255])), new Uint8Array([0, 7, 255]));
        const raw = await c.call("NOOP", "raw");
        assert.equal(raw.op, Op.NOOP);
        assert.equal(new TextDecoder().decode(raw.payload), "raw");
      });

      let mainId = 0;
      await t.step("KERNEL_STATUS", async () => {
        const s = ok(await c.status(), "status");
        const level: Level = s.level;
        assert.equal(level, "unrestricted");
        assert.equal(s.socket, k.socket);
        assert.equal(s.pid, k.pid);
        assert.ok(s.connections >= 2 && s.uptime_ms >= 0 && s.version.length > 0);
        mainId = s.agent_id;
        // The typed request() reaches the same op, with the same response type.
        const again: ResponseFor<"KERNEL_STATUS"> = ok(
          await c.request("KERNEL_STATUS", {}),
          "request",
        );
        assert.equal(again.agent_id, mainId);
        refused(await c.request("KERNEL_STATUS", { x: 1 } as never), "INVALID_MSG", "extra field");
      });

      await t.step("REGISTER", async () => {
        const r = ok(await c.registerName("sdk-main"), "REGISTER");
        assert.deepEqual(r, { success: true, agent_id: mainId, name: "sdk-main" });
        refused(await other.registerName("sdk-main"), "ERROR", "taken name");
        refused(await other.registerName("12345"), "INVALID_MSG", "numeric name");
        ok(await other.registerName("sdk-other"), "REGISTER other");
      });

      await t.step("WRITE, READ, readAll", async () => {
        const w = ok(await c.writeFile("sdk/a.txt", "héllo", { mkdirs: true }), "WRITE");
        assert.equal(w.bytes_written, 6);
        assert.match(w.path, /sdk\/a\.txt$/);
        refused(await c.writeFile("sdk/a.txt", "x", { mode: "create" }), "ERROR", "create");
        ok(await c.writeFile("sdk/a.txt", "!", { mode: "append" }), "append");

        const r = ok(await c.readFile("sdk/a.txt"), "READ");
        assert.deepEqual(
          { content: r.content, size: r.size, encoding: r.encoding, truncated: r.truncated },
          { content: "héllo!", size: 7, encoding: "utf8", truncated: false },
        );
        const page = ok(await c.readFile("sdk/a.txt", { offset: 1, length: 2 }), "READ page");
        assert.equal(page.content, "é");
        refused(await c.readFile("sdk/missing.txt"), "NOT_FOUND", "missing file");

        // Binary, larger than one READ page (written in two frames): readAll pages through it.
        const big = new Uint8Array(1_400_000).map((_, i) => (i * 7919) % 256);
        ok(await c.writeFile("sdk/big.bin", big.subarray(0, 700_000)), "WRITE bytes");
        ok(await c.writeFile("sdk/big.bin", big.subarray(700_000), { mode: "append" }), "append");
        const all = ok(await c.readAll("sdk/big.bin"), "readAll");
        assert.equal(all.length, big.length);
        assert.deepEqual(all, big);
        refused(await c.readAll("sdk/big.bin", 1000), "QUOTA_EXCEEDED", "readAll maxBytes");
        refused(await c.readAll("sdk/missing.bin"), "NOT_FOUND", "readAll missing");
      });

      await t.step("EXEC", async () => {
        const r = ok(await c.exec("echo out; echo err >&2; exit 3", { timeout: 10 }), "EXEC");
        assert.deepEqual(
          [r.success, r.stdout, r.stderr, r.exit_code, r.timed_out],
          [false, "out\n", "err\n", 3, false],
        );
        const input = ok(await c.exec("cat", { stdin: "piped" }), "EXEC stdin");
        assert.equal(input.stdout, "piped");
        refused(await c.exec("true", { timeout: -1 }), "INVALID_MSG", "negative timeout");
      });

      await t.step("HTTP", async () => {
        const r = ok(await c.http(`${webUrl}/hello`), "HTTP");
        assert.equal(r.status_code, 201);
        assert.equal(r.body, "you asked /hello");
        assert.equal(r.truncated, false);
        refused(await c.http("not a url"), "INVALID_MSG", "bad URL");
      });

      let otherId = 0;
      await t.step("GET_PERMS, SET_PERMS", async () => {
        const mine = ok(await c.getPermissions(), "GET_PERMS");
        assert.equal(mine.agent_id, mainId);
        assert.equal(mine.permissions.level, "unrestricted");
        otherId = ok(await other.status(), "status").agent_id;
        const set = ok(
          await c.setPermissions({ agentId: otherId, level: "readonly" }),
          "SET_PERMS",
        );
        assert.equal(set.agent_id, otherId);
        assert.equal(set.permissions.level, "readonly");
        assert.equal(set.enforcement, "kernel-checks");
        const theirs = ok(await c.getPermissions(otherId), "GET_PERMS other");
        assert.equal(theirs.permissions.can_write, false);
        const up = refused(
          await other.setPermissions({ level: "unrestricted" }),
          "PERMISSION_DENIED",
          "raise self",
        );
        assert.match(up.error, /^Permission denied/);
        refused(await other.getPermissions(mainId), "PERMISSION_DENIED", "read another's");
        refused(await c.getPermissions(0xfff_fff0), "NOT_FOUND", "unknown identity");
        refused(await c.setPermissions({}), "INVALID_MSG", "neither level nor permissions");
        refused(await other.writeFile("x.txt", "x"), "PERMISSION_DENIED", "readonly WRITE");
      });

      await t.step("SEND, RECV, BROADCAST, messages()", async () => {
        const sent = ok(await other.sendMessage({ n: 1 }, { toName: "sdk-main" }), "SEND");
        assert.equal(sent.delivered_to, mainId);
        ok(await other.sendMessage([2, "two"], { to: mainId }), "SEND by id");
        refused(await other.sendMessage(1, { toName: "nobody-here" }), "NOT_FOUND", "unknown");
        refused(await other.sendMessage(1, { to: 0xffff_fff0 }), "NOT_FOUND", "unknown id");

        const got = ok(await c.recvMessages({ max: 10 }), "RECV");
        assert.equal(got.count, 2);
        assert.equal(got.remaining, 0);
        const [a, b]: MessageEnvelope[] = got.messages;
        assert.deepEqual([a.from, a.from_name, a.message], [otherId, "sdk-other", { n: 1 }]);
        assert.deepEqual(b.message, [2, "two"]);
        assert.equal(b.seq, a.seq + 1);
        const empty = ok(await c.recvMessages({ wait: true, timeoutMs: 50 }), "RECV wait");
        assert.equal(empty.count, 0);
        refused(await c.recvMessages({ max: 0 }), "INVALID_MSG", "max 0");

        const bc = ok(await c.broadcast("all", { includeSelf: true }), "BROADCAST");
        assert.equal(bc.delivered_count, 2);
        assert.equal(bc.skipped_count, 0);
        assert.equal(ok(await c.broadcast("others"), "BROADCAST").delivered_count, 1);
        const toOther = ok(await other.recvMessages(), "RECV other");
        assert.deepEqual(toOther.messages.map((m) => m.message), ["all", "others"]);

        // messages(): the broadcast to self, then one more, through blocking RECVs.
        const later = setTimeout(() => void other.sendMessage("later", { to: mainId }), 100);
        const it: string[] = [];
        for await (const m of c.messages({ timeoutMs: 5_000 })) {
          it.push(m.message as string);
          if (it.length === 2) break;
        }
        clearTimeout(later);
        assert.deepEqual(it, ["all", "later"]);
      });

      await t.step("SPAWN, LIST, KILL", async () => {
        const s = ok(await c.spawn({ name: "sdk-agent", script: AGENT }), "SPAWN");
        assert.equal(s.name, "sdk-agent");
        assert.equal(s.level, "sandboxed");
        assert.equal(s.agent_id, s.id);
        const hello = ok(await c.recvMessages({ wait: true, timeoutMs: 30_000 }), "RECV agent");
        assert.equal(hello.count, 1, "the agent's message");
        assert.deepEqual(hello.messages[0].message, { hello: "from agent", id: s.id });
        assert.equal(hello.messages[0].from_name, "sdk-agent");

        const rows = ok(await c.listAgents(), "LIST");
        const row = rows.find((a) => a.id === s.id);
        assert.ok(row, "the agent is listed");
        assert.deepEqual([row.name, row.state, row.level, row.parent_id], [
          "sdk-agent",
          "running",
          "sandboxed",
          mainId,
        ]);
        refused(await c.spawn({ name: "sdk-agent", script: AGENT }), "ERROR", "taken name");
        refused(
          await other.spawn({ name: "x", script: AGENT }),
          "PERMISSION_DENIED",
          "readonly spawn",
        );

        const killed = ok(await c.kill({ name: "sdk-agent" }), "KILL");
        assert.deepEqual([killed.killed, killed.agent_id], [true, s.id]);
        await waitState(c, s.id, ["killed"]);
        refused(await c.kill({ name: "no-such-agent" }), "NOT_FOUND", "unknown agent");
      });

      await t.step("THINK", async () => {
        const r = ok(await c.think("hello there", { max_tokens: 64 }), "THINK");
        assert.equal(r.content, "echo: hello there");
        assert.deepEqual(r.usage, { input_tokens: 11, output_tokens: 7 });
        assert.equal(r.tokens, 18);
        assert.equal(r.stop_reason, "end_turn");
        assert.equal(fake.requestsFor("hello there").length, 1);
        const sentKey = fake.requestsFor("hello there")[0].headers;
        assert.ok(
          sentKey["x-api-key"] === "test-key" || sentKey.authorization === "Bearer test-key",
        );
        refused(await c.think(""), "INVALID_MSG", "empty prompt");
        refused(await c.think("hi", { temperature: 2 }), "INVALID_MSG", "temperature");
      });

      await t.step("EXIT closes the connection", async () => {
        const byeClient = await open();
        const e = ok(await byeClient.exit(), "EXIT");
        assert.equal(e.closing, true);
        assert.ok(e.agent_id > 0);
        await assert.rejects(byeClient.echo("after exit"), AgentOSConnectionError);
      });

      await t.step("SHUTDOWN stops the kernel", async () => {
        refused(await other.shutdown("no"), "PERMISSION_DENIED", "readonly SHUTDOWN");
        const r = ok(await c.shutdown("sdk test done"), "SHUTDOWN");
        assert.equal(r.stopping, true);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const status = await Promise.race([
          k.process.status,
          new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000)),
        ]);
        clearTimeout(timer);
        assert.ok(status, "the kernel exits after SHUTDOWN");
        assert.equal(status.code, 0);
      });

      await t.step("every op in the registry went over the wire", () => {
        assert.equal(allSpecific, true);
        const registry = Object.values(syscalls).map((s) => s.op).sort((x, y) => x - y);
        assert.deepEqual(Object.values(Op).sort((x, y) => x - y), registry);
        const missing = registry.filter((op) => !seen.has(op));
        assert.deepEqual(
          missing,
          [],
          `ops never sent: ${missing.map((o) => `0x${o.toString(16)}`)}`,
        );
      });
    } finally {
      for (const c of clients) c.close();
      await k.stop();
      await web.shutdown();
      await fake.close();
    }
  },
});

Deno.test("the SDK's runtime module graph is exactly the files the kernel gives agents", async () => {
  const root = new URL("../", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("sdk/mod.ts", root).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { code?: { specifier: string } }[] }[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  // Follow runtime imports only: `import type` is erased and never loaded by an agent.
  const runtime = new Set<string>();
  const queue = [new URL("sdk/mod.ts", root).href];
  while (queue.length > 0) {
    const spec = queue.pop()!;
    if (runtime.has(spec)) continue;
    runtime.add(spec);
    for (const d of bySpecifier.get(spec)?.dependencies ?? []) {
      if (d.code) queue.push(d.code.specifier);
    }
  }
  const files = [...runtime].map((s) => {
    assert.ok(s.startsWith(root.href), `the SDK must not load ${s} at runtime`);
    return s.slice(root.href.length);
  });
  assert.deepEqual(files.sort(), [...SDK_FILES].sort());
});
