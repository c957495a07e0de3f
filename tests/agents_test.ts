/**
 * Agents as real Deno subprocesses: SPAWN, LIST, KILL, identity over the private socket,
 * lifecycle, restarts, limits, logs, and no orphans.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKernel } from "./helpers/kernel.ts";
import { isKernelError } from "../sdk/mod.ts";
import { processTree } from "../kernel/agent_runtime.ts";
import { alive, listAgents, readLog, spawnOk, waitFor, waitState } from "./helpers/agents.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "SPAWN runs an inline agent that imports the SDK and talks as its own identity",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const r = await spawnOk(c, {
        name: "hello",
        args: ["a1"],
        env: { TASK: "t-42" },
        script: `import { connect } from "agentos";
await using os = await connect();
const s = await os.status();
if (s.success === false) throw new Error(s.error);
console.log("RESULT " + JSON.stringify({ id: s.agent_id, level: s.level, args: Deno.args,
  task: Deno.env.get("TASK"), envName: Deno.env.get("AGENTOS_AGENT_NAME"),
  home: (() => { try { return Deno.env.get("HOME"); } catch (e) { return e.name; } })(),
  cwd: Deno.cwd() }));`,
      });
      assert.equal(r.name, "hello");
      assert.equal(r.level, "sandboxed");
      assert.equal(r.agent_id, r.id);
      assert.ok(r.pid > 0);
      const row = await waitState(c, r.id, ["exited", "failed"]);
      const log = await readLog(k.stateDir, "hello");
      assert.equal(row.state, "exited", log);
      assert.equal(row.exit_code, 0);
      assert.equal(row.parent_id !== null, true);
      const result = JSON.parse(log.split("RESULT ")[1].split("\n")[0]);
      assert.equal(result.id, r.id, "the agent's connections carry its SPAWN id");
      assert.equal(result.level, "sandboxed");
      assert.deepEqual(result.args, ["a1"]);
      assert.equal(result.task, "t-42");
      assert.equal(result.envName, "hello");
      const ws = join(k.stateDir, "workspaces", "hello");
      assert.equal(result.home, "NotCapable", "env beyond AGENTOS_* and the spawn's env is denied");
      assert.equal(result.cwd, ws);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "SPAWN validation: names, levels, env, limits, missing right",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const long = "setInterval(() => {}, 1000);";
      const a = await spawnOk(c, { name: "dup", script: long });
      const dup = await c.spawn({ name: "dup", script: long });
      assert.ok(isKernelError(dup) && /taken/.test(dup.error));
      const gen = await spawnOk(c, { script: long });
      assert.match(gen.name, /^agent-\d+$/);
      const std = await spawnOk(c, { script: long, sandboxed: false });
      assert.equal(std.level, "standard");
      for (
        const [payload, code, re] of [
          [{ name: "../x", script: long }, "INVALID_MSG", /name/],
          [{ script: long, env: { LD_PRELOAD: "/x.so" } }, "INVALID_MSG", /LD_PRELOAD/],
          [{ script: long, env: { AGENTOS_SOCKET: "/x" } }, "INVALID_MSG", /AGENTOS_SOCKET/],
          [{ script: long, limits: { memory_mb: 8 } }, "INVALID_MSG", /footprint/],
          [{ script: long, level: "unrestricted", limits: { pids: 4 } }, "ERROR", /pids/],
          [{ script: long, limits: { bogus: 1 } }, "INVALID_MSG", /bogus|limits/],
          [{ script: long, level: "minimal", network: true }, "PERMISSION_DENIED", /network/],
          [{ script: long, level: "root" }, "INVALID_MSG", /level/],
          [{ script: "./no/such/worker.ts" }, "NOT_FOUND", /does not exist/],
          [{ script: "/etc/shadow.ts" }, "NOT_FOUND", /does not exist/],
        ] as const
      ) {
        const r = await c.call("SPAWN", payload);
        const body = JSON.parse(new TextDecoder().decode(r.payload));
        assert.equal(body.success, false, JSON.stringify(payload));
        assert.equal(body.code, code, body.error);
        assert.match(body.error, re);
      }
      // A sandboxed agent has no can_spawn: its SPAWN is refused.
      const child = await spawnOk(c, {
        name: "nospawn",
        script: `import { connect } from "agentos";
await using os = await connect();
const r = await os.spawn({ script: "1" });
console.log("RESULT " + JSON.stringify(r));`,
      });
      await waitState(c, child.id, ["exited", "failed"]);
      const log = await readLog(k.stateDir, "nospawn");
      assert.match(log, /"code":"PERMISSION_DENIED"/);
      assert.match(log, /can_spawn/);
      const all = await listAgents(c);
      assert.ok(all.some((x) => x.id === a.id && x.state === "running"));
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name:
    "levels: a child above its parent's level is refused; KILL ends grandchildren; only ancestors may kill",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const parent = await spawnOk(c, {
        name: "parent",
        level: "standard",
        can_spawn: true,
        args: [join(k.stateDir, "sdk", "sdk", "mod.ts")],
        script: `import { connect } from "agentos";
const os = await connect();
const up = await os.spawn({ name: "too-high", level: "unrestricted", script: "1" });
const unreadable = await os.spawn({ name: "kernel-file", level: "sandboxed", script: Deno.args[0] });
const ok = await os.spawn({ name: "grandchild", level: "sandboxed",
  script: "setInterval(() => {}, 1000);" });
console.log("RESULT " + JSON.stringify({ up, ok, unreadable }));
setInterval(() => {}, 1000);`,
      });
      const log = await waitFor(
        async () => {
          const t = await readLog(k.stateDir, "parent");
          return t.includes("RESULT ") ? t : "";
        },
        20_000,
        "parent result",
      );
      const result = JSON.parse(log.split("RESULT ")[1].split("\n")[0]);
      assert.equal(result.up.success, false);
      assert.equal(result.up.code, "PERMISSION_DENIED");
      assert.match(result.up.error, /^Permission denied: .*above your own level standard/);
      assert.equal(result.ok.success, true);
      assert.equal(result.unreadable.code, "PERMISSION_DENIED", "a script in the kernel's files");
      const gc = result.ok;
      const rows = await listAgents(c);
      assert.equal(rows.find((r) => r.id === gc.id)?.parent_id, parent.id);
      assert.equal(rows.some((r) => r.name === "too-high"), false);

      // A sandboxed sibling may not kill what it did not spawn.
      const other = await spawnOk(c, {
        name: "other",
        script: `import { connect } from "agentos";
await using os = await connect();
console.log("RESULT " + JSON.stringify(await os.kill({ name: "grandchild" })));`,
      });
      await waitState(c, other.id, ["exited", "failed"]);
      assert.match(await readLog(k.stateDir, "other"), /"code":"PERMISSION_DENIED"/);
      assert.ok(alive(gc.pid));

      const killed = await c.kill({ name: "parent" });
      assert.ok(!isKernelError(killed) && killed.killed && killed.agent_id === parent.id);
      await waitFor(() => !alive(parent.pid) && !alive(gc.pid), 10_000, "both gone");
      const after = await listAgents(c);
      assert.equal(after.find((r) => r.id === parent.id)?.state, "killed");
      assert.equal(after.find((r) => r.id === gc.id)?.state, "killed");
      const missing = await c.kill({ name: "nobody" });
      assert.ok(isKernelError(missing) && missing.code === "NOT_FOUND");
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "KILL escalates to SIGKILL for an agent that ignores SIGTERM",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const a = await spawnOk(c, {
        name: "stubborn",
        level: "unrestricted",
        script: `Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));
const sub = new Deno.Command("sleep", { args: ["300"] }).spawn();
console.log("SUB " + sub.pid);
setInterval(() => {}, 1000);`,
      });
      await waitFor(async () => (await readLog(k.stateDir, "stubborn")).includes("SUB "));
      // The agent runs in its own pid namespace: find its subprocess from the host's side.
      const tree = await waitFor(() => {
        const t = processTree(a.pid);
        return t.some((p) => {
            try {
              return Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("sleep\u0000300");
            } catch {
              return false;
            }
          })
          ? t
          : null;
      });
      assert.ok(tree.every(alive));
      const t0 = Date.now();
      const r = await c.kill({ id: a.id });
      assert.ok(!isKernelError(r) && r.killed);
      assert.ok(Date.now() - t0 >= 1500, "waited for the grace period");
      await waitFor(() => !tree.some(alive), 5000, "process group gone");
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name:
    "restart on-failure keeps the id and gives up after max_restarts; always restarts clean exits",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const r = await spawnOk(c, {
        name: "crashy",
        script: `import { connect } from "agentos";
await using os = await connect();
const s = await os.status();
console.log("ID " + (s.success ? s.agent_id : "?"));
Deno.exit(3);`,
        restart_policy: "on-failure",
        max_restarts: 2,
        restart_window: 60_000,
      });
      const row = await waitState(c, r.id, ["failed"], 30_000);
      assert.equal(row.restarts, 2);
      assert.equal(row.exit_code, 3);
      assert.match(row.exit_reason ?? "", /gave up after 2 restarts/);
      const log = await readLog(k.stateDir, "crashy");
      assert.equal(log.match(new RegExp(`ID ${r.id}\\b`, "g"))?.length, 3, log);

      const ok = await spawnOk(c, {
        name: "clean",
        script: "console.log('run');",
        restart_policy: "on-failure",
        max_restarts: 3,
      });
      const okRow = await waitState(c, ok.id, ["exited"]);
      assert.equal(okRow.restarts, 0);

      const always = await spawnOk(c, {
        name: "always",
        script: "console.log('run');",
        restart_policy: "always",
        max_restarts: 1,
      });
      const alwaysRow = await waitState(c, always.id, ["exited"]);
      assert.equal(alwaysRow.restarts, 1);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "limits: memory hog, cpu hog and wall timeout are killed with their reason recorded",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const hog = await spawnOk(c, {
        name: "hog",
        limits: { memory_mb: 96 },
        script: `const keep = [];
for (;;) { keep.push(new Uint8Array(4 * 1024 * 1024).fill(1)); await new Promise((r) => setTimeout(r, 5)); }`,
      });
      const spin = await spawnOk(c, {
        name: "spin",
        limits: { cpu_time_ms: 700 },
        script: "for (;;) {}",
      });
      const slow = await spawnOk(c, {
        name: "slow",
        limits: { timeout_ms: 800 },
        script: "setInterval(() => {}, 1000);",
      });
      const h = await waitState(c, hog.id, ["failed"]);
      assert.match(h.exit_reason ?? "", /^memory limit 96 MiB exceeded \(rss [\d.]+ MiB\)$/);
      const s = await waitState(c, spin.id, ["failed"]);
      assert.match(s.exit_reason ?? "", /^cpu time limit 700 ms exceeded/);
      const t = await waitState(c, slow.id, ["failed"]);
      assert.match(t.exit_reason ?? "", /^timeout of 800 ms reached/);
      assert.match(await readLog(k.stateDir, "hog"), /memory limit 96 MiB exceeded/);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "logs: stdout and stderr go to the agent's log file, rotated at the cap",
  ...opts,
  async fn() {
    const k = await startKernel({ args: ["--agent-log-max", String(1024 * 1024)] });
    try {
      const c = await k.client();
      const a = await spawnOk(c, {
        name: "talker",
        script: `console.log("to stdout"); console.error("to stderr");
const line = "x".repeat(1023) + "\\n";
for (let i = 0; i < 1536; i++) await Deno.stdout.write(new TextEncoder().encode(line));`,
      });
      await waitState(c, a.id, ["exited", "failed"]);
      const log = await readLog(k.stateDir, "talker");
      const rotated = await Deno.readTextFile(join(k.stateDir, "logs", "talker.log.1"));
      assert.match(rotated + log, /to stdout/);
      assert.match(rotated + log, /to stderr/);
      // 1.5 MiB written with a 1 MiB cap: the live file and one rotation stay under the cap.
      assert.ok(log.length <= 1024 * 1024 && rotated.length <= 1024 * 1024);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "no orphans: a clean stop and a SIGKILLed kernel both end every agent",
  ...opts,
  async fn() {
    for (const how of ["stop", "kill"] as const) {
      const k = await startKernel();
      const pids: number[] = [];
      try {
        const c = await k.client();
        for (const level of ["sandboxed", "standard", "unrestricted"] as const) {
          const r = await spawnOk(c, {
            name: `busy-${level}`,
            level,
            // A busy loop never notices its socket closing: the OS must end it. The
            // unrestricted one also starts a process of its own, which must end too.
            script: level === "unrestricted"
              ? `new Deno.Command("sleep", { args: ["300"] }).spawn(); console.log("SUB"); for (;;) {}`
              : "for (;;) {}",
          });
          pids.push(r.pid);
        }
        await waitFor(async () => (await readLog(k.stateDir, "busy-unrestricted")).includes("SUB"));
        await new Promise((r) => setTimeout(r, 300));
        const tree = pids.flatMap((p) => processTree(p));
        assert.ok(tree.length >= pids.length + 1, `the subprocess is in the tree: ${tree}`);
        pids.splice(0, pids.length, ...tree);
        assert.ok(pids.every(alive));
      } finally {
        if (how === "stop") await k.stop();
        else await k.kill();
      }
      await waitFor(() => pids.every((p) => !alive(p)), 10_000, `agents gone after ${how}`);
    }
  },
});

Deno.test({
  name: "50 agents spawned at once all run and are listed",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          c.spawn({
            name: `many-${i}`,
            script: `import { connect } from "agentos";
await using os = await connect();
await os.echo("up");
console.log("UP");
setInterval(() => {}, 1000);`,
          })),
      );
      for (const r of results) assert.ok(!isKernelError(r), JSON.stringify(r));
      await waitFor(
        async () => {
          const logs = await Promise.all(
            results.map((_, i) => readLog(k.stateDir, `many-${i}`)),
          );
          return logs.every((l) => l.includes("UP"));
        },
        120_000,
        "all 50 agents to call the kernel",
      );
      const rows = await listAgents(c);
      const many = rows.filter((r) => r.name.startsWith("many-"));
      assert.equal(many.length, 50);
      assert.ok(many.every((r) => r.state === "running"));
    } finally {
      await k.stop();
    }
  },
});
