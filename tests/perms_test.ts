/**
 * GET_PERMS / SET_PERMS and the level matrix for READ / WRITE / SET_PERMS, against a real
 * kernel process; the descendant rules (which need a parent/child tree) against a real
 * in-process Kernel through the real dispatcher.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fakeHome } from "./helpers/fixtures.ts";
import { runCli, startKernel } from "./helpers/kernel.ts";
import { Kernel } from "../kernel/kernel.ts";
import { dispatch } from "../kernel/dispatch.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { buildDispatchTable } from "../syscalls/registry.ts";
import { HEADER_LEN, Op } from "../kernel/protocol.ts";
import type { Identity } from "../kernel/identity.ts";
import { type Level, LEVELS, withinBounds, withOwnWorkspace } from "../sandbox/permissions.ts";
import type { AgentOSClient } from "../sdk/mod.ts";

// ---------------------------------------------------------------------------------------------
// Real kernel: every level × READ / WRITE / SET_PERMS / GET_PERMS.

type Outcome = "ok" | "denied";
interface Row {
  readWs: Outcome;
  readOutside: Outcome;
  readSecret: Outcome;
  writeWs: Outcome;
  writeOutside: Outcome;
  lowerSelf: Outcome;
  raiseSelf: Outcome | "n/a";
  setOther: Outcome;
  getOther: Outcome;
}
const MATRIX: Record<Level, Row> = {
  unrestricted: {
    readWs: "ok",
    readOutside: "ok",
    readSecret: "denied",
    writeWs: "ok",
    writeOutside: "ok",
    lowerSelf: "ok",
    raiseSelf: "n/a",
    setOther: "ok",
    getOther: "ok",
  },
  standard: {
    readWs: "ok",
    readOutside: "ok",
    readSecret: "denied",
    writeWs: "ok",
    writeOutside: "ok",
    lowerSelf: "ok",
    raiseSelf: "denied",
    setOther: "denied",
    getOther: "denied",
  },
  sandboxed: {
    readWs: "ok",
    readOutside: "denied",
    readSecret: "denied",
    writeWs: "ok",
    writeOutside: "denied",
    lowerSelf: "ok",
    raiseSelf: "denied",
    setOther: "denied",
    getOther: "denied",
  },
  readonly: {
    readWs: "ok",
    readOutside: "ok",
    readSecret: "denied",
    writeWs: "denied",
    writeOutside: "denied",
    lowerSelf: "ok",
    raiseSelf: "denied",
    setOther: "denied",
    getOther: "denied",
  },
  minimal: {
    readWs: "denied",
    readOutside: "denied",
    readSecret: "denied",
    writeWs: "denied",
    writeOutside: "denied",
    lowerSelf: "ok",
    raiseSelf: "denied",
    setOther: "denied",
    getOther: "denied",
  },
};

function outcome(r: { success: boolean; code?: string; error?: string }, what: string): Outcome {
  if (r.success) return "ok";
  assert.equal(r.code, "PERMISSION_DENIED", `${what}: ${JSON.stringify(r)}`);
  assert.match(r.error ?? "", /^Permission denied/);
  return "denied";
}

Deno.test("level matrix: READ, WRITE, SET_PERMS, GET_PERMS per level (real kernel)", async (t) => {
  const { tmp, home, outside } = await fakeHome("aosperm");
  const k = await startKernel({ env: { HOME: home } });
  try {
    const other = await k.client();
    const otherId = (await other.getPermissions() as { agent_id: number }).agent_id;
    for (const level of LEVELS) {
      await t.step(level, async () => {
        const c: AgentOSClient = await k.client();
        const w = await c.writeFile("mine.txt", `mine at ${level}`);
        assert.ok(w.success, JSON.stringify(w));
        if (level !== "unrestricted") {
          const s = await c.setPermissions({ level });
          assert.ok(s.success, JSON.stringify(s));
          assert.equal(s.permissions.level, level);
          assert.equal(s.enforcement, "kernel-checks");
        }
        const g = await c.getPermissions();
        assert.ok(g.success);
        assert.equal(g.permissions.level, level);
        const want = MATRIX[level];
        const got: Partial<Row> = {};
        const readWs = await c.readFile("mine.txt");
        got.readWs = outcome(readWs, "read own workspace");
        if (readWs.success) assert.equal(readWs.content, `mine at ${level}`);
        got.readOutside = outcome(await c.readFile(join(outside, "public.txt")), "read outside");
        got.readSecret = outcome(
          await c.readFile(join(home, ".ssh", "id_rsa")),
          "read the fake ~/.ssh/id_rsa",
        );
        got.writeWs = outcome(await c.writeFile("w.txt", "x"), "write own workspace");
        got.writeOutside = outcome(
          await c.writeFile(join(outside, `${level}.txt`), "x"),
          "write outside",
        );
        got.getOther = outcome(await c.getPermissions(otherId), "GET_PERMS other");
        got.setOther = outcome(
          await c.setPermissions({ agentId: otherId, level: "unrestricted" }),
          "SET_PERMS other",
        );
        const rank = LEVELS.indexOf(level);
        got.raiseSelf = rank === 0
          ? "n/a"
          : outcome(await c.setPermissions({ level: LEVELS[rank - 1] }), "raise self");
        const lower = LEVELS[Math.min(rank + 1, LEVELS.length - 1)];
        const lowered = await c.setPermissions({ level: lower });
        got.lowerSelf = outcome(lowered, "lower self");
        assert.deepEqual(got, want);
        // What was refused left no trace.
        if (want.writeOutside === "denied") {
          await assert.rejects(Deno.stat(join(outside, `${level}.txt`)));
        }
        const after = await c.getPermissions();
        assert.ok(after.success);
        assert.equal(after.permissions.level, lower, "lowering took effect");
      });
    }
    await t.step("a raised boolean or a dropped blocked path is refused", async () => {
      const c = await k.client();
      assert.ok((await c.setPermissions({ level: "readonly" })).success);
      const r1 = await c.setPermissions({ permissions: { can_write: true } });
      assert.equal(r1.success, false);
      assert.match((r1 as { error: string }).error, /^Permission denied.*can_write/);
      const r2 = await c.setPermissions({ permissions: { filesystem: { blocked: [] } } });
      assert.equal(r2.success, false);
      assert.match((r2 as { error: string }).error, /must keep .*\.ssh/);
      const r3 = await c.setPermissions({ permissions: { can_think: false } });
      assert.ok(r3.success, "dropping a right is lowering");
    });
    await t.step("a record read with GET_PERMS can be sent back unchanged", async () => {
      const c = await k.client();
      assert.ok((await c.setPermissions({ level: "sandboxed" })).success);
      const g = await c.getPermissions();
      assert.ok(g.success);
      const s = await c.setPermissions({ permissions: g.permissions });
      assert.ok(s.success, JSON.stringify(s));
      assert.deepEqual(s.permissions, g.permissions);
      const cli = await runCli([
        "perms",
        "--socket",
        k.socket,
        "--permissions",
        '{"can_http": false, "network": ["*.example.com"]}',
        "--json",
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout).permissions.network, ["*.example.com"]);
    });
    await t.step("usage counters cannot be set", async () => {
      const c = await k.client();
      const r = await c.setPermissions({ permissions: { llm: { tokens_used: 0, calls_made: 5 } } });
      assert.equal(r.success, false);
      assert.equal((r as { code: string }).code, "PERMISSION_DENIED");
      assert.match((r as { error: string }).error, /calls_made/);
      const same = await c.setPermissions({
        permissions: { llm: { tokens_used: 0, calls_made: 0, max_calls: 10 } },
      });
      assert.ok(same.success, "sending the counters back unchanged is fine");
      assert.equal(same.permissions.llm.max_calls, 10);
      const unlimited = await c.setPermissions({ permissions: { llm: { max_calls: null } } });
      assert.equal(unlimited.success, false, "lifting one's own quota is raising");
    });
    await t.step("bad SET_PERMS payloads are INVALID_MSG", async () => {
      const c = await k.client();
      for (
        const bad of [
          {},
          { level: "root" },
          { permissions: { filesystem: { read: ["relative/path"] } } },
          { permissions: { unknown: true } },
          { agent_id: -1, level: "minimal" },
          { level: "readonly", permissions: { level: "minimal" } },
        ]
      ) {
        const r = await c.request("SET_PERMS", bad as never);
        assert.equal(r.success, false);
        assert.equal((r as { code: string }).code, "INVALID_MSG", JSON.stringify(bad));
      }
      const missing = await c.setPermissions({ agentId: 999_999, level: "minimal" });
      assert.equal((missing as { code: string }).code, "NOT_FOUND");
    });
    await t.step("CLI: agentos perms shows and sets", async () => {
      const shown = await runCli(["perms", "--socket", k.socket, "--json"]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.stdout).permissions.level, "unrestricted");
      const human = await runCli(["perms", "--socket", k.socket]);
      assert.match(human.stdout, /level: +unrestricted/);
      assert.match(human.stdout, /\.ssh/);
      const set = await runCli(["perms", "--socket", k.socket, "--level", "sandboxed"]);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /level: +sandboxed/);
      assert.match(set.stdout, /enforcement: +kernel-checks/);
      const usage = await runCli(["perms", "--socket", k.socket, "--level", "root"]);
      assert.equal(usage.code, 2);
      const other = await runCli([
        "perms",
        "--socket",
        k.socket,
        "--agent",
        String(otherId),
        "--json",
      ]);
      assert.equal(other.code, 0, other.stderr);
      assert.equal(JSON.parse(other.stdout).agent_id, otherId);
    });
  } finally {
    await k.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--client-level readonly: clients start readonly and cannot raise themselves", async () => {
  const k = await startKernel({ args: ["--client-level", "readonly"] });
  try {
    const c = await k.client();
    const g = await c.getPermissions();
    assert.ok(g.success);
    assert.equal(g.permissions.level, "readonly");
    assert.equal(g.permissions.can_write, false);
    const up = await c.setPermissions({ level: "standard" });
    assert.equal((up as { code: string }).code, "PERMISSION_DENIED");
    const w = await c.writeFile("/tmp/never-written-by-agentos-test", "x");
    assert.equal((w as { code: string }).code, "PERMISSION_DENIED");
    const cli = await runCli(["perms", "--socket", k.socket, "--level", "unrestricted"]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /Permission denied/);
    assert.match(k.logs(), /client_level=readonly/);
  } finally {
    await k.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Descendant rules: a real Kernel object and the real dispatcher, with a spawn tree built in
// its identity table (SPAWN itself belongs to the agents issue).

interface Tree {
  kernel: Kernel;
  root: Identity;
  parent: Identity;
  child: Identity;
  grandchild: Identity;
  stranger: Identity;
  blocked: { identityId: number; op: string; reason: string }[];
  call(
    who: Identity,
    op: "GET_PERMS" | "SET_PERMS",
    input: unknown,
  ): Promise<Record<string, unknown>>;
  dir: string;
}

async function tree(): Promise<Tree> {
  const dir = await Deno.makeTempDir({ prefix: "aostree" });
  const kernel = new Kernel(
    { socket: join(dir, "k.sock"), stateDir: join(dir, "state"), logLevel: "error" },
    allSyscalls,
  );
  const table = buildDispatchTable(allSyscalls);
  const ids = kernel.identities;
  const root = ids.create({ kind: "client", level: "unrestricted" });
  const parent = ids.create({ kind: "agent", level: "standard", parentId: root.id });
  const child = ids.create({ kind: "agent", level: "sandboxed", parentId: parent.id });
  const grandchild = ids.create({ kind: "agent", level: "sandboxed", parentId: child.id });
  const stranger = ids.create({ kind: "agent", level: "sandboxed", parentId: root.id });
  const blocked: Tree["blocked"] = [];
  kernel.bus.on("syscall.blocked", (e) => blocked.push(e));
  const call: Tree["call"] = async (who, op, input) => {
    const frame = await dispatch(table, kernel, {
      op: Op[op],
      agentId: 0,
      payload: new TextEncoder().encode(JSON.stringify(input)),
    }, { connectionId: 1, identity: who, signal: new AbortController().signal });
    return JSON.parse(new TextDecoder().decode(frame.subarray(HEADER_LEN)));
  };
  return { kernel, root, parent, child, grandchild, stranger, blocked, call, dir };
}

Deno.test("SET_PERMS / GET_PERMS descendant rules", async (t) => {
  const tr = await tree();
  const { root, parent, child, grandchild, stranger, call } = tr;
  const denied = async (p: () => Promise<Record<string, unknown>>, text?: RegExp) => {
    const before = tr.blocked.length;
    const r = await p();
    assert.equal(r.success, false, JSON.stringify(r));
    assert.equal(r.code, "PERMISSION_DENIED");
    assert.match(String(r.error), /^Permission denied/);
    if (text) assert.match(String(r.error), text);
    assert.equal(tr.blocked.length, before + 1, "a syscall.blocked event was published");
    assert.match(tr.blocked.at(-1)!.reason, /^Permission denied/);
    return r;
  };
  try {
    await t.step("an unrestricted caller grants can_spawn to a standard agent", async () => {
      const r = await call(root, "SET_PERMS", {
        agent_id: parent.id,
        permissions: { can_spawn: true },
      });
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(r.enforcement, "kernel-checks-only until restart");
      assert.match(String(r.note), /Deno flags of the running process are not changed/);
      assert.equal(parent.permissions.can_spawn, true);
    });
    await t.step("raising oneself is refused", async () => {
      await denied(() => call(child, "SET_PERMS", { level: "standard" }), /above/);
      await denied(() => call(child, "SET_PERMS", { permissions: { can_http: true } }), /can_http/);
      await denied(
        () => call(child, "SET_PERMS", { permissions: { filesystem: { read: ["/"] } } }),
        /filesystem.read/,
      );
      await denied(
        () =>
          call(parent, "SET_PERMS", { permissions: { can_spawn: true, level: "unrestricted" } }),
      );
      assert.equal(child.permissions.level, "sandboxed");
    });
    await t.step("touching a non-descendant is refused", async () => {
      await denied(
        () => call(parent, "SET_PERMS", { agent_id: stranger.id, level: "minimal" }),
        /descendant/,
      );
      await denied(() => call(parent, "SET_PERMS", { agent_id: root.id, level: "minimal" }));
      await denied(() => call(child, "SET_PERMS", { agent_id: parent.id, level: "minimal" }));
      await denied(() => call(stranger, "SET_PERMS", { agent_id: child.id, level: "minimal" }));
      // a descendant, but the caller lacks can_spawn
      await denied(
        () => call(child, "SET_PERMS", { agent_id: grandchild.id, level: "minimal" }),
        /can_spawn/,
      );
      assert.equal(stranger.permissions.level, "sandboxed");
      assert.equal(grandchild.permissions.level, "sandboxed");
    });
    await t.step("a can_spawn caller sets its descendants at or below its own level", async () => {
      const r = await call(parent, "SET_PERMS", { agent_id: grandchild.id, level: "standard" });
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(grandchild.permissions.level, "standard");
      assert.equal(r.enforcement, "kernel-checks-only until restart");
      const net = await call(parent, "SET_PERMS", {
        agent_id: child.id,
        permissions: { can_http: true, network: ["*.example.com"] },
      });
      assert.equal(net.success, true, JSON.stringify(net));
      await denied(() => call(parent, "SET_PERMS", { agent_id: child.id, level: "unrestricted" }));
      await denied(
        () =>
          call(parent, "SET_PERMS", {
            agent_id: child.id,
            permissions: { filesystem: { blocked: [] } },
          }),
        /must keep/,
      );
      const allowed = await call(parent, "SET_PERMS", {
        agent_id: child.id,
        permissions: { can_spawn: true, llm: { max_tokens: null }, exec: ["*"] },
      });
      assert.equal(allowed.success, true, "everything the parent holds may be given");
      await denied(
        () =>
          call(parent, "SET_PERMS", {
            agent_id: child.id,
            permissions: { max_exec_time_ms: 700_000 },
          }),
        /max_exec_time_ms/,
      );
    });
    await t.step("lowering oneself works (kernel checks only, for a running agent)", async () => {
      const r = await call(child, "SET_PERMS", { level: "readonly" });
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(child.permissions.level, "readonly");
      assert.deepEqual(child.permissions.filesystem.read, [child.workspace], "narrowed to its own");
      assert.equal(r.enforcement, "kernel-checks-only until restart");
      const r2 = await call(child, "SET_PERMS", { level: "minimal" });
      assert.equal(r2.success, true);
      assert.deepEqual(r2.narrowed, [grandchild.id], "its standard child was narrowed with it");
      assert.equal(grandchild.permissions.level, "minimal");
      await denied(() => call(child, "SET_PERMS", { level: "readonly" }), /above/);
    });
    await t.step("an unrestricted caller may set anyone, up to its own level", async () => {
      const r = await call(root, "SET_PERMS", { agent_id: stranger.id, level: "standard" });
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(stranger.permissions.level, "standard");
      const r2 = await call(root, "SET_PERMS", { agent_id: child.id, level: "unrestricted" });
      assert.equal(r2.success, true);
      const r3 = await call(root, "SET_PERMS", {
        agent_id: stranger.id,
        permissions: { filesystem: { blocked: [] } },
      });
      assert.equal(r3.success, false, "not even unrestricted may drop the kernel's blocked paths");
    });
    await t.step("lowering an identity narrows its descendants to stay within it", async () => {
      assert.equal(child.permissions.level, "unrestricted");
      assert.equal(
        (await call(root, "SET_PERMS", { agent_id: grandchild.id, level: "standard" })).success,
        true,
      );
      const r = await call(root, "SET_PERMS", { agent_id: parent.id, level: "readonly" });
      assert.equal(r.success, true, JSON.stringify(r));
      assert.deepEqual((r.narrowed as number[]).sort(), [child.id, grandchild.id].sort());
      assert.equal(child.permissions.level, "readonly");
      assert.equal(child.permissions.can_write, false);
      assert.equal(grandchild.permissions.level, "readonly");
      // Within the parent's record, plus each child's own workspace (its own to keep).
      assert.ok(
        withinBounds(child.permissions, withOwnWorkspace(parent.permissions, child.workspace)),
      );
      assert.ok(
        withinBounds(
          grandchild.permissions,
          withOwnWorkspace(child.permissions, grandchild.workspace),
        ),
      );
      assert.ok(!child.permissions.filesystem.write.some((w) => w !== child.workspace));
      assert.equal(stranger.permissions.level, "standard", "others are untouched");
    });
    await t.step("GET_PERMS: own, ancestors and unrestricted only", async () => {
      const own = await call(stranger, "GET_PERMS", {});
      assert.equal(own.agent_id, stranger.id);
      assert.equal((await call(parent, "GET_PERMS", { agent_id: grandchild.id })).success, true);
      assert.equal((await call(root, "GET_PERMS", { agent_id: grandchild.id })).success, true);
      await denied(() => call(grandchild, "GET_PERMS", { agent_id: parent.id }));
      await denied(() => call(stranger, "GET_PERMS", { agent_id: child.id }));
      const r = await call(root, "GET_PERMS", { agent_id: 424242 });
      assert.equal(r.code, "NOT_FOUND");
    });
  } finally {
    await Deno.remove(tr.dir, { recursive: true });
  }
});
