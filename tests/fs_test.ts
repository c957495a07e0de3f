/**
 * READ and WRITE against a real kernel: escapes, blocked secrets under a fake HOME, paging of
 * large files, binary round trips, append, create, mode bits and concurrent writers.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fakeHome } from "./helpers/fixtures.ts";
import { startKernel, type TestKernel } from "./helpers/kernel.ts";
import { type AgentOSClient, isKernelError } from "../sdk/mod.ts";
import { MAX_PAYLOAD } from "../kernel/protocol.ts";

interface Env {
  k: TestKernel;
  tmp: string;
  home: string;
  outside: string;
}

async function setup(): Promise<Env> {
  const { tmp, home, outside } = await fakeHome("aosfs");
  const k = await startKernel({ env: { HOME: home } });
  return { k, tmp, home, outside };
}

async function teardown(e: Env): Promise<void> {
  await e.k.stop();
  await Deno.remove(e.tmp, { recursive: true });
}

/** A client, lowered to `level`, and its workspace path. */
async function clientAt(
  e: Env,
  level: "unrestricted" | "standard" | "sandboxed",
): Promise<{ c: AgentOSClient; ws: string }> {
  const c = await e.k.client();
  const w = await c.writeFile("probe.txt", "probe");
  assert.ok(w.success, JSON.stringify(w));
  if (level !== "unrestricted") assert.ok((await c.setPermissions({ level })).success);
  return { c, ws: dirname(w.path) };
}

function code(r: unknown): string | undefined {
  return isKernelError(r) ? r.code : undefined;
}

function deniedText(r: unknown): string {
  assert.ok(isKernelError(r), `expected a refusal, got ${JSON.stringify(r).slice(0, 200)}`);
  assert.equal(r.code, "PERMISSION_DENIED", r.error);
  assert.match(r.error, /^Permission denied/);
  return r.error;
}

Deno.test("READ/WRITE escapes: traversal, symlinks, other workspaces, secrets", async (t) => {
  const e = await setup();
  try {
    const sb = await clientAt(e, "sandboxed");
    const std = await clientAt(e, "standard");
    const root = await clientAt(e, "unrestricted");
    await t.step("traversal out of a sandboxed workspace", async () => {
      deniedText(await sb.c.readFile("../../../../../../etc/hostname"));
      deniedText(await sb.c.readFile(join(e.outside, "public.txt")));
      deniedText(await sb.c.readFile(`${sb.ws}/../../../outside/public.txt`));
      deniedText(await sb.c.writeFile("../escape.txt", "x"));
      await assert.rejects(Deno.stat(join(dirname(sb.ws), "escape.txt")));
      await Deno.mkdir(join(sb.ws, "nested"));
      for (const p of ["./probe.txt", "nested/../probe.txt", `${sb.ws}/nested/../probe.txt`]) {
        const ok = await sb.c.readFile(p);
        assert.ok(ok.success && ok.content === "probe", p);
      }
    });
    await t.step("another identity's workspace is refused at every level", async () => {
      for (const x of [sb, std, root]) {
        const other = x === std ? sb : std;
        assert.match(
          deniedText(await x.c.readFile(join(other.ws, "probe.txt"))),
          /another identity's workspace/,
        );
        deniedText(await x.c.writeFile(join(other.ws, "planted.txt"), "x"));
      }
      await assert.rejects(Deno.stat(join(std.ws, "planted.txt")));
    });
    await t.step("blocked secrets under the fake HOME", async () => {
      for (const x of [std, root]) {
        assert.match(
          deniedText(await x.c.readFile(join(e.home, ".ssh", "id_rsa"))),
          /blocked/,
        );
        deniedText(await x.c.readFile("~/.ssh/id_rsa".replace("~", e.home)));
        deniedText(await x.c.writeFile(join(e.home, ".ssh", "authorized_keys"), "evil"));
        await Deno.mkdir(join(e.home, "x"), { recursive: true });
        deniedText(await x.c.readFile(`${e.home}/x/../.ssh/id_rsa`));
      }
      await assert.rejects(Deno.stat(join(e.home, ".ssh", "authorized_keys")));
      deniedText(await std.c.readFile("/proc/self/environ"));
    });
    await t.step("a symlink in the workspace pointing at a secret or outside", async () => {
      await Deno.symlink(join(e.home, ".ssh"), join(std.ws, "keys"));
      await Deno.symlink(join(e.home, ".ssh", "id_rsa"), join(std.ws, "key"));
      for (const p of ["keys/id_rsa", "key"]) {
        const r = await std.c.readFile(p);
        assert.match(deniedText(r), /blocked/);
        assert.doesNotMatch(JSON.stringify(r), /FAKE SECRET/);
      }
      deniedText(await std.c.writeFile("keys/authorized_keys", "evil"));
      await Deno.symlink(e.outside, join(sb.ws, "out"));
      deniedText(await sb.c.readFile("out/public.txt"));
      deniedText(await sb.c.writeFile("out/new.txt", "x"));
      await assert.rejects(Deno.stat(join(e.outside, "new.txt")));
      // a symlink to another workspace
      await Deno.symlink(sb.ws, join(std.ws, "peer"));
      deniedText(await std.c.readFile("peer/probe.txt"));
    });
    await t.step("WRITE never writes through a final-component symlink", async () => {
      await Deno.writeTextFile(join(sb.ws, "target.txt"), "original");
      await Deno.symlink(join(sb.ws, "target.txt"), join(sb.ws, "link.txt"));
      assert.match(deniedText(await sb.c.writeFile("link.txt", "changed")), /symbolic link/);
      assert.match(
        deniedText(await sb.c.writeFile("link.txt", "x", { mode: "append" })),
        /symbolic link/,
      );
      assert.equal(await Deno.readTextFile(join(sb.ws, "target.txt")), "original");
      assert.ok((await Deno.lstat(join(sb.ws, "link.txt"))).isSymlink);
      // dangling link pointing outside
      await Deno.symlink(join(e.outside, "made-by-link.txt"), join(std.ws, "dangling"));
      deniedText(await std.c.writeFile("dangling", "x", { mode: "create" }));
      await assert.rejects(Deno.stat(join(e.outside, "made-by-link.txt")));
      // reading through an in-workspace link is fine
      const r = await sb.c.readFile("link.txt");
      assert.ok(r.success && r.content === "original");
    });
    await t.step("bad paths and kinds of files", async () => {
      assert.equal(code(await sb.c.readFile("")), "INVALID_MSG");
      assert.equal(code(await sb.c.readFile("a\0b")), "INVALID_MSG");
      assert.equal(code(await sb.c.readFile("missing.txt")), "NOT_FOUND");
      assert.equal(code(await std.c.readFile(join(e.outside, "missing.txt"))), "NOT_FOUND");
      await Deno.mkdir(join(sb.ws, "adir"));
      const dirRead = await sb.c.readFile("adir");
      assert.equal(code(dirRead), "INVALID_MSG");
      assert.match((dirRead as { error: string }).error, /is a directory/);
      assert.equal(code(await sb.c.writeFile("adir", "x")), "INVALID_MSG");
      const fifo = join(sb.ws, "fifo");
      const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(mk.success);
      const f = await sb.c.readFile("fifo");
      assert.equal(code(f), "INVALID_MSG", JSON.stringify(f));
      assert.match((f as { error: string }).error, /not a regular file/);
      assert.equal(
        code(
          await sb.c.writeFile("x.bin", "not base64!", { mode: "write" }).then(() =>
            sb.c.request("WRITE", { path: "x.bin", content: "@@@", encoding: "base64" })
          ),
        ),
        "INVALID_MSG",
      );
      const extra = await sb.c.request("READ", { path: "probe.txt", bogus: 1 } as never);
      assert.equal(code(extra), "INVALID_MSG");
    });
  } finally {
    await teardown(e);
  }
});

Deno.test("READ/WRITE contents: paging, binary, append, create, mode bits, mkdirs", async (t) => {
  const e = await setup();
  try {
    const { c, ws } = await clientAt(e, "sandboxed");
    await t.step("offset and length", async () => {
      assert.ok((await c.writeFile("abc.txt", "hello, world")).success);
      const r = await c.readFile("abc.txt", { offset: 7, length: 5 });
      assert.ok(r.success);
      assert.equal(r.content, "world");
      assert.equal(r.size, 12);
      assert.equal(r.offset, 7);
      assert.equal(r.truncated, false);
      const head = await c.readFile("abc.txt", { length: 5 });
      assert.ok(head.success && head.content === "hello" && head.truncated);
      const past = await c.readFile("abc.txt", { offset: 100 });
      assert.ok(past.success && past.content === "" && !past.truncated);
      // a page never ends inside a character
      assert.ok((await c.writeFile("u.txt", "aé€😀")).success);
      const p1 = await c.readFile("u.txt", { length: 4 });
      assert.ok(p1.success);
      assert.equal(p1.content, "aé");
      assert.equal(p1.length, 3);
    });
    await t.step(
      "a 5 MB file comes back in pages under 1 MiB that reassemble exactly",
      async () => {
        const line = "The quick brown fox jumps over the lazy dog — ünïcödé 😀 line\n";
        const text = line.repeat(Math.ceil(5_000_000 / new TextEncoder().encode(line).length));
        await Deno.writeTextFile(join(ws, "big.txt"), text);
        const size = (await Deno.stat(join(ws, "big.txt"))).size;
        assert.ok(size >= 5_000_000);
        let offset = 0;
        let pages = 0;
        let out = "";
        for (;;) {
          const raw = await c.call("READ", { path: "big.txt", offset });
          assert.ok(raw.payload.length <= MAX_PAYLOAD);
          const r = JSON.parse(new TextDecoder().decode(raw.payload));
          assert.equal(r.success, true, r.error);
          assert.equal(r.size, size);
          out += r.content;
          offset += r.length;
          pages++;
          if (!r.truncated) break;
        }
        assert.ok(pages >= 5, `${pages} pages`);
        assert.equal(offset, size);
        assert.ok(out === text, "reassembled text equals the file");
        const all = await c.readAll("big.txt");
        assert.ok(all instanceof Uint8Array);
        assert.equal(all.length, size);
      },
    );
    await t.step("text that JSON-escapes 6x still fits each page", async () => {
      const ctl = "\u0001".repeat(2_000_000);
      await Deno.writeTextFile(join(ws, "ctl.txt"), ctl);
      let offset = 0;
      let out = "";
      for (;;) {
        const raw = await c.call("READ", { path: "ctl.txt", offset });
        assert.ok(raw.payload.length <= MAX_PAYLOAD, `${raw.payload.length}`);
        const r = JSON.parse(new TextDecoder().decode(raw.payload));
        assert.equal(r.success, true, r.error);
        out += r.content;
        offset += r.length;
        if (!r.truncated) break;
      }
      assert.ok(out === ctl);
    });
    await t.step("binary round trip through base64", async () => {
      const bytes = new Uint8Array(300_000);
      for (let i = 0; i < bytes.length; i += 65536) {
        crypto.getRandomValues(bytes.subarray(i, i + 65536));
      }
      bytes[0] = 0xff;
      bytes[1] = 0xfe;
      const w = await c.writeFile("blob.bin", bytes);
      assert.ok(w.success && w.bytes_written === bytes.length);
      assert.deepEqual(await Deno.readFile(join(ws, "blob.bin")), bytes);
      const back = await c.readAll("blob.bin");
      assert.ok(back instanceof Uint8Array);
      assert.deepEqual(back, bytes);
      const asText = await c.readFile("blob.bin");
      assert.equal(code(asText), "INVALID_MSG");
      assert.match((asText as { error: string }).error, /base64/);
      // a large binary file pages in base64 too
      const big = new Uint8Array(2_500_000);
      for (let i = 0; i < big.length; i += 65536) {
        crypto.getRandomValues(big.subarray(i, i + 65536));
      }
      await Deno.writeFile(join(ws, "big.bin"), big);
      const page = await c.readFile("big.bin", { encoding: "base64" });
      assert.ok(page.success && page.truncated && page.length < big.length);
      assert.deepEqual(await c.readAll("big.bin"), big);
    });
    await t.step("append", async () => {
      assert.ok((await c.writeFile("log.txt", "a", { mode: "append" })).success, "creates");
      assert.ok((await c.writeFile("log.txt", "b", { mode: "append" })).success);
      assert.ok((await c.writeFile("log.txt", new Uint8Array([0x63]), { mode: "append" })).success);
      assert.equal(await Deno.readTextFile(join(ws, "log.txt")), "abc");
    });
    await t.step("create fails if the file exists", async () => {
      const first = await c.writeFile("once.txt", "first", { mode: "create" });
      assert.ok(first.success);
      const again = await c.writeFile("once.txt", "second", { mode: "create" });
      assert.equal(code(again), "ERROR");
      assert.match((again as { error: string }).error, /already exists/);
      assert.equal(await Deno.readTextFile(join(ws, "once.txt")), "first");
      await Deno.symlink("nowhere", join(ws, "dangling-create"));
      assert.equal(
        (await c.writeFile("dangling-create", "x", { mode: "create" })).success,
        false,
      );
    });
    await t.step("write keeps the existing file's mode bits", async () => {
      const p = join(ws, "script.sh");
      await Deno.writeTextFile(p, "#!/bin/sh\n");
      await Deno.chmod(p, 0o750);
      const before = await Deno.stat(p);
      assert.ok((await c.writeFile("script.sh", "#!/bin/sh\necho hi\n")).success);
      const after = await Deno.stat(p);
      assert.equal(after.mode! & 0o777, 0o750);
      assert.notEqual(after.ino, before.ino, "replaced atomically by rename");
      assert.equal(await Deno.readTextFile(p), "#!/bin/sh\necho hi\n");
      await Deno.chmod(p, 0o600);
      assert.ok((await c.writeFile("script.sh", "x", { mode: "append" })).success);
      assert.equal((await Deno.stat(p)).mode! & 0o777, 0o600);
    });
    await t.step("mkdirs", async () => {
      const no = await c.writeFile("d1/d2/f.txt", "x");
      assert.equal(code(no), "NOT_FOUND");
      assert.match((no as { error: string }).error, /mkdirs/);
      assert.ok((await c.writeFile("d1/d2/f.txt", "x", { mkdirs: true })).success);
      assert.equal(await Deno.readTextFile(join(ws, "d1/d2/f.txt")), "x");
    });
    await t.step("a client's empty workspace is removed when it disconnects", async () => {
      const kept = await e.k.client();
      const w1 = await kept.writeFile("keep.txt", "kept");
      assert.ok(w1.success);
      const gone = await e.k.client();
      const w2 = await gone.writeFile("tmp.txt", "x");
      assert.ok(w2.success);
      await Deno.remove(w2.path);
      kept.close();
      gone.close();
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        if (!(await Deno.stat(dirname(w2.path)).then(() => true, () => false))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await assert.rejects(Deno.stat(dirname(w2.path)), "the empty workspace was removed");
      assert.equal(await Deno.readTextFile(w1.path), "kept", "a workspace with files is kept");
    });
    await t.step("no temporary files are left behind", async () => {
      const names = [];
      for await (const entry of Deno.readDir(ws)) names.push(entry.name);
      assert.deepEqual(names.filter((n) => n.includes(".agentos-write-")), []);
    });
  } finally {
    await teardown(e);
  }
});

Deno.test("concurrent writers to one file never produce a torn file", async () => {
  const e = await setup();
  try {
    const writers = 16;
    const clients: AgentOSClient[] = [];
    for (let i = 0; i < writers; i++) clients.push(await e.k.client());
    const target = join(e.outside, "shared.txt");
    const contents = clients.map((_, i) => String.fromCharCode(65 + i).repeat(200_000 + i * 1000));
    const reader = await e.k.client();
    assert.ok((await reader.writeFile(target, "initial")).success);
    const versions = ["initial", ...contents];
    for (let round = 0; round < 3; round++) {
      // Writers and readers race; readers always see one whole version.
      const reads = Promise.all(Array.from({ length: 8 }, () => reader.readFile(target)));
      const results = await Promise.all(
        clients.map((c, i) => c.writeFile(target, contents[i])),
      );
      for (const r of results) assert.ok(r.success, JSON.stringify(r).slice(0, 300));
      for (const r of await reads) {
        assert.ok(r.success, JSON.stringify(r).slice(0, 300));
        assert.ok(versions.includes(r.content), "a read saw a whole version");
      }
      const final = await Deno.readTextFile(target);
      assert.ok(contents.includes(final), `round ${round}: the file equals one writer's content`);
    }
    const leftovers = [];
    for await (const entry of Deno.readDir(e.outside)) leftovers.push(entry.name);
    assert.deepEqual(leftovers.sort(), ["public.txt", "shared.txt"]);
  } finally {
    await teardown(e);
  }
});

Deno.test("a directory swapped for a symlink during READ/WRITE never leaks or escapes", async () => {
  const e = await setup();
  try {
    const { c, ws } = await clientAt(e, "sandboxed");
    const secretDir = join(e.outside, "secret-dir");
    await Deno.mkdir(secretDir);
    await Deno.writeTextFile(join(secretDir, "f"), "OUTSIDE-SECRET");
    await Deno.mkdir(join(ws, "d"));
    await Deno.writeTextFile(join(ws, "d", "f"), "public");
    let stop = false;
    let swaps = 0;
    const swapper = (async () => {
      while (!stop) {
        await Deno.rename(join(ws, "d"), join(ws, "d.real"));
        await Deno.symlink(secretDir, join(ws, "d"));
        await new Promise((r) => setTimeout(r, 0));
        await Deno.remove(join(ws, "d"));
        await Deno.rename(join(ws, "d.real"), join(ws, "d"));
        swaps++;
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    try {
      for (let i = 0; i < 300; i++) {
        const [r, w] = await Promise.all([
          c.readFile("d/f"),
          c.writeFile("d/f", "public", { mode: i % 2 ? "write" : "append" }),
        ]);
        assert.doesNotMatch(JSON.stringify(r), /OUTSIDE-SECRET/, "the secret never leaks");
        count(r.success ? "read ok" : `read ${(r as { code: string }).code}`);
        count(w.success ? "write ok" : `write ${(w as { code: string }).code}`);
      }
    } finally {
      stop = true;
      await swapper;
    }
    assert.equal(await Deno.readTextFile(join(secretDir, "f")), "OUTSIDE-SECRET");
    const names = [];
    for await (const entry of Deno.readDir(secretDir)) names.push(entry.name);
    assert.deepEqual(names, ["f"], "nothing was written into the outside directory");
    assert.ok(swaps > 10, `swapped ${swaps} times`);
    console.log("outcomes under swapping:", Object.fromEntries(outcomes), "swaps:", swaps);
  } finally {
    await teardown(e);
  }
});
