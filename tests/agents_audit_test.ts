/**
 * Security audit of the agents capability: the shared path checker for SPAWN scripts, the
 * shared name rule, workspaces that belong to someone else, timer limits, LIST scoping, the
 * SDK copy's integrity, and SET_PERMS reaching a restarted agent's Deno flags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKernel } from "./helpers/kernel.ts";
import { listAgents, readLog, spawnOk, waitFor, waitState } from "./helpers/agents.ts";
import { AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { Kernel } from "../kernel/kernel.ts";
import { Logger } from "../kernel/log.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { MAX_BLOCKED_EVENTS_PER_SECOND } from "../kernel/agents.ts";
import { which } from "../sandbox/which.ts";
import { startFakeAnthropic } from "./helpers/fake_anthropic.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const hasBwrap = which("bwrap") !== null;
if (!hasBwrap) console.log("bwrap is not installed: skipping the OS-layer symlink test");
const IDLE = "setInterval(() => {}, 1000);";
/** Keep the real module cache when a test fakes HOME. */
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

/** The first `RESULT {...}` line of agent `name`'s log, parsed. */
async function result(stateDir: string, name: string): Promise<Record<string, unknown>> {
  const log = await waitFor(
    async () => {
      const t = await readLog(stateDir, name);
      return t.includes("RESULT ") ? t : "";
    },
    30_000,
    `${name}'s result`,
  );
  return JSON.parse(log.split("RESULT ")[1].split("\n")[0]);
}

Deno.test({
  name: "SPAWN checks a script path with the shared path checker (symlinked blocked paths too)",
  ...opts,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aosaud" }));
    const home = join(dir, "home");
    const keys = join(dir, "keys");
    await Deno.mkdir(home);
    await Deno.mkdir(keys);
    // The user's ~/.ssh is a symlink to where the keys really live.
    await Deno.symlink(keys, join(home, ".ssh"));
    await Deno.writeTextFile(join(keys, "id_rsa"), "SECRET KEY");
    await Deno.writeTextFile(join(keys, "evil.ts"), "console.log('EVIL RAN');");
    const k = await startKernel({ dir, env: { HOME: home, DENO_DIR } });
    try {
      const c = await k.client();
      await spawnOk(c, {
        name: "prober",
        level: "standard",
        can_spawn: true,
        args: [keys],
        script: `import { connect } from "agentos";
await using os = await connect();
const keys = Deno.args[0];
const spawn = await os.spawn({ name: "evil", level: "sandboxed", script: keys + "/evil.ts" });
const read = await os.readFile(keys + "/id_rsa");
let direct;
try { direct = Deno.readTextFileSync(keys + "/id_rsa"); } catch (e) { direct = e.name; }
console.log("RESULT " + JSON.stringify({ spawn, read, direct }));`,
      });
      const r = await result(k.stateDir, "prober") as Record<string, Record<string, string>>;
      assert.equal(r.spawn.code, "PERMISSION_DENIED", JSON.stringify(r.spawn));
      assert.match(r.spawn.error, /^Permission denied: cannot spawn .*blocked path/);
      assert.equal(r.read.code, "PERMISSION_DENIED", "READ agrees with SPAWN");
      assert.notEqual(r.direct, "SECRET KEY", "the Deno flags deny the symlink's target too");
      assert.equal((await listAgents(c)).some((a) => a.name === "evil"), false);
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "SPAWN names: the REGISTER rule, no client workspaces; timeouts a timer can hold",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      for (
        const [payload, code, re] of [
          [{ name: "123", script: IDLE }, "INVALID_MSG", /purely numeric/],
          [{ name: "client-1-abc", script: IDLE }, "INVALID_MSG", /reserved for clients/],
          [{ name: "a/b", script: IDLE }, "INVALID_MSG", /letters, digits/],
          [{ script: IDLE, args: ["a\u0000b"] }, "INVALID_MSG", /NUL/],
          // Deno's fetch goes through a proxy without checking the proxy's host.
          [{ script: IDLE, env: { HTTPS_PROXY: "http://10.0.0.1:3128" } }, "INVALID_MSG", /PROXY/],
          [{ script: IDLE, env: { http_proxy: "http://10.0.0.1:3128" } }, "INVALID_MSG", /proxy/],
          [{ script: IDLE, env: { GCONV_PATH: "/tmp" } }, "INVALID_MSG", /GCONV_PATH/],
          [{ script: IDLE, env: { X: "a\u0000b" } }, "INVALID_MSG", /NUL/],
          // Longer than a timer can hold: it would fire at once and kill the agent.
          [{ script: IDLE, limits: { timeout_ms: 2_500_000_000 } }, "INVALID_MSG", /timeout_ms/],
        ] as const
      ) {
        const body = JSON.parse(new TextDecoder().decode((await c.call("SPAWN", payload)).payload));
        assert.equal(body.success, false, JSON.stringify(payload));
        assert.equal(body.code, code, body.error);
        assert.match(body.error, re);
      }
      // A timeout as long as a timer holds is accepted and does not fire at once.
      const long = await spawnOk(c, {
        name: "long",
        script: IDLE,
        limits: { timeout_ms: 2 ** 31 - 1 },
      });
      const rows = await listAgents(c);
      assert.equal(rows.find((a) => a.id === long.id)?.state, "running");
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "LIST shows a non-unrestricted caller only itself and its descendants",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      await spawnOk(c, { name: "stranger", script: IDLE });
      await spawnOk(c, {
        name: "lister",
        level: "standard",
        can_spawn: true,
        script: `import { connect } from "agentos";
await using os = await connect();
const kid = await os.spawn({ name: "kid", script: \`import { connect } from "agentos";
await using os = await connect();
const l = await os.listAgents();
console.log("RESULT " + JSON.stringify(l.map((a) => a.name).sort()));
setInterval(() => {}, 1000);\` });
const l = await os.listAgents();
console.log("RESULT " + JSON.stringify({ kid: kid.success, names: l.map((a) => a.name).sort() }));
setInterval(() => {}, 1000);`,
      });
      const mine = await result(k.stateDir, "lister");
      assert.deepEqual(mine, { kid: true, names: ["kid", "lister"] });
      assert.deepEqual(await result(k.stateDir, "kid"), ["kid"]);
      const all = (await listAgents(c)).map((a) => a.name).sort();
      assert.deepEqual(all, ["kid", "lister", "stranger"], "an unrestricted client sees all");
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "the agents' SDK copy: no agent can change it; the kernel restores a changed one",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const mod = join(k.stateDir, "sdk", "sdk", "mod.ts");
      const original = await Deno.readTextFile(mod);
      await spawnOk(c, {
        name: "tamper",
        level: "standard",
        args: [mod],
        script: `import { connect } from "agentos";
await using os = await connect();
const f = Deno.args[0];
const write = await os.writeFile(f, "export const pwned = 1;");
const append = await os.writeFile(f, "\\nexport const pwned = 1;", { mode: "append" });
const exec = await os.exec("echo 'export const pwned = 1;' >> " + f + "; echo done");
let direct;
try { Deno.writeTextFileSync(f, "x", { append: true }); direct = "wrote"; } catch (e) { direct = e.name; }
console.log("RESULT " + JSON.stringify({ write, append, exec, direct }));`,
      });
      const r = await result(k.stateDir, "tamper") as Record<string, Record<string, string>>;
      assert.equal(r.write.code, "PERMISSION_DENIED", JSON.stringify(r.write));
      assert.equal(r.append.code, "PERMISSION_DENIED", JSON.stringify(r.append));
      assert.notEqual(r.direct, "wrote");
      assert.equal(
        await Deno.readTextFile(mod),
        original,
        `unchanged (exec: ${JSON.stringify(r.exec)})`,
      );
      // Someone with the kernel user's rights changes it: the next SPAWN restores it.
      await Deno.chmod(mod, 0o644);
      await Deno.writeTextFile(mod, "throw new Error('tampered SDK');");
      const ok = await spawnOk(c, {
        name: "after",
        script: `import { connect } from "agentos";
await using os = await connect();
console.log("RESULT " + JSON.stringify(await os.echo("fine")));`,
      });
      assert.equal(await result(k.stateDir, "after"), "fine");
      await waitState(c, ok.id, ["exited"]);
      assert.equal(await Deno.readTextFile(mod), original);
      assert.match(await k.logs(), /SDK copy was modified/);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "SET_PERMS lowering a running agent reaches its Deno flags when it restarts",
  ...opts,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aosaud" }));
    const outside = join(dir, "outside");
    await Deno.mkdir(outside);
    const k = await startKernel({ dir });
    try {
      const c = await k.client();
      const a = await spawnOk(c, {
        name: "lowered",
        level: "standard",
        restart_policy: "on-failure",
        max_restarts: 1,
        args: [outside],
        script: `import { connect } from "agentos";
const os = await connect();
const f = Deno.args[0] + "/run-" + Date.now() + ".txt";
let wrote;
try { Deno.writeTextFileSync(f, "x"); wrote = true; } catch (e) { wrote = e.name; }
let read;
try { read = Deno.readTextFileSync("/etc/hostname").length > 0; } catch (e) { read = e.name; }
console.log("RUN " + JSON.stringify({ wrote, read }));
for (;;) {
  const p = await os.getPermissions();
  if (p.success && p.permissions.level !== "standard") break;
  await new Promise((r) => setTimeout(r, 50));
}
Deno.exit(1);`,
      });
      await waitFor(async () => (await readLog(k.stateDir, "lowered")).includes("RUN "));
      const set = await c.setPermissions({ agentId: a.id, level: "sandboxed" });
      assert.ok(!isKernelError(set), JSON.stringify(set));
      assert.equal(set.enforcement, "kernel-checks-only until restart");
      const row = await waitState(c, a.id, ["failed"]);
      assert.equal(row.restarts, 1);
      assert.equal(row.level, "sandboxed", "LIST shows the record in force");
      const runs = (await readLog(k.stateDir, "lowered")).split("\n").filter((l) =>
        l.startsWith("RUN ")
      ).map((l) => JSON.parse(l.slice(4)));
      assert.deepEqual(runs, [
        { wrote: true, read: true },
        { wrote: "NotCapable", read: "NotCapable" },
      ]);
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "OS layer: a symlink in the workspace reaches no further than the level",
  ignore: !hasBwrap,
  ...opts,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aosaud" }));
    const victim = join(dir, "victim");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(join(victim, "private.txt"), "PRIVATE");
    const k = await startKernel({ dir });
    try {
      const c = await k.client();
      const script = `const out = {};
try { Deno.writeTextFileSync("link/" + Deno.env.get("AGENTOS_AGENT_NAME"), "x"); out.write = true; } catch (e) { out.write = e.name; }
try { out.read = Deno.readTextFileSync("link/private.txt") === "PRIVATE"; } catch (e) { out.read = e.name; }
try { out.etc = Deno.readTextFileSync("etc-link").length > 0; } catch (e) { out.etc = e.name; }
console.log("RESULT " + JSON.stringify(out));`;
      const want: Record<string, { read: boolean; write: boolean }> = {
        sandboxed: { read: false, write: false },
        minimal: { read: false, write: false },
        readonly: { read: true, write: false },
        standard: { read: true, write: true },
      };
      // A file of /etc that is not blocked (host keys would be the real prize).
      const etcFile = "/etc/hostname";
      for (const [level, expected] of Object.entries(want)) {
        const name = `link-${level}`;
        // Someone (e.g. the agent's own EXEC: `ln -s /elsewhere link`) left a link to a
        // directory outside the workspace, which Deno's checks do not resolve.
        const ws = join(k.stateDir, "workspaces", name);
        await Deno.mkdir(ws, { recursive: true });
        await Deno.symlink(victim, join(ws, "link"));
        await Deno.symlink(etcFile, join(ws, "etc-link"));
        await spawnOk(c, { name, level: level as "standard", script });
        const got = await result(k.stateDir, name);
        assert.equal(got.read === true, expected.read, `${level} read: ${JSON.stringify(got)}`);
        assert.equal(got.write === true, expected.write, `${level} write: ${JSON.stringify(got)}`);
        assert.equal(got.etc === true, expected.read, `${level} /etc: ${JSON.stringify(got)}`);
        const written = await Deno.stat(join(victim, name)).then(() => true, () => false);
        assert.equal(written, expected.write, `${level}: file written through the link`);
      }
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "an agent's refused permission checks are published as syscall.blocked events",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aosaud" });
    const kernel = new Kernel(
      { socket: join(dir, "k.sock"), stateDir: join(dir, "state") },
      allSyscalls,
      new Logger("error", "text"),
    );
    let client: AgentOSClient | null = null;
    const fifos: string[] = [];
    try {
      await kernel.start();
      const events: { identityId: number; op: string; reason: string }[] = [];
      kernel.bus.on("syscall.blocked", (e) => events.push(e));
      client = await AgentOSClient.connect({ socket: kernel.config.socket });
      const c = client;
      const a = await spawnOk(c, {
        name: "refused",
        script: `const t = (f) => { try { f(); } catch { /* refused */ } };
Deno.writeTextFileSync("mine.txt", "granted");
t(() => Deno.readTextFileSync("mine.txt"));
t(() => Deno.readTextFileSync("/etc/hostname"));
t(() => Deno.env.get("AGENTOS_AGENT_ID"));
t(() => Deno.env.get("HOME"));
t(() => Deno.dlopen("libc.so.6", {}));
try { (await Deno.connect({ hostname: "127.0.0.1", port: 1 })).close(); } catch { /* refused */ }
// Its own audit pipe: reading it would hide its refused checks from the kernel.
const sock = Deno.env.get("AGENTOS_SOCKET");
const pipe = sock.slice(0, -"/agent.sock".length) + ".audit";
let stole = false;
try { Deno.openSync(pipe, { read: true }).close(); stole = true; } catch { /* refused */ }
console.log("STOLE " + stole);
for (let i = 0; i < 200; i++) t(() => Deno.readTextFileSync("/etc/passwd"));
console.log("done");`,
      });
      fifos.push(join(kernel.layout.runDir, `${a.id}.audit`));
      await waitState(c, a.id, ["exited"]);
      await waitFor(() => events.some((e) => /passwd/.test(e.reason)), 5_000, "events");
      const mine = events.filter((e) => e.identityId === a.id);
      const ops = mine.map((e) => `${e.op} ${e.reason.match(/access to (\S+)/)?.[1]}`);
      // (Deno checks a TCP connect twice: once per lookup and connect.)
      assert.deepEqual([...new Set(ops)].slice(0, 6), [
        "deno:read /etc/hostname",
        "deno:env HOME",
        "deno:ffi libc.so.6",
        "deno:net 127.0.0.1:1",
        `deno:read ${fifos[0]}`,
        "deno:read /etc/passwd",
      ]);
      assert.match(await readLog(kernel.layout.root, "refused"), /STOLE false/);
      assert.ok(mine.every((e) => /^Permission denied: /.test(e.reason)));
      assert.ok(!mine.some((e) => /mine\.txt|AGENTOS_AGENT_ID/.test(e.reason)), "granted checks");
      // 200 refused reads in a moment: the budget holds the events down.
      assert.ok(mine.length <= 2 * MAX_BLOCKED_EVENTS_PER_SECOND, `${mine.length} events`);
      // An unrestricted agent is refused nothing and is not audited.
      const u = await spawnOk(c, { name: "free", level: "unrestricted", script: "1" });
      await waitState(c, u.id, ["exited"]);
      assert.equal(events.filter((e) => e.identityId === u.id).length, 0);
    } finally {
      client?.close();
      await kernel.shutdown("test over");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    // No reader of an audit pipe outlives its agent.
    await waitFor(() => !readers(fifos), 5_000, "audit readers gone");
  },
});

/** True if any process reads one of `fifos`. */
function readers(fifos: string[]): boolean {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (fifos.some((f) => cmd.includes(f))) return true;
    } catch { /* gone */ }
  }
  return false;
}

Deno.test({
  name: "a finished agent's workspace is reused only by the tree that spawned it",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const left = await spawnOk(c, {
        name: "left",
        script: `Deno.writeTextFileSync("notes.txt", "PRIVATE NOTES");`,
      });
      await waitState(c, left.id, ["exited"]);
      await spawnOk(c, {
        name: "other-tree",
        level: "standard",
        can_spawn: true,
        script: `import { connect } from "agentos";
await using os = await connect();
const wait = async (id) => {
  for (;;) {
    const l = await os.listAgents();
    if (l.find((a) => a.id === id)?.state === "exited") return;
    await new Promise((r) => setTimeout(r, 50));
  }
};
const steal = await os.spawn({ name: "left", script: "console.log(Deno.readTextFileSync('notes.txt'))" });
const own = await os.spawn({ name: "own", script: "Deno.writeTextFileSync('n.txt', 'x')" });
if (own.success) await wait(own.id);
const again = await os.spawn({ name: "own", script: "console.log(Deno.readTextFileSync('n.txt'))" });
const generated = await os.spawn({ script: "1" });
console.log("RESULT " + JSON.stringify({ steal, own: own.success, again: again.success, generated: generated.success }));
setInterval(() => {}, 1000);`,
      });
      const r = await result(k.stateDir, "other-tree") as Record<string, Record<string, string>>;
      assert.equal(r.steal.code, "PERMISSION_DENIED", JSON.stringify(r.steal));
      assert.match(r.steal.error, /did not spawn/);
      assert.deepEqual([r.own, r.again, r.generated], [true, true, true]);
      // The unrestricted user may reuse any name.
      const mine = await spawnOk(c, { name: "left", script: "1" });
      await waitState(c, mine.id, ["exited"]);
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "a spawner narrowed by SET_PERMS cannot hand out more through a child",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      const boss = await spawnOk(c, {
        name: "boss",
        level: "standard",
        can_spawn: true,
        script: `import { connect } from "agentos";
await using os = await connect();
for (;;) {
  const p = await os.getPermissions();
  if (p.success && !p.permissions.can_exec) break;
  await new Promise((r) => setTimeout(r, 50));
}
const kid = await os.spawn({ name: "boss-kid", level: "standard", script: \`import { connect } from "agentos";
await using os = await connect();
const p = await os.getPermissions();
const e = await os.exec("true");
console.log("RESULT " + JSON.stringify({ p: p.permissions, exec: e.code ?? "ran" }));\` });
console.log("RESULT " + JSON.stringify(kid));
setInterval(() => {}, 1000);`,
      });
      const set = await c.setPermissions({
        agentId: boss.id,
        permissions: { can_exec: false, network: ["example.com"], llm: { max_calls: 3 } },
      });
      assert.ok(!isKernelError(set), JSON.stringify(set));
      assert.equal((await result(k.stateDir, "boss")).success, true);
      const r = await result(k.stateDir, "boss-kid") as {
        p: { level: string; can_exec: boolean; network: string[]; llm: { max_calls: number } };
        exec: string;
      };
      assert.equal(r.p.level, "standard");
      assert.equal(r.p.can_exec, false);
      assert.deepEqual(r.p.network, ["example.com"]);
      assert.equal(r.p.llm.max_calls, 3);
      assert.equal(r.exec, "PERMISSION_DENIED");
    } finally {
      await k.stop();
    }
  },
});

Deno.test({
  name: "host private keys (/etc/ssh, /etc/ssl/private) are blocked for agents that read /",
  ignore: !existsSync("/etc/ssh/ssh_config"),
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const c = await k.client();
      await spawnOk(c, {
        name: "keys",
        level: "readonly",
        script: `import { connect } from "agentos";
await using os = await connect();
let direct;
try { direct = Deno.readTextFileSync("/etc/ssh/ssh_config").length > 0; } catch (e) { direct = e.name; }
const read = await os.readFile("/etc/ssh/ssh_config");
console.log("RESULT " + JSON.stringify({ direct, read: read.success ? "read" : read.code }));`,
      });
      assert.deepEqual(await result(k.stateDir, "keys"), {
        direct: "NotCapable",
        read: "PERMISSION_DENIED",
      });
    } finally {
      await k.stop();
    }
  },
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "a script swapped for a symlink after SPAWN does not carry its target into the agent",
  ...opts,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aosaud" }));
    const scripts = join(dir, "scripts");
    await Deno.mkdir(scripts);
    const script = join(scripts, "agent.ts");
    await Deno.writeTextFile(script, `console.log("RUN"); Deno.exit(1);`);
    // A file the sandboxed agent may not read; valid TypeScript, so running it shows it leaked.
    const secret = join(dir, "secret.ts");
    await Deno.writeTextFile(secret, `console.log("SECRET " + 6 * 7);`);
    const k = await startKernel({ dir });
    try {
      const c = await k.client();
      const a = await spawnOk(c, {
        name: "swapped",
        script,
        restart_policy: "on-failure",
        max_restarts: 1,
        restart_window: 60_000,
      });
      await waitFor(async () => (await readLog(k.stateDir, "swapped")).includes("RUN"));
      // Whoever may write beside the script (e.g. the spawner's EXEC) swaps it for a link.
      await Deno.remove(script);
      await Deno.symlink(secret, script);
      const row = await waitState(c, a.id, ["failed"]);
      const log = await readLog(k.stateDir, "swapped");
      assert.ok(!log.includes("SECRET 42"), log);
      assert.match(row.exit_reason ?? "", /restart failed: .*symbolic link|changed/);
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "a spawner's THINK quota covers its descendants: children cannot multiply it",
  ...opts,
  async fn() {
    const fake = await startFakeAnthropic();
    const k = await startKernel({
      env: { ANTHROPIC_API_KEY: "test-key", ANTHROPIC_BASE_URL: fake.url },
    });
    try {
      await waitFor(() => k.logs().includes("kernel listening"), 20_000, "kernel start");
      const c = await k.client();
      const boss = await spawnOk(c, {
        name: "quota-boss",
        level: "standard",
        can_spawn: true,
        script: `import { connect } from "agentos";
await using os = await connect();
for (;;) {
  const p = await os.getPermissions();
  if (p.success && p.permissions.llm.max_calls === 2) break;
  await new Promise((r) => setTimeout(r, 50));
}
const out = [];
for (let i = 0; i < 3; i++) {
  const kid = await os.spawn({ name: "quota-kid-" + i, script: \`import { connect } from "agentos";
await using os = await connect();
const r = await os.think("kid ${"${i}"}");
console.log("RESULT " + JSON.stringify(r.success ? "ok" : r.code + " " + r.error));\` });
  for (;;) {
    const l = await os.listAgents();
    if (l.success === false) break;
    if (["exited", "failed"].includes(l.find((a) => a.id === kid.id)?.state)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const me = await os.getPermissions();
console.log("RESULT " + JSON.stringify(me.permissions.llm));
setInterval(() => {}, 1000);`,
      });
      const set = await c.setPermissions({
        agentId: boss.id,
        permissions: { llm: { max_calls: 2 } },
      });
      assert.ok(!isKernelError(set), JSON.stringify(set));
      const llm = await result(k.stateDir, "quota-boss");
      assert.equal(await result(k.stateDir, "quota-kid-0"), "ok");
      assert.equal(await result(k.stateDir, "quota-kid-1"), "ok");
      const third = await result(k.stateDir, "quota-kid-2") as unknown as string;
      assert.match(third, /^QUOTA_EXCEEDED .*covers its descendants/);
      assert.equal((llm as { calls_made: number }).calls_made, 2, "children's calls counted");
      assert.equal(fake.requests.length, 2, "no request for the refused call");
    } finally {
      await k.stop();
      await fake.close();
    }
  },
});
