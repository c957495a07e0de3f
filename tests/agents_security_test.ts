/**
 * The sandbox matrix: for each level, an agent tries things directly (not through syscalls)
 * and every forbidden one must fail while every allowed one works. The Deno runtime enforces
 * these through the flags derived from the level.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKernel } from "./helpers/kernel.ts";
import { readLog, spawnOk, waitFor, waitState } from "./helpers/agents.ts";
import { which } from "../sandbox/which.ts";

const hasBwrap = which("bwrap") !== null;
if (!hasBwrap) console.log("bwrap is not installed: skipping the OS-layer agent tests");

const PROBE = `import { connect } from "agentos";
const cfg = JSON.parse(Deno.args[0]);
const results = {};
async function attempt(name, fn) {
  try { results[name] = (await fn()) !== false; } catch (e) { results[name] = false; results[name + "_error"] = e.name; }
}
await attempt("sdk_echo", async () => { await using os = await connect(); return (await os.echo("x")) === "x"; });
await attempt("read_secret", () => Deno.readTextFileSync(cfg.secret).includes("SECRET"));
await attempt("read_system", () => Deno.readTextFileSync("/etc/hostname") !== null);
await attempt("write_workspace", () => { Deno.writeTextFileSync("own.txt", "x"); return true; });
await attempt("write_outside", () => { Deno.writeTextFileSync(cfg.outside, "x"); return true; });
await attempt("fetch_loopback", async () => (await (await fetch(cfg.url)).text()) === "hello");
await attempt("run_command", async () => (await new Deno.Command("true").output()).success);
await attempt("env_secret", () => {
  const v = [Deno.env.get("AGENTOS_TEST_SECRET"), Deno.env.get("ANTHROPIC_API_KEY")];
  return v.some((x) => x !== undefined);
});
await attempt("ffi", () => { Deno.dlopen("libc.so.6", {}); return true; });
await attempt("main_socket", async () => {
  (await Deno.connect({ transport: "unix", path: cfg.mainSocket })).close(); return true;
});
await attempt("other_socket", async () => {
  (await Deno.connect({ transport: "unix", path: cfg.otherSocket })).close(); return true;
});
await attempt("other_workspace", () => Deno.readTextFileSync(cfg.otherFile) === "theirs");
await attempt("kernel_environ", () => Deno.readTextFileSync(\`/proc/\${cfg.kernelPid}/environ\`).includes("sk-test"));
await attempt("proc_root_symlink", () => Deno.readTextFileSync("/proc/self/root" + cfg.secret).includes("SECRET"));
await attempt("kernel_logs", () => { Deno.readDirSync(cfg.logsDir); return true; });
await attempt("remote_import", async () => (await import(cfg.url + "mod.ts")).v === "remote");
await attempt("static_json_secret", async () => {
  const p = cfg.secretJson; return (await import(p, { with: { type: "json" } })).default.k === "SECRET";
});
console.log("RESULT " + JSON.stringify(results));
`;

type Row = Record<string, boolean>;
const ALL_FORBIDDEN: Row = {
  sdk_echo: true,
  read_secret: false,
  read_system: false,
  write_workspace: false,
  write_outside: false,
  fetch_loopback: false,
  run_command: false,
  env_secret: false,
  ffi: false,
  main_socket: false,
  other_socket: false,
  other_workspace: false,
  kernel_logs: false,
  kernel_environ: false,
  proc_root_symlink: false,
  remote_import: false,
  static_json_secret: false,
};

const EXPECT: Record<string, Row> = {
  unrestricted: {
    ...Object.fromEntries(Object.keys(ALL_FORBIDDEN).map((k) => [k, true])),
    env_secret: false, // the environment is cleared for every level
  },
  standard: {
    ...ALL_FORBIDDEN,
    read_system: true,
    write_workspace: true,
    write_outside: true,
    fetch_loopback: true,
    remote_import: true,
  },
  sandboxed: { ...ALL_FORBIDDEN, write_workspace: true },
  "sandboxed+network": {
    ...ALL_FORBIDDEN,
    write_workspace: true,
    fetch_loopback: true,
    remote_import: true,
  },
  readonly: { ...ALL_FORBIDDEN, read_system: true },
  minimal: { ...ALL_FORBIDDEN },
};

Deno.test({
  name: "sandbox matrix: every level, every direct attempt",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aossec" }));
    const home = join(dir, "home");
    await Deno.mkdir(join(home, ".ssh"), { recursive: true });
    await Deno.mkdir(join(home, ".docker"), { recursive: true });
    const secret = join(home, ".ssh", "id_rsa");
    await Deno.writeTextFile(secret, "SECRET KEY");
    const secretJson = join(home, ".docker", "config.json");
    await Deno.writeTextFile(secretJson, JSON.stringify({ k: "SECRET" }));
    // Levels that may write "everywhere" get every path that exists outside the state
    // directory at spawn time (see sandbox/flags.ts): write into an existing directory.
    await Deno.mkdir(join(dir, "outside"));
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) =>
        new URL(req.url).pathname === "/mod.ts"
          ? new Response("export const v = 'remote';", {
            headers: { "content-type": "application/typescript" },
          })
          : new Response("hello"),
    );
    const port = server.addr.port;
    const k = await startKernel({
      dir,
      env: {
        HOME: home,
        // Keep the real module cache: the fake HOME must not change where the kernel's own
        // dependencies come from.
        DENO_DIR: Deno.env.get("DENO_DIR") ??
          join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
        AGENTOS_TEST_SECRET: "kernel-only",
        ANTHROPIC_API_KEY: "sk-test-key",
      },
    });
    try {
      const c = await k.client();
      const target = await spawnOk(c, { name: "target", script: "setInterval(() => {}, 1000);" });
      const otherFile = join(k.stateDir, "workspaces", "target", "file.txt");
      await Deno.writeTextFile(otherFile, "theirs");
      const base = {
        secret,
        secretJson,
        url: `http://127.0.0.1:${port}/`,
        mainSocket: k.socket,
        otherSocket: join(k.stateDir, "run", String(target.id), "agent.sock"),
        otherFile,
        logsDir: join(k.stateDir, "logs"),
        kernelPid: k.pid,
      };
      const rows = Object.keys(EXPECT);
      const spawned = await Promise.all(rows.map((row, i) => {
        const [level, net] = row.split("+");
        return spawnOk(c, {
          name: `probe-${level}${net ? "-net" : ""}`,
          level: level as "standard",
          network: net ? [`127.0.0.1:${port}`] : undefined,
          script: PROBE,
          args: [JSON.stringify({ ...base, outside: join(dir, "outside", `${i}.txt`) })],
        });
      }));
      const failures: string[] = [];
      for (const [i, row] of rows.entries()) {
        const a = spawned[i];
        await waitState(c, a.id, ["exited", "failed"], 60_000);
        const log = await waitFor(
          async () => {
            const t = await readLog(k.stateDir, a.name);
            return t.includes("RESULT ") ? t : "";
          },
          5_000,
          `${row} result`,
        ).catch(async () => await readLog(k.stateDir, a.name));
        assert.ok(log.includes("RESULT "), `${row}: no result\n${log}`);
        const got = JSON.parse(log.split("RESULT ")[1].split("\n")[0]);
        for (const [probe, want] of Object.entries(EXPECT[row])) {
          if (got[probe] !== want) {
            failures.push(
              `${row}: ${probe} ${want ? "should work" : "should fail"} (error: ${
                got[probe + "_error"] ?? "none"
              })`,
            );
          }
        }
      }
      assert.deepEqual(failures, []);
    } finally {
      await k.stop();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "a static import of a local file is held to the agent's read permissions",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aossec" }));
    const secret = join(dir, "secret.json");
    await Deno.writeTextFile(secret, JSON.stringify({ k: "SECRET" }));
    const k = await startKernel({ dir });
    try {
      const c = await k.client();
      const script = `import s from ${JSON.stringify(secret)} with { type: "json" };
console.log("LEAK " + s.k);`;
      const sandboxed = await spawnOk(c, { name: "static-sbx", script });
      const row = await waitState(c, sandboxed.id, ["exited", "failed"]);
      const log = await readLog(k.stateDir, "static-sbx");
      assert.equal(row.state, "failed");
      assert.ok(!log.includes("LEAK"), log);
      assert.match(log, /NotCapable|Requires read access/);
      const std = await spawnOk(c, { name: "static-std", level: "standard", script });
      await waitState(c, std.id, ["exited", "failed"]);
      assert.match(await readLog(k.stateDir, "static-std"), /LEAK SECRET/);
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "OS layer: a symlink in the workspace into a blocked path finds nothing",
  ignore: !hasBwrap,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aossec" }));
    const home = join(dir, "home");
    await Deno.mkdir(join(home, ".ssh"), { recursive: true });
    const secret = join(home, ".ssh", "id_rsa");
    await Deno.writeTextFile(secret, "SECRET KEY");
    const k = await startKernel({
      dir,
      env: {
        HOME: home,
        DENO_DIR: Deno.env.get("DENO_DIR") ??
          join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
      },
    });
    try {
      const c = await k.client();
      const script = `const out = {};
for (const name of ["secret", "kernel"]) {
  try { out[name] = Deno.readTextFileSync(name + "-link"); } catch (e) { out[name] = e.name; }
}
console.log("RESULT " + JSON.stringify(out));`;
      for (const level of ["sandboxed", "standard", "readonly"] as const) {
        const name = `sym-${level}`;
        // Someone (e.g. an EXEC) left links in the workspace before the agent runs.
        const ws = join(k.stateDir, "workspaces", name);
        await Deno.mkdir(ws, { recursive: true });
        await Deno.symlink(secret, join(ws, "secret-link"));
        await Deno.symlink(join(k.stateDir, "kernel", "kernel.pid"), join(ws, "kernel-link"));
        const a = await spawnOk(c, { name, level, script });
        await waitState(c, a.id, ["exited", "failed"]);
        const log = await readLog(k.stateDir, name);
        assert.ok(log.includes("RESULT "), log);
        const got = JSON.parse(log.split("RESULT ")[1].split("\n")[0]);
        assert.equal(got.secret, "NotFound", `${level}: ${JSON.stringify(got)}`);
        assert.equal(got.kernel, "NotFound", `${level}: ${JSON.stringify(got)}`);
      }
    } finally {
      await k.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
