/**
 * The agent CLI: spawn, list, kill, logs against a running kernel, and `agentos run` with a
 * private kernel and with a running one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, runCli, startKernel } from "./helpers/kernel.ts";
import { waitFor } from "./helpers/agents.ts";
import { parseDuration, parseMemory } from "../cli/agents.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("CLI size and duration parsing", () => {
  assert.equal(parseMemory("256M"), 256);
  assert.equal(parseMemory("1G"), 1024);
  assert.equal(parseMemory("512"), 512);
  assert.equal(parseMemory("2048k"), 2);
  assert.throws(() => parseMemory("lots"), /size/);
  assert.equal(parseDuration("10s", "--cpu"), 10_000);
  assert.equal(parseDuration("500ms", "--cpu"), 500);
  assert.equal(parseDuration("10m", "--timeout"), 600_000);
  assert.throws(() => parseDuration("soon", "--timeout"), /duration/);
});

Deno.test({
  name: "agentos run: private kernel, streams output, returns the agent's exit code",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aosrun" });
    try {
      const script = join(dir, "job.ts");
      await Deno.writeTextFile(
        script,
        `import { connect } from "agentos";
await using os = await connect();
console.log("job says " + (await os.echo("hi")) + " " + Deno.args.join("+"));
Deno.exit(Number(Deno.args[0]));`,
      );
      const none = join(dir, "nothing.sock");
      for (const code of [0, 3]) {
        const r = await runCli(["run", script, "--socket", none, "--", String(code), "x"]);
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stdout, new RegExp(`job says hi ${code}\\+x`));
        assert.ok(!r.stdout.includes("--- agentos"), "kernel notes are not streamed");
      }
      const hog = await runCli([
        "run",
        "--memory",
        "64M",
        "--socket",
        none,
        "const k = []; for (;;) { k.push(new Uint8Array(1 << 22).fill(1)); await new Promise((r) => setTimeout(r, 2)); }",
      ]);
      assert.notEqual(hog.code, 0);
      assert.match(hog.stderr, /memory limit 64 MiB exceeded/);
      const bad = await runCli(["run", "--level", "root", "1", "--socket", none]);
      assert.equal(bad.code, 2);
      // Nothing is left behind: no socket, no agent.
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["job.ts"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "agentos spawn, list, logs, kill, and run against a running kernel",
  ...opts,
  async fn() {
    const k = await startKernel();
    try {
      const s = ["--socket", k.socket];
      const sp = await runCli([
        "spawn",
        "svc",
        `console.log("svc up " + Deno.args[0]); setInterval(() => {}, 1000);`,
        "--memory",
        "256M",
        "--timeout",
        "10m",
        "--restart",
        "on-failure",
        ...s,
        "--json",
        "--",
        "arg1",
      ]);
      assert.equal(sp.code, 0, sp.stderr);
      const spawned = JSON.parse(sp.stdout);
      assert.equal(spawned.name, "svc");
      const listed = await runCli(["list", ...s, "--json"]);
      const rows = JSON.parse(listed.stdout);
      assert.ok(Array.isArray(rows) && rows.some((r: { name: string }) => r.name === "svc"));
      const table = await runCli(["list", ...s]);
      assert.match(table.stdout, /NAME\s+PID\s+STATE/);
      assert.match(table.stdout, /svc\s+\d+\s+running/);
      await waitFor(async () =>
        (await runCli(["logs", "svc", ...s])).stdout.includes("svc up arg1")
      );
      const dup = await runCli(["spawn", "svc", "1", ...s]);
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /taken/);
      // logs -f follows the file until interrupted.
      const follow = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "logs", "svc", "-f", ...s],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let followed = "";
      const reader = (async () => {
        for await (const chunk of follow.stdout) followed += new TextDecoder().decode(chunk);
      })();
      try {
        await waitFor(() => followed.includes("svc up arg1"), 20_000, "logs -f output");
      } finally {
        follow.kill("SIGINT");
        const st = await follow.status;
        await reader;
        await follow.stderr.cancel();
        assert.equal(st.code, 0);
      }
      const killed = await runCli(["kill", "svc", ...s]);
      assert.equal(killed.code, 0, killed.stderr);
      assert.match(killed.stdout, /killed svc/);
      const again = await runCli(["kill", "nobody", ...s]);
      assert.equal(again.code, 1);
      const noLog = await runCli(["logs", "nobody", ...s]);
      assert.equal(noLog.code, 1);
      const run = await runCli([
        "run",
        "console.log('in kernel'); Deno.exit(5)",
        "--name",
        "r1",
        ...s,
      ]);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stdout, /in kernel/);
      const usage = await runCli(["spawn", "only-name", ...s]);
      assert.equal(usage.code, 2);
    } finally {
      await k.stop();
    }
  },
});
