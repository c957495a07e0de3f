import assert from "node:assert/strict";
import { join } from "node:path";
import { checkPath, isUnder, O, openVerified, underAnyOf } from "../sandbox/paths.ts";
import { defaultPermissions, type Level } from "../sandbox/permissions.ts";
import type { Identity } from "../kernel/identity.ts";
import { SyscallError } from "../kernel/errors.ts";

interface Fixture {
  root: string;
  home: string;
  workspaces: string;
  identity(level: Level, name?: string): Identity;
}

async function fixture(): Promise<Fixture> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "aospaths" }));
  const home = join(root, "home");
  const workspaces = join(root, "state", "workspaces");
  await Deno.mkdir(join(home, ".ssh"), { recursive: true });
  await Deno.writeTextFile(join(home, ".ssh", "id_rsa"), "SECRET");
  await Deno.mkdir(join(workspaces, "me"), { recursive: true });
  await Deno.mkdir(join(workspaces, "other"), { recursive: true });
  await Deno.writeTextFile(join(workspaces, "other", "x.txt"), "other's");
  await Deno.mkdir(join(root, "outside"), { recursive: true });
  await Deno.writeTextFile(join(root, "outside", "o.txt"), "outside");
  return {
    root,
    home,
    workspaces,
    identity(level, name = "me") {
      const workspace = join(workspaces, name);
      return {
        id: 7,
        kind: "client",
        name: null,
        parentId: null,
        workspace,
        permissions: defaultPermissions(level, {
          workspace,
          blocked: [join(home, ".ssh"), join(root, "state", "kernel")],
        }),
      };
    },
  };
}

async function rejects(p: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SyscallError, `expected SyscallError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (code === "PERMISSION_DENIED") assert.match(err.message, /^Permission denied/);
    if (text) assert.match(err.message, text);
    return;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

Deno.test("isUnder compares whole components", () => {
  assert.ok(isUnder("/a/b", "/a/b"));
  assert.ok(isUnder("/a/b/c", "/a/b"));
  assert.ok(isUnder("/a/b/c", "/a/b/"));
  assert.ok(isUnder("/anything", "/"));
  assert.ok(!isUnder("/a/bc", "/a/b"));
  assert.ok(!isUnder("/a", "/a/b"));
  assert.ok(!isUnder("relative", "/"));
});

Deno.test("underAnyOf agrees with isUnder on every pair", () => {
  const paths = ["/", "/a", "/a/", "/a/b", "/a//b/c", "/a/bc", "/ab", "/a/b/c/d", "rel", "/x/./y"];
  for (const root of paths) {
    for (const path of paths) {
      assert.equal(underAnyOf([root])(path), isUnder(path, root), `${path} under ${root}`);
    }
  }
  const many = underAnyOf(["/b", "/a/b", "rel"]);
  assert.ok(many("/a/b/x") && many("/b") && !many("/a") && !many("/a/bc") && !many("rel"));
  assert.ok(!underAnyOf([])("/a"));
});

Deno.test("checkPath", async (t) => {
  const f = await fixture();
  try {
    const sandboxed = f.identity("sandboxed");
    const standard = f.identity("standard");
    const ws = join(f.workspaces, "me");
    await Deno.writeTextFile(join(ws, "a.txt"), "A");

    await t.step("relative paths are relative to the workspace", async () => {
      assert.equal(await checkPath(sandboxed, "a.txt", "read"), join(ws, "a.txt"));
      assert.equal(
        await checkPath(sandboxed, "./sub/../a.txt", "read").catch((e) => e.code),
        "NOT_FOUND",
      );
      assert.equal(await checkPath(sandboxed, "new.txt", "write"), join(ws, "new.txt"));
    });
    await t.step("empty and NUL paths are INVALID_MSG", async () => {
      await rejects(checkPath(sandboxed, "", "read"), "INVALID_MSG");
      await rejects(checkPath(sandboxed, "a\0b", "read"), "INVALID_MSG");
    });
    await t.step("missing file on read is NOT_FOUND inside, denied outside", async () => {
      await rejects(checkPath(sandboxed, "nope.txt", "read"), "NOT_FOUND");
      await rejects(
        checkPath(sandboxed, join(f.root, "outside", "nope"), "read"),
        "PERMISSION_DENIED",
      );
    });
    await t.step("traversal out of the workspace is refused for sandboxed", async () => {
      await rejects(checkPath(sandboxed, "../../../outside/o.txt", "read"), "PERMISSION_DENIED");
      await rejects(
        checkPath(sandboxed, join(f.root, "outside", "o.txt"), "read"),
        "PERMISSION_DENIED",
      );
      assert.equal(
        await checkPath(standard, "../../../outside/o.txt", "read"),
        join(f.root, "outside", "o.txt"),
      );
    });
    await t.step("other identities' workspaces are blocked, even for standard", async () => {
      await rejects(
        checkPath(standard, "../other/x.txt", "read"),
        "PERMISSION_DENIED",
        /another identity/,
      );
      await rejects(checkPath(standard, f.workspaces, "read"), "PERMISSION_DENIED");
      await rejects(
        checkPath(standard, join(f.workspaces, "new", "x"), "write", { allowMissingParents: true }),
        "PERMISSION_DENIED",
      );
      const unr = f.identity("unrestricted");
      await rejects(
        checkPath(unr, join(f.workspaces, "other", "x.txt"), "read"),
        "PERMISSION_DENIED",
      );
    });
    await t.step("blocked secrets are refused; through a symlink too", async () => {
      await rejects(
        checkPath(standard, join(f.home, ".ssh", "id_rsa"), "read"),
        "PERMISSION_DENIED",
        /blocked/,
      );
      await rejects(checkPath(standard, join(f.home, ".ssh"), "read"), "PERMISSION_DENIED");
      await Deno.symlink(join(f.home, ".ssh"), join(ws, "keys"));
      await rejects(checkPath(standard, "keys/id_rsa", "read"), "PERMISSION_DENIED", /blocked/);
      await rejects(checkPath(sandboxed, "keys/id_rsa", "read"), "PERMISSION_DENIED");
      await Deno.symlink(join(f.root, "outside", "o.txt"), join(ws, "out-link"));
      await rejects(checkPath(sandboxed, "out-link", "read"), "PERMISSION_DENIED");
    });
    await t.step("a blocked path that is itself a symlink blocks its target", async () => {
      await Deno.mkdir(join(f.root, "real-aws"));
      await Deno.writeTextFile(join(f.root, "real-aws", "credentials"), "AWS");
      await Deno.symlink(join(f.root, "real-aws"), join(f.home, ".aws"));
      const id = f.identity("standard");
      id.permissions.filesystem.blocked.push(join(f.home, ".aws"));
      await rejects(
        checkPath(id, join(f.root, "real-aws", "credentials"), "read"),
        "PERMISSION_DENIED",
      );
    });
    await t.step("a blocked path under a symlinked parent blocks the real place", async () => {
      await Deno.symlink(f.home, join(f.root, "home-link"));
      const id = f.identity("standard");
      id.permissions.filesystem.blocked = [join(f.root, "home-link", ".ssh")];
      await rejects(checkPath(id, join(f.home, ".ssh", "id_rsa"), "read"), "PERMISSION_DENIED");
    });
    await t.step("/proc is always blocked", async () => {
      await rejects(checkPath(standard, "/proc/self/environ", "read"), "PERMISSION_DENIED");
    });
    await t.step("final-component symlink on write is refused", async () => {
      await Deno.symlink(join(ws, "a.txt"), join(ws, "a-link"));
      await rejects(checkPath(sandboxed, "a-link", "write"), "PERMISSION_DENIED", /symbolic link/);
      assert.equal(await checkPath(sandboxed, "a-link", "read"), join(ws, "a.txt"));
      await Deno.symlink(join(f.root, "outside", "new-file"), join(ws, "dangling"));
      await rejects(checkPath(standard, "dangling", "write"), "PERMISSION_DENIED", /symbolic link/);
      await rejects(checkPath(standard, "dangling", "read"), "NOT_FOUND");
      await rejects(
        checkPath(standard, "dangling/x/y", "write", { allowMissingParents: true }),
        "PERMISSION_DENIED",
      );
    });
    await t.step("missing parents need allowMissingParents", async () => {
      await rejects(checkPath(sandboxed, "d1/d2/f.txt", "write"), "NOT_FOUND", /mkdirs/);
      assert.equal(
        await checkPath(sandboxed, "d1/d2/f.txt", "write", { allowMissingParents: true }),
        join(ws, "d1/d2/f.txt"),
      );
    });
    await t.step("extra blocked option", async () => {
      await rejects(
        checkPath(standard, join(f.root, "outside", "o.txt"), "read", {
          blocked: [join(f.root, "outside")],
        }),
        "PERMISSION_DENIED",
      );
      assert.ok(
        await checkPath(standard, join(f.root, "outside", "o.txt"), "read", {
          blocked: [join(f.root, "outsid")],
        }),
      );
    });
    await t.step("readonly may read but not write, minimal neither", async () => {
      const ro = f.identity("readonly");
      assert.ok(await checkPath(ro, "a.txt", "read"));
      await rejects(checkPath(ro, "a.txt", "write"), "PERMISSION_DENIED");
      const min = f.identity("minimal");
      await rejects(checkPath(min, "a.txt", "read"), "PERMISSION_DENIED");
    });
    await t.step("openVerified accepts a file replaced by rename after the open", async () => {
      await Deno.writeTextFile(join(ws, "r.txt"), "old");
      const checked = await checkPath(sandboxed, "r.txt", "read");
      const h = await openVerified(checked, O.O_RDONLY);
      await h.close();
      await Deno.writeTextFile(join(ws, "r2.txt"), "new");
      const held = await openVerified(checked, O.O_RDONLY);
      await Deno.rename(join(ws, "r2.txt"), join(ws, "r.txt"));
      const { verifyOpened } = await import("../sandbox/paths.ts");
      assert.ok(await verifyOpened(held, checked), "the unlinked file was the checked one");
      await held.close();
    });
    await t.step("the workspacesDir option blocks every other workspace", async () => {
      await Deno.mkdir(join(f.workspaces, "nested", "deep"), { recursive: true });
      const id = f.identity("standard", "nested/deep");
      const other = join(f.workspaces, "other", "x.txt");
      await rejects(
        checkPath(id, other, "read", { workspacesDir: f.workspaces }),
        "PERMISSION_DENIED",
        /another identity/,
      );
      assert.ok(await checkPath(id, "../deep", "read", { workspacesDir: f.workspaces }));
    });
    await t.step("a workspace replaced by a symlink grants nothing through it", async () => {
      const ws2 = join(f.workspaces, "swapped");
      await Deno.symlink("/", ws2);
      const id = f.identity("sandboxed", "swapped");
      await rejects(checkPath(id, "etc/hostname", "read"), "PERMISSION_DENIED");
      await rejects(checkPath(id, join(f.root, "outside", "o.txt"), "read"), "PERMISSION_DENIED");
      await rejects(checkPath(id, "tmp/x", "write"), "PERMISSION_DENIED");
      await Deno.remove(ws2);
    });
    await t.step("openVerified refuses a symlink swapped in after the check", async () => {
      const checked = await checkPath(sandboxed, "a.txt", "read");
      const h = await openVerified(checked, O.O_RDONLY);
      await h.close();
      await Deno.mkdir(join(ws, "dir"));
      await Deno.writeTextFile(join(ws, "dir", "f"), "ok");
      const inDir = await checkPath(sandboxed, "dir/f", "read");
      // swap the directory for a symlink to the outside
      await Deno.rename(join(ws, "dir"), join(ws, "dir-moved"));
      await Deno.symlink(join(f.root, "outside"), join(ws, "dir"));
      await Deno.writeTextFile(join(f.root, "outside", "f"), "outside f");
      await rejects(openVerified(inDir, O.O_RDONLY), "PERMISSION_DENIED", /changed/);
      // final component swapped
      await Deno.remove(join(ws, "a.txt"));
      await Deno.symlink(join(f.root, "outside", "o.txt"), join(ws, "a.txt"));
      await rejects(openVerified(checked, O.O_RDONLY), "PERMISSION_DENIED");
    });
  } finally {
    await Deno.remove(f.root, { recursive: true });
  }
});
