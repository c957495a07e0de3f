/**
 * Attacks on the permission model and the host syscalls (READ, WRITE, EXEC, HTTP, SET_PERMS)
 * found in the security audit, each against a real kernel process, real bubblewrap and real
 * loopback servers. Every test here failed before its fix.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { runCli, startKernel, withKernel } from "./helpers/kernel.ts";
import { type AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { bwrapStatus } from "../sandbox/bwrap.ts";

const bwrap = await bwrapStatus();
const hasBwrap = bwrap.available;
if (!hasBwrap) {
  console.warn(
    `host_security_test: bubblewrap tests skipped: bubblewrap is not usable here (${bwrap.reason})`,
  );
}

/** The client's workspace (created by a probe write). */
async function workspaceOf(c: AgentOSClient): Promise<string> {
  const w = await c.writeFile("probe.txt", "probe");
  assert.ok(!isKernelError(w), JSON.stringify(w));
  return dirname(w.path);
}

function assertDenied(r: unknown, what: string): string {
  assert.ok(
    isKernelError(r),
    `${what}: expected a refusal, got ${JSON.stringify(r).slice(0, 300)}`,
  );
  assert.equal(r.code, "PERMISSION_DENIED", `${what}: ${r.error}`);
  assert.match(r.error, /^Permission denied/);
  return r.error;
}

Deno.test({
  name: "SET_PERMS: a root through a symlink in one's own workspace grants nothing outside it",
  ignore: !hasBwrap,
  async fn() {
    const outside = await Deno.realPath(
      await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-out" }),
    );
    await Deno.writeTextFile(join(outside, "public.txt"), "outside");
    try {
      await withKernel(["--client-level", "sandboxed"], async (k) => {
        const c = await k.client();
        const ws = await workspaceOf(c);
        // The sandboxed caller makes a link to / inside its own workspace (EXEC may).
        const ln = await c.exec("ln -s / link && mkdir real");
        assert.ok(!isKernelError(ln) && ln.exit_code === 0, JSON.stringify(ln));
        // Lexically inside the workspace, really outside: refused, naming the real path.
        const viaLink = `${ws}/link${outside}`;
        for (const key of ["read", "write"] as const) {
          const r = await c.setPermissions({
            permissions: { filesystem: { [key]: [ws, viaLink] } },
          });
          const why = assertDenied(r, `filesystem.${key} through a link`);
          assert.ok(why.includes(outside), why);
        }
        const r = await c.readFile(join(outside, "public.txt"));
        assertDenied(r, "READ outside");
        const w = await c.writeFile(join(outside, "x.txt"), "pwned");
        assertDenied(w, "WRITE outside");
        // A real subdirectory is accepted, then swapped for a link: it grants nothing.
        const set = await c.setPermissions({
          permissions: { filesystem: { read: [ws, `${ws}/real`], write: [ws, `${ws}/real`] } },
        });
        assert.ok(!isKernelError(set), JSON.stringify(set));
        const swap = await c.exec(`rmdir real && ln -s ${outside} real`);
        assert.ok(!isKernelError(swap) && swap.exit_code === 0, JSON.stringify(swap));
        const again = await c.readFile(join(outside, "public.txt"));
        const why = assertDenied(again, "READ through a swapped root");
        assert.match(why, /symbolic link/);
        assertDenied(await c.writeFile(join(outside, "x.txt"), "pwned"), "WRITE swapped root");
        // EXEC does not bind a swapped write root either (bwrap would follow the link).
        const e = await c.exec(`echo pwned > ${outside}/x.txt`);
        assert.ok(!isKernelError(e) && e.exit_code !== 0, JSON.stringify(e));
        await assert.rejects(Deno.stat(join(outside, "x.txt")));
        // The workspace itself keeps working.
        const own = await c.readFile("probe.txt");
        assert.ok(!isKernelError(own) && own.content === "probe", JSON.stringify(own));
      });
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  },
});

Deno.test("SET_PERMS: roots are recorded as the real paths they name", async () => {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "aos-canon" }));
  try {
    await Deno.mkdir(join(tmp, "data"));
    await Deno.symlink(join(tmp, "data"), join(tmp, "alias"));
    await withKernel([], async (k) => {
      const c = await k.client();
      const r = await c.setPermissions({
        permissions: { filesystem: { read: [`${tmp}/alias/`, `${tmp}//data`] } },
      });
      assert.ok(!isKernelError(r), JSON.stringify(r));
      assert.deepEqual(r.permissions.filesystem.read, [join(tmp, "data")]);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

let cc: string | null = null;
for (const name of ["cc", "gcc"]) {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (dir && (await Deno.stat(join(dir, name))).isFile) cc ??= join(dir, name);
    } catch { /* not here */ }
  }
}
if (!cc) console.warn("host_security_test: the LD_PRELOAD test is skipped: no C compiler");

Deno.test({
  name: "EXEC: LD_PRELOAD in env never loads into bubblewrap itself (outside the sandbox)",
  ignore: !hasBwrap || cc === null,
  async fn() {
    const tmp = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-preload" });
    const src = join(tmp, "evil.c");
    const so = join(tmp, "evil.so");
    const out = join(tmp, "escaped.txt");
    await Deno.writeTextFile(
      src,
      `#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void init(void) {
  const char *out = getenv("AOS_PRELOAD_OUT");
  if (!out) return;
  FILE *f = fopen(out, "a");
  if (f) { fputs("ran outside the sandbox\\n", f); fclose(f); }
}
`,
    );
    const built = await new Deno.Command(cc!, { args: ["-shared", "-fPIC", "-o", so, src] })
      .output();
    assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
    try {
      await withKernel(["--client-level", "sandboxed"], async (k) => {
        const c = await k.client();
        const w = await c.writeFile("evil.so", await Deno.readFile(so));
        assert.ok(!isKernelError(w), JSON.stringify(w));
        const e = await c.exec('echo "$LD_PRELOAD"', {
          env: { LD_PRELOAD: w.path, AOS_PRELOAD_OUT: out },
        });
        assert.ok(!isKernelError(e), JSON.stringify(e));
        // Inside the sandbox the variable is there (the command's own business)...
        assert.equal(e.stdout, `${w.path}\n`);
        // ...but nothing ran where the host's files are writable.
        await assert.rejects(Deno.stat(out), "the preloaded library ran outside the sandbox");
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("SPAWN: a narrowed can_spawn parent cannot hand its child the level's full defaults", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    // The parent waits to be told, then spawns a standard child and reports its record.
    const parentScript = `import { connect } from "agentos";
const os = await connect();
await os.recvMessages({ wait: true, timeoutMs: 60000 });
const child = await os.spawn({ name: "esc-child", level: "standard", script: "setInterval(() => {}, 1000);" });
const perms = child.success ? await os.getPermissions(child.agent_id) : child;
await os.sendMessage({ child, perms }, { toName: "esc-owner" });
setInterval(() => {}, 1000);
`;
    assert.ok((await c.request("REGISTER", { name: "esc-owner" })).success);
    const p = await c.spawn({
      name: "esc-parent",
      level: "standard",
      script: parentScript,
      can_spawn: true,
    });
    assert.ok(!isKernelError(p), JSON.stringify(p));
    // The owner narrows the parent: one domain, no reads outside its workspace, a short EXEC.
    const narrowed = await c.setPermissions({
      agentId: p.agent_id,
      permissions: {
        network: ["api.example.com"],
        filesystem: { read: ["/usr"] },
        max_exec_time_ms: 1000,
        llm: { max_calls: 3 },
      },
    });
    assert.ok(!isKernelError(narrowed), JSON.stringify(narrowed));
    assert.ok((await c.sendMessage("go", { to: p.agent_id })).success);
    const got = await c.recvMessages({ wait: true, timeoutMs: 60_000 });
    assert.ok(!isKernelError(got) && got.count === 1, JSON.stringify(got));
    const { child, perms } = got.messages[0].message as {
      child: { success: boolean };
      perms: { success: boolean; permissions: Record<string, unknown> };
    };
    assert.ok(child.success && perms.success, JSON.stringify(got.messages[0].message));
    const cp = perms.permissions as {
      network: string[];
      filesystem: { read: string[] };
      max_exec_time_ms: number;
      llm: { max_calls: number | null };
    };
    assert.deepEqual(cp.network, ["api.example.com"]);
    // The parent's reads, plus the child's own (new) workspace.
    assert.deepEqual(cp.filesystem.read.filter((r) => !r.endsWith("/esc-child")), ["/usr"]);
    assert.ok(cp.max_exec_time_ms <= 1000, String(cp.max_exec_time_ms));
    assert.equal(cp.llm.max_calls, 3);
  });
});

Deno.test({
  name: "standard: the kernel's state directory (the agents' SDK runtime) is off limits",
  ignore: !hasBwrap,
  async fn() {
    await withKernel(["--client-level", "standard"], async (k) => {
      const c = await k.client();
      const bootstrap = join(k.stateDir, "sdk", "bootstrap.ts");
      const before = await Deno.readTextFile(bootstrap);
      // Every agent, unrestricted ones included, imports this file: rewriting it would run
      // the caller's code at any level.
      for (const mode of ["append", "write"] as const) {
        const w = await c.writeFile(bootstrap, "console.log('pwned');", { mode });
        assert.match(assertDenied(w, `WRITE ${mode}`), /kernel's own files|blocked path/);
      }
      assertDenied(await c.readFile(bootstrap), "READ");
      assertDenied(await c.exec("pwd", { cwd: join(k.stateDir, "sdk") }), "EXEC cwd");
      const e = await c.exec(`echo '//x' >> ${bootstrap}; ls -A ${k.stateDir}`);
      assert.ok(!isKernelError(e), JSON.stringify(e));
      assert.notEqual(e.stderr, "", "the append must fail inside the sandbox");
      assert.doesNotMatch(e.stdout, /sdk|kernel|logs|run/);
      assert.equal(await Deno.readTextFile(bootstrap), before);
      // The caller's own workspace (inside the state directory) still works, from EXEC too.
      const own = await c.exec("echo mine > own.txt && cat own.txt");
      assert.ok(!isKernelError(own) && own.stdout === "mine\n", JSON.stringify(own));
      const r = await c.readFile("own.txt");
      assert.ok(!isKernelError(r) && r.content === "mine\n", JSON.stringify(r));
    });
  },
});

Deno.test({
  name: "sandboxed agent: a symlink made with EXEC does not let the agent write outside",
  ignore: !hasBwrap,
  async fn() {
    const out = await Deno.realPath(
      await Deno.makeTempDir({ dir: "/var/tmp", prefix: "aos-agent-out" }),
    );
    try {
      await withKernel([], async (k) => {
        const c = await k.client();
        assert.ok((await c.request("REGISTER", { name: "link-owner" })).success);
        const script = `import { connect } from "agentos";
const os = await connect();
const made = await os.exec(${JSON.stringify(`ln -s ${out} link && echo made`)});
let wrote = "no";
try {
  Deno.writeTextFileSync("link/pwned.txt", "escaped");
  wrote = "yes";
} catch (e) {
  wrote = String(e);
}
let own = "no";
try {
  Deno.writeTextFileSync("own.txt", "mine");
  own = Deno.readTextFileSync("own.txt");
} catch (e) {
  own = String(e);
}
await os.sendMessage({ made: made.success && made.stdout, wrote, own }, { toName: "link-owner" });
`;
        const s = await c.spawn({ name: "linker", script });
        assert.ok(!isKernelError(s), JSON.stringify(s));
        const got = await c.recvMessages({ wait: true, timeoutMs: 60_000 });
        assert.ok(!isKernelError(got) && got.count === 1, JSON.stringify(got));
        const m = got.messages[0].message as { made: string; wrote: string; own: string };
        assert.equal(m.made, "made\n", JSON.stringify(m));
        assert.notEqual(m.wrote, "yes", "the agent wrote through the link");
        assert.equal(m.own, "mine", JSON.stringify(m));
        await assert.rejects(Deno.stat(join(out, "pwned.txt")));
      });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("READ and EXEC keep a byte-order mark: pages never drop or skip bytes", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    const text = "\uFEFFhello \uFEFF world";
    assert.ok(!isKernelError(await c.writeFile("bom.txt", text)));
    const whole = await c.readFile("bom.txt");
    assert.ok(!isKernelError(whole), JSON.stringify(whole));
    assert.equal(whole.content, text);
    assert.equal(whole.length, new TextEncoder().encode(text).length);
    // Page by page, 3 bytes at a time: the pieces put together are the file.
    let offset = 0;
    let joined = "";
    for (let i = 0; i < 100; i++) {
      const page = await c.readFile("bom.txt", { offset, length: 4 });
      assert.ok(!isKernelError(page), JSON.stringify(page));
      joined += page.content;
      offset += page.length;
      if (!page.truncated) break;
    }
    assert.equal(joined, text);
    // A page of control characters (6 JSON bytes each) is cut to fit, and paging goes on
    // from exactly where it stopped, with a BOM first.
    const ctl = "\uFEFF" + "\u0001".repeat(400_000);
    assert.ok(!isKernelError(await c.writeFile("ctl.txt", new TextEncoder().encode(ctl))));
    let got = "";
    offset = 0;
    for (let i = 0; i < 20; i++) {
      const page = await c.readFile("ctl.txt", { offset });
      assert.ok(!isKernelError(page), JSON.stringify(page).slice(0, 200));
      got += page.content;
      offset += page.length;
      if (!page.truncated) break;
    }
    assert.equal(got.length, ctl.length);
    assert.ok(got === ctl);
    const e = await c.exec("printf '\\357\\273\\277bom'");
    assert.ok(!isKernelError(e) && e.stdout === "\uFEFFbom", JSON.stringify(e));
  });
});

Deno.test("HTTP: response headers named like Object properties come back as sent", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("x", {
        headers: [["constructor", "c1"], ["__proto__", "p1"], ["x-a", "1"], ["x-a", "2"]],
      }),
  );
  try {
    await withKernel([], async (k) => {
      const c = await k.client();
      const r = await c.http(`http://127.0.0.1:${server.addr.port}/`);
      assert.ok(!isKernelError(r), JSON.stringify(r));
      const own = (name: string) => Object.hasOwn(r.headers, name) ? r.headers[name] : undefined;
      assert.equal(own("constructor"), "c1");
      assert.equal(own("__proto__"), "p1");
      assert.equal(own("x-a"), "1, 2");
    });
  } finally {
    await server.shutdown();
  }
});

/** SIGKILL every process whose command line contains `marker` (this test's leftovers). */
async function reapMarked(marker: string): Promise<void> {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (cmdline.replaceAll("\0", " ").includes(marker)) Deno.kill(Number(e.name), "SIGKILL");
    } catch { /* gone */ }
  }
}

Deno.test("EXEC: a leftover holding an unread stdin does not keep EXEC waiting", async () => {
  const m = `100.${Math.floor(Math.random() * 1e9)}`;
  // No setsid on PATH: leftovers are not killed as a group once the command exits.
  const k = await startKernel({ env: { PATH: "/nonexistent-agentos-path" } });
  try {
    const c = await k.client();
    const started = Date.now();
    const r = await c.exec(`exec 3<&0; /bin/sleep ${m} & exit 0`, {
      stdin: "x".repeat(1_000_000),
      timeout: 5,
    });
    assert.ok(!isKernelError(r), JSON.stringify(r).slice(0, 300));
    assert.equal(r.exit_code, 0);
    assert.ok(Date.now() - started < 30_000, `EXEC took ${Date.now() - started} ms`);
    // The kernel still answers.
    assert.ok((await c.request("GET_PERMS", {})).success);
  } finally {
    await k.stop();
    await reapMarked(`sleep ${m}`);
  }
});

Deno.test("WRITE: a path ending in / names a directory and is refused", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    const ws = await workspaceOf(c);
    for (const mode of ["write", "create", "append"] as const) {
      const r = await c.writeFile("new.txt/", "x", { mode });
      assert.ok(isKernelError(r) && r.code === "INVALID_MSG", JSON.stringify(r));
      assert.match(r.error, /names a directory/);
    }
    await assert.rejects(Deno.stat(join(ws, "new.txt")));
  });
});

Deno.test("WRITE never writes sysfs (kernel and device settings), even as unrestricted", async () => {
  // An invalid value: were it written, the kernel would refuse it (EINVAL), so this is safe.
  const target = "/sys/kernel/mm/ksm/run";
  await withKernel([], async (k) => {
    const c = await k.client();
    for (const mode of ["append", "write"] as const) {
      const r = await c.writeFile(target, "not-a-number\n", { mode });
      assert.match(assertDenied(r, `WRITE ${mode} ${target}`), /under \/sys/);
    }
    // Reading is fine where the file exists.
    const read = await c.readFile(target);
    assert.ok(!isKernelError(read) || read.code === "NOT_FOUND", JSON.stringify(read));
  });
});

Deno.test("standard agent: cloud metadata addresses are denied to its own fetch too", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    assert.ok((await c.request("REGISTER", { name: "meta-owner" })).success);
    const script = `import { connect } from "agentos";
const os = await connect();
const out = {};
for (const url of ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"]) {
  try {
    await fetch(url, { signal: AbortSignal.timeout(3000) });
    out[url] = "reached";
  } catch (e) {
    out[url] = e instanceof Deno.errors.NotCapable ? "denied" : String(e);
  }
}
await os.sendMessage(out, { toName: "meta-owner" });
`;
    const s = await c.spawn({ name: "meta", level: "standard", script });
    assert.ok(!isKernelError(s), JSON.stringify(s));
    const got = await c.recvMessages({ wait: true, timeoutMs: 60_000 });
    assert.ok(!isKernelError(got) && got.count === 1, JSON.stringify(got));
    for (const [url, what] of Object.entries(got.messages[0].message as Record<string, string>)) {
      assert.equal(what, "denied", `${url}: ${what}`);
    }
  });
});

Deno.test("EXEC: a command over the OS limit for one argument is INVALID_MSG, saying what to do", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    for (const command of ["#" + "a".repeat(131_071), "#" + "é".repeat(70_000)]) {
      const r = await c.exec(command);
      assert.ok(isKernelError(r) && r.code === "INVALID_MSG", JSON.stringify(r).slice(0, 300));
      assert.match(r.error, /stdin/);
    }
    const ok = await c.exec("#" + "a".repeat(131_070));
    assert.ok(!isKernelError(ok) && ok.exit_code === 0, JSON.stringify(ok).slice(0, 300));
    const script = await c.exec("sh -s", { stdin: "echo " + "b".repeat(200_000) + " | wc -c" });
    assert.ok(!isKernelError(script) && script.stdout.trim() === "200001", JSON.stringify(script));
  });
});

Deno.test("deep roots that do not exist cost little (no per-component realpath walk)", async () => {
  await withKernel(["--client-level", "sandboxed"], async (k) => {
    const c = await k.client();
    const ws = await workspaceOf(c);
    // 255 roots of ~1,000 missing components each: resolving them one component at a time
    // took seconds for every READ, on a kernel shared with everyone else.
    const deep = (i: number) => `${ws}/${"a/".repeat(1000).slice(0, 3900 - ws.length)}${i}`;
    const roots = [ws, ...Array.from({ length: 255 }, (_, i) => deep(i))];
    const started = performance.now();
    const set = await c.setPermissions({ permissions: { filesystem: { read: roots } } });
    assert.ok(!isKernelError(set), JSON.stringify(set).slice(0, 300));
    for (let i = 0; i < 3; i++) {
      const r = await c.readFile("probe.txt");
      assert.ok(!isKernelError(r) && r.content === "probe", JSON.stringify(r).slice(0, 300));
    }
    const ms = performance.now() - started;
    assert.ok(ms < 5_000, `SET_PERMS and 3 READs took ${Math.round(ms)} ms`);
  });
});

Deno.test("SET_PERMS with 1,000 long blocked paths does not stall the kernel", async () => {
  await withKernel(["--client-level", "standard"], async (k) => {
    const c = await k.client();
    const other = await k.client();
    const cur = await c.getPermissions();
    assert.ok(!isKernelError(cur));
    const many = Array.from({ length: 1000 }, (_, i) => `/x${"/y".repeat(450)}${i}`);
    const blocked = [...cur.permissions.filesystem.blocked, ...many];
    assert.ok((await c.setPermissions({ permissions: { filesystem: { blocked } } })).success);
    // Checking 1,000 against 1,000 pairwise ran for seconds, synchronously: every connection
    // of the kernel waited.
    const pending = c.setPermissions({
      permissions: { filesystem: { blocked: [...blocked].reverse() } },
    });
    let done = false;
    const finished = pending.then((r) => {
      done = true;
      return r;
    });
    let waited = 0;
    while (!done) {
      const started = performance.now();
      assert.ok((await other.getPermissions()).success);
      waited = Math.max(waited, performance.now() - started);
    }
    assert.ok((await finished).success);
    assert.ok(waited < 2_000, `another connection waited ${Math.round(waited)} ms`);
  });
});

Deno.test("agentos perms --agent: ids outside 1..2^32-1 are usage errors (exit 2)", async () => {
  for (const bad of ["0", "-1", "4294967296", "9999999999", "1.5", "x"]) {
    const r = await runCli(["perms", "--socket", "/nonexistent/agentos.sock", `--agent=${bad}`]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--agent must be a numeric identity id/);
  }
});

Deno.test("HTTP: a network entry with a port allows that port only", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("port-ok"),
  );
  const other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no"),
  );
  try {
    const port = server.addr.port;
    await withKernel(
      ["--client-level", "sandboxed", "--client-network", `127.0.0.1:${port}`],
      async (k) => {
        const c = await k.client();
        const ok = await c.http(`http://127.0.0.1:${port}/`);
        assert.ok(!isKernelError(ok) && ok.body === "port-ok", JSON.stringify(ok));
        const refused = await c.http(`http://127.0.0.1:${other.addr.port}/`);
        assertDenied(refused, "another port");
      },
    );
  } finally {
    await server.shutdown();
    await other.shutdown();
  }
});

Deno.test("SPAWN: a sandboxed parent's sandboxed child keeps its own workspace", async () => {
  await withKernel([], async (k) => {
    const c = await k.client();
    assert.ok((await c.request("REGISTER", { name: "ws-owner" })).success);
    const child = `import { connect } from "agentos";
const os = await connect();
const w = await os.writeFile("own.txt", "child-data");
const r = await os.readFile("own.txt");
const perms = await os.getPermissions();
await os.sendMessage({ w: w.success, r: r.success && r.content, perms }, { toName: "ws-owner" });
`;
    const parent = `import { connect } from "agentos";
const os = await connect();
const s = await os.spawn({ name: "ws-child", script: ${JSON.stringify(child)} });
const set = s.success
  ? await os.setPermissions({ agentId: s.agent_id, level: "sandboxed" })
  : s;
await os.sendMessage({ set }, { toName: "ws-owner" });
setInterval(() => {}, 1000);
`;
    const p = await c.spawn({ name: "ws-parent", script: parent, can_spawn: true });
    assert.ok(!isKernelError(p), JSON.stringify(p));
    const messages: Record<string, unknown>[] = [];
    while (messages.length < 2) {
      const got = await c.recvMessages({ wait: true, timeoutMs: 60_000 });
      assert.ok(!isKernelError(got) && got.count > 0, JSON.stringify(got));
      messages.push(...got.messages.map((x) => x.message as Record<string, unknown>));
    }
    const m = messages.find((x) => "w" in x) as { w: boolean; r: string };
    assert.equal(m.w, true, JSON.stringify(m));
    assert.equal(m.r, "child-data", JSON.stringify(m));
    // The sandboxed parent resets its child's level: the child keeps its own workspace.
    const set = (messages.find((x) => "set" in x) as {
      set: { success: boolean; permissions: { filesystem: { write: string[] } } };
    }).set;
    assert.ok(set.success, JSON.stringify(set));
    assert.equal(set.permissions.filesystem.write.length, 1, JSON.stringify(set));
    assert.match(set.permissions.filesystem.write[0], /ws-child$/);
    // Lowering the parent keeps each child's own workspace, not the parent's.
    const low = await c.setPermissions({ agentId: p.agent_id, permissions: { can_http: false } });
    assert.ok(!isKernelError(low), JSON.stringify(low));
    const kid = await c.getPermissions(low.narrowed[0] ?? p.agent_id + 1);
    assert.ok(!isKernelError(kid), JSON.stringify(kid));
    assert.equal(kid.permissions.filesystem.write.length, 1, JSON.stringify(kid.permissions));
    assert.match(kid.permissions.filesystem.write[0], /ws-child$/);
  });
});
