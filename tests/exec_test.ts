/**
 * EXEC against a real kernel process: the level matrix, confinement with real bubblewrap
 * (read-only filesystem, hidden secrets, private /tmp, no network), process-group kills,
 * output handling, and that a running EXEC never delays another connection.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKernel, type TestKernel, withKernel as withKernelOf } from "./helpers/kernel.ts";
import { isKernelError } from "../sdk/mod.ts";
import { bwrapStatus } from "../sandbox/bwrap.ts";
import { MAX_PAYLOAD } from "../kernel/protocol.ts";

const bwrap = await bwrapStatus();
const hasBwrap = bwrap.available;
const NO_BWRAP = hasBwrap ? "" : `skipped: bubblewrap is not usable here (${bwrap.reason})`;
if (!hasBwrap) console.warn(`exec_test: tests needing bubblewrap are ${NO_BWRAP}`);

const LEVELS = ["unrestricted", "standard", "sandboxed", "readonly", "minimal"] as const;

async function withKernel(
  level: string,
  fn: (k: TestKernel) => Promise<void>,
  options: { env?: Record<string, string>; args?: string[] } = {},
): Promise<void> {
  await withKernelOf(
    { args: ["--client-level", level, ...(options.args ?? [])], env: options.env },
    fn,
  );
}

/** Live (non-zombie) processes whose command line contains `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      if (!cmdline.includes(marker)) continue;
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z") found.push(Number(e.name));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** SIGKILL, by pid, whatever of this test's processes (carrying `marker`) is still alive. */
async function reap(marker: string): Promise<void> {
  for (const pid of await processesWith(marker)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return await cond();
}

/** A unique sleep duration, so this test's processes can be told from anyone else's. */
function marker(): string {
  return `100.${Math.floor(Math.random() * 1e9)}`;
}

Deno.test("EXEC: every level, allowed and refused", async () => {
  for (const level of LEVELS) {
    const needsBwrap = level === "standard" || level === "sandboxed";
    if (needsBwrap && !hasBwrap) {
      console.warn(`EXEC at ${level}: ${NO_BWRAP}`);
      continue;
    }
    await withKernel(level, async (k) => {
      const c = await k.client();
      const r = await c.exec("echo hello; echo oops >&2; exit 3");
      if (level === "readonly" || level === "minimal") {
        assert.ok(isKernelError(r), `${level}: ${JSON.stringify(r)}`);
        assert.equal(r.code, "PERMISSION_DENIED");
        assert.match(r.error, /^Permission denied/);
        assert.equal(r.stdout, "");
        return;
      }
      assert.ok(!isKernelError(r), `${level}: ${JSON.stringify(r)}`);
      assert.equal(r.stdout, "hello\n");
      assert.equal(r.stderr, "oops\n");
      assert.equal(r.exit_code, 3);
      assert.equal(r.success, false);
      assert.equal(r.timed_out, false);
      assert.equal(r.truncated, false);
      assert.equal(r.confinement, level === "unrestricted" ? "none" : level);
      const ok = await c.exec("true");
      assert.ok(!isKernelError(ok) && ok.success && ok.exit_code === 0);
      // The default blocked_commands list is a convenience, checked before anything runs.
      if (level !== "unrestricted") {
        const sudo = await c.exec("echo x; sudo id");
        assert.ok(isKernelError(sudo) && sudo.code === "PERMISSION_DENIED", JSON.stringify(sudo));
      }
    });
  }
});

Deno.test("EXEC: start log says whether confinement is available", async () => {
  const k = await startKernel();
  // The line is written during start, possibly just after the socket starts answering.
  await waitFor(() => Promise.resolve(/kernel listening/.test(k.logs())), 10_000);
  await k.stop();
  assert.match(k.logs(), hasBwrap ? /EXEC confinement available/ : /EXEC confinement UNAVAILABLE/);
});

Deno.test("EXEC: the timeout kills the whole process group, grandchildren included", async () => {
  const levels = hasBwrap ? ["unrestricted", "standard", "sandboxed"] : ["unrestricted"];
  if (!hasBwrap) console.warn(`timeout kill at standard/sandboxed: ${NO_BWRAP}`);
  for (const level of levels) {
    await withKernel(level, async (k) => {
      const c = await k.client();
      const m = marker();
      const started = Date.now();
      const pending = c.exec(`sh -c 'sleep ${m} & sleep ${m}'`, { timeout: 1.5 });
      // Positive control: both sleeps (and their shells) really run before the timeout.
      assert.ok(
        await waitFor(async () => (await processesWith(`sleep ${m}`)).length >= 2, 1400),
        `${level}: the sleeps never started`,
      );
      const r = await pending;
      assert.ok(!isKernelError(r), JSON.stringify(r));
      assert.equal(r.timed_out, true);
      assert.equal(r.success, false);
      assert.ok(Date.now() - started < 10_000);
      try {
        const left = await waitFor(async () => (await processesWith(m)).length === 0, 3000);
        assert.ok(left, `${level}: processes survived: ${await processesWith(m)}`);
      } finally {
        await reap(m);
      }
    });
  }
});

Deno.test("EXEC: stopping or killing the kernel ends running commands", async () => {
  const cases: [string, "stop" | "kill"][] = [["unrestricted", "stop"]];
  if (hasBwrap) cases.push(["sandboxed", "stop"], ["sandboxed", "kill"], ["standard", "kill"]);
  else console.warn(`kernel exit during a confined EXEC: ${NO_BWRAP}`);
  for (const [level, how] of cases) {
    const k = await startKernel({ args: ["--client-level", level] });
    const m = marker();
    try {
      const c = await k.client();
      const pending = c.exec(`sleep ${m} & sleep ${m}`).catch(() => null);
      assert.ok(await waitFor(async () => (await processesWith(`sleep ${m}`)).length >= 2, 3000));
      if (how === "stop") await k.stop();
      else await k.kill();
      await pending;
      const gone = await waitFor(async () => (await processesWith(m)).length === 0, 3000);
      assert.ok(gone, `${level}/${how}: processes survived the kernel`);
    } finally {
      await k.kill();
      await reap(m);
    }
  }
});

Deno.test("EXEC: stdout and stderr apart, stdin, env, no kernel secrets", async () => {
  const env = { ANTHROPIC_API_KEY: "sk-kernel-secret-123", AGENTOS_TEST_SECRET: "kernel-only" };
  const levels = hasBwrap ? ["unrestricted", "standard", "sandboxed"] : ["unrestricted"];
  for (const level of levels) {
    await withKernel(level, async (k) => {
      const c = await k.client();
      const r = await c.exec("printf 'a\\nb'; printf 'E' >&2; printf 'c'", {});
      assert.ok(!isKernelError(r));
      assert.equal(r.stdout, "a\nbc");
      assert.equal(r.stderr, "E");
      const s = await c.exec("tr a-z A-Z", { stdin: "hello stdin" });
      assert.ok(!isKernelError(s) && s.stdout === "HELLO STDIN", JSON.stringify(s));
      const noStdin = await c.exec("cat; echo done");
      assert.ok(!isKernelError(noStdin) && noStdin.stdout === "done\n");
      const e = await c.exec('echo "$FOO|$BAR"; env', { env: { FOO: "x y", BAR: "$(id)" } });
      assert.ok(!isKernelError(e));
      assert.ok(e.stdout.startsWith("x y|$(id)\n"), e.stdout);
      assert.doesNotMatch(e.stdout, /sk-kernel-secret|kernel-only|ANTHROPIC/);
      const bad = await c.exec("true", { env: { "A=B": "x" } });
      assert.ok(isKernelError(bad) && bad.code === "INVALID_MSG");
    }, { env });
  }
});

Deno.test("EXEC: output is capped so the response fits one frame", async () => {
  await withKernel("unrestricted", async (k) => {
    const c = await k.client();
    // 3 MB on stdout, 3 MB of NUL bytes on stderr (6 bytes each once JSON-escaped).
    const r = await c.exec(
      "head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero >&2; echo end",
    );
    assert.ok(!isKernelError(r), JSON.stringify(r).slice(0, 300));
    assert.equal(r.truncated, true);
    assert.equal(r.exit_code, 0);
    assert.ok(r.stdout.length > 100_000 && /^a+$/.test(r.stdout));
    assert.ok(r.stderr.length > 10_000 && /^\0+$/.test(r.stderr));
    assert.ok(new TextEncoder().encode(JSON.stringify(r)).length <= MAX_PAYLOAD);
    // A small output is not marked truncated.
    const small = await c.exec("head -c 1000 /dev/zero | tr '\\0' b");
    assert.ok(!isKernelError(small) && !small.truncated && small.stdout.length === 1000);
  });
});

Deno.test("EXEC: a 2-second EXEC on one connection does not delay NOOP on another", async () => {
  await withKernel("unrestricted", async (k) => {
    const slow = await k.client();
    const fast = await k.client();
    const pending = slow.exec("sleep 2");
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    assert.equal(await fast.echo("ping"), "ping");
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 500, `NOOP took ${elapsed} ms while EXEC ran`);
    const r = await pending;
    assert.ok(!isKernelError(r) && r.success);
  });
});

Deno.test("EXEC: cwd is checked like a read path", async () => {
  await withKernel("unrestricted", async (k) => {
    const c = await k.client();
    const r = await c.exec("pwd");
    assert.ok(!isKernelError(r));
    assert.match(r.stdout, /workspaces\/client-\d+-[0-9a-z]+\n$/);
    const tmp = await c.exec("pwd", { cwd: "/" });
    assert.ok(!isKernelError(tmp) && tmp.stdout === "/\n");
    const missing = await c.exec("pwd", { cwd: join(k.dir, "nope") });
    assert.ok(isKernelError(missing) && missing.code === "NOT_FOUND", JSON.stringify(missing));
  });
  if (!hasBwrap) return console.warn(`sandboxed cwd: ${NO_BWRAP}`);
  await withKernel("sandboxed", async (k) => {
    const c = await k.client();
    const out = await c.exec("pwd", { cwd: "/etc" });
    assert.ok(isKernelError(out) && out.code === "PERMISSION_DENIED", JSON.stringify(out));
    await c.exec("mkdir -p sub");
    const sub = await c.exec("pwd", { cwd: "sub" });
    assert.ok(!isKernelError(sub) && sub.stdout.endsWith("/sub\n"), JSON.stringify(sub));
  });
});

Deno.test({
  name: "EXEC sandboxed: read-only outside the workspace, secrets hidden, private /tmp, no network",
  ignore: !hasBwrap,
  async fn() {
    // The fake HOME lives outside /tmp, so hiding ~/.ssh is what is tested, not /tmp privacy.
    const home = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-home" });
    const outside = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-out" });
    const hostTmp = await Deno.makeTempFile({ prefix: "aos-host-visible" });
    await Deno.mkdir(join(home, ".ssh"));
    await Deno.writeTextFile(join(home, ".ssh", "id_rsa"), "FAKE-PRIVATE-KEY");
    await Deno.writeTextFile(join(home, "notes.txt"), "public notes");
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("loopback-reached"),
    );
    const port = server.addr.port;
    const probe = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected'`;
    const sbxName = `aos-sbx-${crypto.randomUUID()}`;
    try {
      await withKernel("sandboxed", async (k) => {
        const c = await k.client();
        // Writes: the workspace yes, anything else no.
        const ws = await c.exec("echo data > inside.txt && cat inside.txt");
        assert.ok(!isKernelError(ws) && ws.stdout === "data\n", JSON.stringify(ws));
        const w = await c.exec(`echo pwned > ${outside}/x.txt`);
        assert.ok(!isKernelError(w) && w.exit_code !== 0, JSON.stringify(w));
        assert.match(w.stderr, /Read-only file system/);
        await assert.rejects(Deno.stat(join(outside, "x.txt")));
        const etc = await c.exec("touch /etc/agentos-should-not-exist");
        assert.ok(!isKernelError(etc) && etc.exit_code !== 0);
        // Reads: public files yes, the fake secret no.
        const notes = await c.exec(`cat ${home}/notes.txt`);
        assert.ok(!isKernelError(notes) && notes.stdout === "public notes", JSON.stringify(notes));
        const key = await c.exec(`cat ${home}/.ssh/id_rsa; ls -A ${home}/.ssh`);
        assert.ok(!isKernelError(key));
        assert.doesNotMatch(key.stdout, /FAKE-PRIVATE-KEY|id_rsa/);
        // Other identities' workspaces and the kernel's files are hidden too.
        const state = await c.exec(`ls -A ${k.stateDir}/workspaces ${k.stateDir}/kernel`);
        assert.ok(!isKernelError(state));
        assert.doesNotMatch(state.stdout, /kernel\.pid/);
        // /tmp is private in both directions.
        const t = await c.exec(
          `test -e ${hostTmp} && echo visible || echo hidden; touch /tmp/${sbxName}`,
        );
        assert.ok(!isKernelError(t) && t.stdout === "hidden\n", JSON.stringify(t));
        await assert.rejects(Deno.stat(`/tmp/${sbxName}`));
        // No network: a loopback server on the host is unreachable.
        const net = await c.exec(probe, { timeout: 10 });
        assert.ok(
          !isKernelError(net) && net.stdout === "" && net.exit_code !== 0,
          JSON.stringify(net),
        );
      }, { env: { HOME: home } });

      // Positive control: the same probe connects when the network is granted.
      await withKernel("sandboxed", async (k) => {
        const c = await k.client();
        const net = await c.exec(probe, { timeout: 10 });
        assert.ok(!isKernelError(net) && net.stdout === "connected\n", JSON.stringify(net));
        const key = await c.exec(`cat ${home}/.ssh/id_rsa`);
        assert.ok(!isKernelError(key) && !key.stdout.includes("FAKE-PRIVATE-KEY"));
      }, { env: { HOME: home }, args: ["--client-network", "127.0.0.1"] });
    } finally {
      await server.shutdown();
      for (const p of [home, outside, hostTmp]) await Deno.remove(p, { recursive: true });
    }
  },
});

Deno.test({
  name: "EXEC standard: writes outside the workspace work, secrets stay hidden",
  ignore: !hasBwrap,
  async fn() {
    const home = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-home" });
    const outside = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-out" });
    await Deno.mkdir(join(home, ".ssh"));
    await Deno.writeTextFile(join(home, ".ssh", "id_rsa"), "FAKE-PRIVATE-KEY");
    try {
      await withKernel("standard", async (k) => {
        const c = await k.client();
        const w = await c.exec(`echo ok > ${outside}/x.txt`);
        assert.ok(!isKernelError(w) && w.success, JSON.stringify(w));
        assert.equal(await Deno.readTextFile(join(outside, "x.txt")), "ok\n");
        const key = await c.exec(`cat ${home}/.ssh/id_rsa; echo "[$(ls -A ${home}/.ssh)]"`);
        assert.ok(!isKernelError(key));
        assert.doesNotMatch(key.stdout, /FAKE-PRIVATE-KEY|id_rsa/);
        const shadow = await c.exec("cat /etc/shadow | wc -c");
        assert.ok(!isKernelError(shadow) && shadow.stdout.trim() === "0", JSON.stringify(shadow));
      }, { env: { HOME: home } });
    } finally {
      for (const p of [home, outside]) await Deno.remove(p, { recursive: true });
    }
  },
});

Deno.test("EXEC fails closed when bubblewrap is missing", async () => {
  // A PATH without bwrap: the kernel itself is started by absolute path.
  const env = { PATH: "/nonexistent-agentos-path" };
  for (const level of ["standard", "sandboxed"]) {
    await withKernel(level, async (k) => {
      const c = await k.client();
      const r = await c.exec("echo should-not-run");
      assert.ok(isKernelError(r), JSON.stringify(r));
      assert.equal(r.code, "ERROR");
      assert.match(r.error, /bubblewrap/);
      assert.match(r.error, /install/);
    }, { env });
  }
  // unrestricted does not need bubblewrap.
  await withKernel("unrestricted", async (k) => {
    const r = await (await k.client()).exec("/bin/echo runs");
    assert.ok(!isKernelError(r) && r.stdout === "runs\n", JSON.stringify(r));
  }, { env });
});

Deno.test("EXEC: invalid payloads are refused with INVALID_MSG", async () => {
  await withKernel("unrestricted", async (k) => {
    const c = await k.client();
    for (
      const payload of [
        {},
        { command: "" },
        { command: 5 },
        { command: "ls", timeout: -1 },
        { command: "ls", extra: true },
        { command: "ls\0x" },
      ]
    ) {
      const r = await c.request("EXEC", payload as never);
      assert.ok(isKernelError(r) && r.code === "INVALID_MSG", JSON.stringify(r));
      assert.equal(r.stdout, "");
    }
  });
});

Deno.test({
  name: "EXEC follows a record changed by SET_PERMS: allowlist, time cap, extra blocked path",
  ignore: !hasBwrap,
  async fn() {
    const secretDir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-blocked" });
    const writeDir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-write" });
    await Deno.writeTextFile(join(secretDir, "data.txt"), "TOP-SECRET");
    try {
      await withKernel("standard", async (k) => {
        const c = await k.client();
        // Positive control: readable before it is blocked.
        const before = await c.exec(`cat ${secretDir}/data.txt`);
        assert.ok(!isKernelError(before) && before.stdout === "TOP-SECRET");
        const perms = await c.getPermissions();
        assert.ok(!isKernelError(perms));
        const set = await c.setPermissions({
          permissions: {
            exec: ["echo", "cat", "sleep"],
            max_exec_time_ms: 700,
            filesystem: { blocked: [...perms.permissions.filesystem.blocked, secretDir] },
          },
        });
        assert.ok(!isKernelError(set), JSON.stringify(set));
        const echo = await c.exec("echo allowed");
        assert.ok(!isKernelError(echo) && echo.stdout === "allowed\n");
        const ls = await c.exec("ls /");
        assert.ok(isKernelError(ls) && ls.code === "PERMISSION_DENIED", JSON.stringify(ls));
        assert.match(ls.error, /"ls" is not in the exec allowlist/);
        const t0 = Date.now();
        const slow = await c.exec("sleep 5", { timeout: 30 });
        assert.ok(!isKernelError(slow) && slow.timed_out, JSON.stringify(slow));
        assert.ok(Date.now() - t0 < 4000, "the record's max_exec_time_ms caps the timeout");
        const hidden = await c.exec(`cat ${secretDir}/data.txt`);
        assert.ok(!isKernelError(hidden));
        assert.doesNotMatch(hidden.stdout, /TOP-SECRET/);
        // Write roots narrowed to the workspace: the rest of the filesystem turns read-only.
        const outside = join(writeDir, "x.txt");
        const w1 = await c.exec(`echo one > ${outside}`);
        assert.ok(!isKernelError(w1) && w1.success, JSON.stringify(w1));
        const narrowed = await c.setPermissions({
          permissions: { filesystem: { write: [join(k.stateDir, "workspaces")] } },
        });
        assert.ok(!isKernelError(narrowed), JSON.stringify(narrowed));
        const w2 = await c.exec(`echo two > ${outside}`);
        assert.ok(!isKernelError(w2) && !w2.success, JSON.stringify(w2));
        assert.match(w2.stderr, /Read-only file system/);
        assert.equal(await Deno.readTextFile(outside), "one\n");
        const w3 = await c.exec("echo three > in-workspace.txt && cat in-workspace.txt");
        assert.ok(!isKernelError(w3) && w3.stdout === "three\n", JSON.stringify(w3));
      });
    } finally {
      await Deno.remove(secretDir, { recursive: true });
      await Deno.remove(writeDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "EXEC standard and sandboxed: the user's ssh-agent socket is hidden",
  ignore: !hasBwrap,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-agent" });
    const sock = join(dir, "agent.sock");
    const listener = Deno.listen({ transport: "unix", path: sock });
    const probe = `test -S ${sock} && echo socket || echo hidden`;
    try {
      for (const level of ["unrestricted", "standard", "sandboxed"]) {
        await withKernel(level, async (k) => {
          const r = await (await k.client()).exec(probe);
          assert.ok(!isKernelError(r), JSON.stringify(r));
          // unrestricted is the positive control: the socket is really there.
          assert.equal(r.stdout, level === "unrestricted" ? "socket\n" : "hidden\n", level);
        }, { env: { SSH_AUTH_SOCK: sock } });
      }
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("EXEC without setsid on PATH still kills grandchildren on timeout", async () => {
  // No setsid (nor anything else) on PATH: the kernel falls back to killing the process tree.
  await withKernel("unrestricted", async (k) => {
    const c = await k.client();
    const m = marker();
    try {
      const pending = c.exec(`/bin/sh -c '/bin/sleep ${m} & /bin/sleep ${m}'`, { timeout: 1.5 });
      assert.ok(
        await waitFor(async () => (await processesWith(`sleep ${m}`)).length >= 2, 1400),
        "the sleeps never started",
      );
      const r = await pending;
      assert.ok(!isKernelError(r) && r.timed_out, JSON.stringify(r));
      const gone = await waitFor(async () => (await processesWith(m)).length === 0, 3000);
      assert.ok(gone, `processes survived: ${await processesWith(m)}`);
    } finally {
      await reap(m);
    }
  }, { env: { PATH: "/nonexistent-agentos-path" } });
});
