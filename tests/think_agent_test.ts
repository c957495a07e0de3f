/**
 * The API key stays in the kernel: a sandboxed (and a standard, and a readonly) agent (a real Deno subprocess spawned by a real
 * kernel) looks for it in its environment, in /proc, and through every syscall it can call,
 * and finds nothing — while THINK works for it through the kernel. The agent reports what it
 * saw through THINK itself, to the fake Messages API this test serves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKernel, type TestKernel } from "./helpers/kernel.ts";
import { promptOf, type RecordedRequest, startFakeAnthropic } from "./helpers/fake_anthropic.ts";

const KEY = `test-key-${crypto.randomUUID()}`;

const AGENT = `
import { connect } from "agentos";
const kernelPid = Deno.args[0];
const report = {};
const attempt = (name, fn) => {
  try {
    report[name] = fn() ?? null;
  } catch (e) {
    report[name] = "denied: " + (e?.name ?? String(e));
  }
};
attempt("env_get", () => Deno.env.get("ANTHROPIC_API_KEY"));
attempt("env_all", () => Deno.env.toObject());
attempt("proc_self_environ", () => Deno.readTextFileSync("/proc/self/environ"));
attempt("proc_kernel_environ", () => Deno.readTextFileSync("/proc/" + kernelPid + "/environ"));
attempt("proc_parent_environ", () => Deno.readTextFileSync("/proc/" + Deno.ppid + "/environ"));
const os = await connect();
report.think = await os.think("agent asks");
const decoder = new TextDecoder();
report.ops = {};
for (let op = 0; op < 0xff; op++) {
  const r = await os.call(op, op === 0 ? "ping" : "{}");
  report.ops[op] = decoder.decode(r.payload);
}
await os.think(JSON.stringify({ report }));
`;

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const level of ["sandboxed", "standard", "readonly"] as const) {
  Deno.test(`a ${level} agent cannot find the API key in its environment or through any syscall`, async () => {
    const fake = await startFakeAnthropic();
    let k: TestKernel | undefined;
    try {
      k = await startKernel({ env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url } });
      // The socket answers before the kernel's services have all started; wait for them.
      await waitFor(
        "the kernel to finish starting",
        () => k!.logs().includes("kernel listening") ? true : undefined,
      );
      const c = await k.client();
      const spawned = await c.spawn({
        name: `key-hunter-${level}`,
        script: AGENT,
        level,
        args: [String(k.pid)],
      });
      assert.equal(spawned.success, true, JSON.stringify(spawned) + "\n" + k.logs());
      const reportRequest: RecordedRequest = await waitFor(
        "the agent's report",
        () => fake.requests.find((r) => promptOf(r)?.startsWith('{"report"')),
      );
      const raw = promptOf(reportRequest)!;
      assert.ok(!raw.includes(KEY), "the agent found the key");
      const { report } = JSON.parse(raw);
      // The agent could THINK: the kernel used its key for it.
      assert.equal(report.think.success, true, JSON.stringify(report.think));
      assert.equal(report.think.content, "echo: agent asks");
      const agentCall = fake.requestsFor("agent asks")[0];
      assert.equal(
        agentCall.headers["authorization"] ?? agentCall.headers["x-api-key"],
        `Bearer ${KEY}`,
      );
      // Its environment holds no key, and the kernel's is out of reach.
      assert.ok(report.env_get === null || String(report.env_get).startsWith("denied"));
      assert.ok(
        typeof report.env_all === "string" || !("ANTHROPIC_API_KEY" in report.env_all),
        JSON.stringify(report.env_all),
      );
      assert.match(String(report.proc_kernel_environ), /^denied/);
      assert.match(String(report.proc_parent_environ), /^denied/);
      // Every op answered something, and none of it was the key.
      assert.equal(Object.keys(report.ops).length, 0xff);
      assert.equal(report.ops[0], "ping");
      // Nothing the kernel or the agent logged holds it either.
      const logs = join(k.stateDir, "logs");
      for await (const entry of Deno.readDir(logs)) {
        if (!entry.isFile) continue;
        const text = await Deno.readTextFile(join(logs, entry.name));
        assert.ok(!text.includes(KEY), `the key is in ${entry.name}`);
      }
      assert.ok(!k.logs().includes(KEY), "the key is in the kernel's log");
    } finally {
      if (k) await k.stop();
      await fake.close();
    }
  });
}
