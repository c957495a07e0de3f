/**
 * `agentos send` and `agentos recv` against a real kernel.
 */
import assert from "node:assert/strict";
import { runCli, startKernel } from "./helpers/kernel.ts";

Deno.test("ipc cli: recv --name --wait gets what send delivers; errors and usage", async () => {
  const k = await startKernel();
  try {
    const s = ["--socket", k.socket];
    const receiving = runCli([
      "recv",
      ...s,
      "--name",
      "inbox",
      "--wait",
      "--timeout",
      "30000",
      "--json",
    ]);
    // Each `send` is its own connection; retry until the receiver has registered its name.
    const deadline = Date.now() + 20_000;
    let sent;
    for (;;) {
      sent = await runCli(["send", ...s, "--name", "cli-sender", "inbox", '{"hello": "world"}']);
      if (sent.code === 0) break;
      assert.match(sent.stdout, /NOT_FOUND/, sent.stdout + sent.stderr);
      assert.ok(Date.now() < deadline, "the receiver never registered");
    }
    assert.match(sent.stdout, /delivered to inbox/);
    const got = await receiving;
    assert.equal(got.code, 0, got.stderr);
    const r = JSON.parse(got.stdout);
    assert.equal(r.success, true);
    assert.equal(r.count, 1);
    assert.deepEqual(r.messages[0].message, { hello: "world" });
    assert.equal(r.messages[0].from_name, "cli-sender");

    // Human output; nothing waiting.
    const empty = await runCli(["recv", ...s]);
    assert.equal(empty.code, 0);
    assert.match(empty.stderr, /no messages/);

    // Not delivered: exit 1 with the kernel's reason.
    const missing = await runCli(["send", ...s, "nobody", "1"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /NOT_FOUND/);
    const badId = await runCli(["send", ...s, "--json", "4000000", "1"]);
    assert.equal(badId.code, 1);
    assert.equal(JSON.parse(badId.stdout).code, "NOT_FOUND");

    // Usage errors: exit 2.
    for (
      const args of [
        ["send", ...s, "inbox", "not json"],
        ["send", ...s, "inbox"],
        ["send", ...s, "99999999999", "1"],
        ["recv", ...s, "--timeout", "100"],
        ["recv", ...s, "--wait", "--max", "0"],
        ["recv", ...s, "--wait", "--timeout", "soon"],
      ]
    ) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    // A bad --name is the kernel's INVALID_MSG, reported as a failure.
    const badName = await runCli(["recv", ...s, "--name", "no spaces"]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /cannot register/);
  } finally {
    await k.stop();
  }
});
