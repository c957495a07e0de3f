/**
 * The CLI's conventions, for every command: `--help`/`-h`/`agentos help <command>` exit 0 and
 * show its usage; an unknown flag is a usage error (exit 2) naming the flag; bad numbers name
 * their flag; `agentos call --help` lists every op of the registry; `--json` prints the
 * response (kernel errors included) as JSON with exit code 1 for an error.
 */
import assert from "node:assert/strict";
import { commands, main } from "../main.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { runCli, startKernel } from "./helpers/kernel.ts";

/** Run `main(args)` in this process, capturing what it prints. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("CLI: every command answers --help, -h and `agentos help <command>` with its usage", async () => {
  assert.ok(commands.length >= 13);
  for (const c of commands) {
    for (const args of [[c.name, "--help"], [c.name, "-h"], ["help", c.name]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^agentos ${c.name} — `), args.join(" "));
      assert.match(r.stdout, new RegExp(`\\nUsage: agentos ${c.name}\\b`), args.join(" "));
      assert.equal(r.stderr, "");
    }
    for (const alias of c.aliases ?? []) {
      assert.match((await cli([alias, "--help"])).stdout, new RegExp(`Usage: agentos ${c.name}`));
    }
    // Every command that talks to a kernel documents --socket and --json the same way.
    if (c.name !== "kernel") {
      assert.match(c.help, /\n {2}--socket PATH {3}kernel socket/, c.name);
      assert.match(c.help, /\n {2}--json {10}print machine-readable JSON/, c.name);
    }
    assert.match(c.help, /\n {2}-h, --help {2,}show this help/, c.name);
  }
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  for (const c of commands) {
    assert.ok(top.stdout.includes(`\n  ${c.name} `) && top.stdout.includes(c.summary), c.name);
  }
  assert.equal((await cli([])).code, 2, "no command is a usage error");
});

Deno.test("CLI: an unknown flag is a usage error naming the flag, for every command", async () => {
  for (const c of commands) {
    const r = await cli([c.name, "--no-such-flag"]);
    assert.equal(r.code, 2, `${c.name}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^agentos ${c.name}: .*--no-such-flag`), c.name);
    assert.match(r.stderr, new RegExp(`run \`agentos ${c.name} --help\`$`), c.name);
  }
  const unknown = await cli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

Deno.test("CLI: bad numbers are usage errors that name their flag", async () => {
  const cases: [string[], RegExp][] = [
    [["recv", "--max", "0"], /--max must be a whole number from 1 to 10000/],
    [["recv", "--wait", "--timeout", "soon"], /--timeout must be a whole number of milliseconds/],
    [["recv", "--timeout", "10"], /--timeout needs --wait/],
    [["think", "hi", "--max-tokens", "0"], /--max-tokens must be a whole number from 1 to/],
    [["think", "hi", "--temperature", "3"], /--temperature must be a number from 0 to 1/],
    [["kernel", "--frame-timeout", "5"], /--frame-timeout must be a whole number of milliseconds/],
    [["kernel", "--frame-timeout", "1.5"], /--frame-timeout must be a whole number/],
    [["kernel", "--agent-log-max", "10"], /--agent-log-max must be a whole number of bytes/],
    [["kernel", "--llm-concurrency", "0"], /--llm-concurrency must be a whole number from 1/],
    [["kernel", "--client-llm-max-calls", "many"], /--client-llm-max-calls must be a whole number/],
    [["kernel", "--mailbox-max-bytes", "lots"], /--mailbox-max-bytes must be a positive/],
    [["send", "0", "1"], /"0" is not a valid identity id/],
    [["call", "NOPE"], /unknown op "NOPE"/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});

Deno.test("CLI: `agentos call --help` lists every op of the registry with its code", async () => {
  const help = (await cli(["call", "--help"])).stdout;
  for (const s of allSyscalls) {
    const hex = `0x${s.op.toString(16).padStart(2, "0")}`;
    assert.match(help, new RegExp(`\\n {2}${s.name} +${hex} {2}\\S`), s.name);
  }
});

Deno.test({
  name: "CLI: --json prints the response, kernel errors included, with exit codes 0 and 1",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const k = await startKernel({ args: ["--client-level", "minimal"] });
    const s = ["--socket", k.socket];
    try {
      const json = async (args: string[], code: number) => {
        const r = await runCli([...args, ...s, "--json"]);
        assert.equal(r.code, code, `${args.join(" ")}: ${r.stdout} ${r.stderr}`);
        return JSON.parse(r.stdout);
      };
      assert.equal((await json(["status"], 0)).running, true);
      assert.equal((await json(["recv"], 0)).count, 0);
      assert.equal((await json(["send", "nobody", "1"], 1)).code, "NOT_FOUND");
      assert.equal((await json(["stop"], 1)).code, "PERMISSION_DENIED");
      const think = await json(["think", "hi"], 1);
      assert.equal(think.success, false);
      assert.equal(typeof think.code, "string");
      assert.equal((await json(["call", "KERNEL_STATUS"], 0)).level, "minimal");
      assert.equal((await json(["call", "SHUTDOWN"], 1)).code, "PERMISSION_DENIED");

      // Without --json a kernel error is one line on stderr naming its code, exit 1.
      const stop = await runCli(["stop", ...s]);
      assert.equal(stop.code, 1);
      assert.match(stop.stderr, /^agentos stop: PERMISSION_DENIED: Permission denied/);
      assert.equal(stop.stdout, "");
    } finally {
      await k.stop();
    }
  },
});
