/**
 * Unit tests of the permission record logic: patches, bounds (no escalation), domain
 * patterns, and the meet used for level resets.
 */
import assert from "node:assert/strict";
import {
  applyPatch,
  boundViolations,
  defaultPermissions,
  type Level,
  LEVELS,
  meetPermissions,
  type Permissions,
  PermissionsPatchSchema,
  usageCounterChanges,
  withinBounds,
} from "../sandbox/permissions.ts";
import { hostAllowed, patternCovers } from "../sandbox/domains.ts";

const WS = "/state/workspaces/me";
const BLOCKED = ["/home/u/.ssh", "/state/kernel"];
const rec = (level: Level, network?: string[]): Permissions =>
  defaultPermissions(level, { workspace: WS, blocked: BLOCKED, network });

Deno.test("withinBounds: a lower level (narrowed to the bound) is within; a higher one is not", () => {
  for (const [i, lower] of LEVELS.entries()) {
    for (const [j, upper] of LEVELS.entries()) {
      const candidate = meetPermissions(rec(lower), rec(upper));
      const ok = withinBounds(candidate, rec(upper));
      assert.equal(
        ok,
        i >= j,
        `${lower} within ${upper}: ${boundViolations(candidate, rec(upper))}`,
      );
      if (i < j) assert.match(boundViolations(candidate, rec(upper)).join(), /level .* is above/);
    }
  }
  // Levels are not a chain on every field: readonly reads everywhere, sandboxed only its
  // workspace, so readonly's raw defaults are not within sandboxed.
  assert.ok(!withinBounds(rec("readonly"), rec("sandboxed")));
  assert.ok(withinBounds(rec("standard"), rec("unrestricted")));
  assert.ok(withinBounds(rec("minimal"), rec("readonly")));
});

Deno.test("withinBounds: booleans", () => {
  const bound = rec("readonly");
  const c = { ...rec("readonly"), can_write: true };
  assert.ok(!withinBounds(c, bound));
  assert.match(boundViolations(c, bound).join(), /can_write/);
  assert.ok(withinBounds({ ...rec("readonly"), can_think: false }, bound));
});

Deno.test("withinBounds: filesystem roots compare whole components", () => {
  const bound = {
    ...rec("sandboxed"),
    filesystem: { read: ["/a/b"], write: ["/a/b"], blocked: [] },
  };
  const mk = (read: string[], write: string[] = []) => ({
    ...bound,
    filesystem: { read, write, blocked: [] },
  });
  assert.ok(withinBounds(mk(["/a/b"]), bound));
  assert.ok(withinBounds(mk(["/a/b/c", "/a/b/d/"]), bound));
  assert.ok(!withinBounds(mk(["/a/bc"]), bound), "/a/bc is not under /a/b");
  assert.ok(!withinBounds(mk(["/a"]), bound));
  assert.ok(!withinBounds(mk(["/"]), bound));
  assert.ok(!withinBounds(mk([], ["/x"]), bound));
});

Deno.test("withinBounds: blocked must stay a superset (covering counts)", () => {
  const bound = rec("standard");
  const dropped = {
    ...bound,
    filesystem: { ...bound.filesystem, blocked: ["/state/kernel"] },
  };
  assert.ok(!withinBounds(dropped, bound));
  assert.match(boundViolations(dropped, bound).join(), /must keep \/home\/u\/.ssh/);
  const wider = { ...bound, filesystem: { ...bound.filesystem, blocked: ["/home/u", "/state"] } };
  assert.ok(withinBounds(wider, bound), "blocking a parent covers the child");
  const more = {
    ...bound,
    filesystem: { ...bound.filesystem, blocked: [...BLOCKED, "/etc"] },
  };
  assert.ok(withinBounds(more, bound));
});

Deno.test("withinBounds: exec allowlist and blocked commands", () => {
  const bound = { ...rec("standard"), exec: ["git", "ls"], blocked_commands: ["sudo"] };
  assert.ok(withinBounds({ ...bound, exec: ["git"] }, bound));
  assert.ok(!withinBounds({ ...bound, exec: ["git", "rm"] }, bound));
  assert.ok(!withinBounds({ ...bound, exec: ["*"] }, bound));
  assert.ok(withinBounds({ ...bound, exec: ["anything"] }, { ...bound, exec: ["*"] }));
  assert.ok(!withinBounds({ ...bound, blocked_commands: [] }, bound));
  assert.ok(withinBounds({ ...bound, blocked_commands: ["sudo", "rm"] }, bound));
});

Deno.test("withinBounds: network domains with wildcards", () => {
  const bound = { ...rec("standard"), network: ["*.example.com", "api.other.org"] };
  const net = (network: string[]) => ({ ...bound, network });
  assert.ok(withinBounds(net(["example.com", "a.example.com", "*.b.example.com"]), bound));
  assert.ok(withinBounds(net(["API.Other.org."]), bound));
  assert.ok(!withinBounds(net(["other.org"]), bound));
  assert.ok(!withinBounds(net(["*.other.org"]), bound));
  assert.ok(!withinBounds(net(["*"]), bound));
  assert.ok(!withinBounds(net(["badexample.com"]), bound));
  assert.ok(withinBounds(net(["*"]), { ...bound, network: ["*"] }));
});

Deno.test("domain patterns", () => {
  assert.ok(patternCovers("*", "anything.io"));
  assert.ok(patternCovers("*", "*"));
  assert.ok(!patternCovers("*.example.com", "*"));
  assert.ok(patternCovers("*.example.com", "*.a.example.com"));
  assert.ok(!patternCovers("example.com", "*.example.com"));
  assert.ok(patternCovers("*.example.com", "example.com"));
  assert.ok(patternCovers("*.example.com", "x.y.example.com"));
  assert.ok(!patternCovers("*.example.com", "example.com.evil.io"));
  assert.ok(!patternCovers("*.example.com", "notexample.com"));
  assert.ok(!patternCovers("example.com", "a.example.com"));
  assert.ok(hostAllowed("WWW.EXAMPLE.COM", ["*.example.com"]));
  assert.ok(!hostAllowed("example.com", []));
});

Deno.test("withinBounds: llm limits (null is unlimited) and max_exec_time_ms", () => {
  const bound = { ...rec("standard"), llm: { ...rec("standard").llm, max_tokens: 1000 } };
  const llm = (max_tokens: number | null) => ({ ...bound, llm: { ...bound.llm, max_tokens } });
  assert.ok(withinBounds(llm(1000), bound));
  assert.ok(withinBounds(llm(10), bound));
  assert.ok(!withinBounds(llm(1001), bound));
  assert.ok(!withinBounds(llm(null), bound), "unlimited is above a limit");
  assert.ok(withinBounds(llm(5), rec("standard")), "any limit is within unlimited");
  assert.ok(!withinBounds({ ...bound, max_exec_time_ms: bound.max_exec_time_ms + 1 }, bound));
});

Deno.test("applyPatch merges per field and never takes usage counters", () => {
  const r = rec("standard");
  r.llm.tokens_used = 50;
  const patch = PermissionsPatchSchema.parse({
    can_http: false,
    filesystem: { write: ["/tmp/x"] },
    llm: { max_calls: 3, tokens_used: 0 },
  });
  const out = applyPatch(r, patch);
  assert.equal(out.can_http, false);
  assert.deepEqual(out.filesystem.write, ["/tmp/x"]);
  assert.deepEqual(out.filesystem.read, ["/"]);
  assert.deepEqual(out.filesystem.blocked, BLOCKED);
  assert.equal(out.llm.max_calls, 3);
  assert.equal(out.llm.tokens_used, 50);
  assert.deepEqual(usageCounterChanges(r, patch), ["llm.tokens_used"]);
  assert.deepEqual(usageCounterChanges(r, { llm: { tokens_used: 50 } }), []);
  assert.equal(r.can_http, true, "the original is untouched");
});

Deno.test("patch schema refuses relative paths, bad domains, unknown fields", () => {
  for (
    const bad of [
      { filesystem: { read: ["relative"] } },
      { filesystem: { read: ["/ws/missing/../etc"] } },
      { filesystem: { write: ["/ws/.."] } },
      { network: ["exa mple.com"] },
      { network: ["http://x.com"] },
      { exec: ["rm -rf"] },
      { bogus: 1 },
      { llm: { max_tokens: -1 } },
    ]
  ) {
    assert.ok(!PermissionsPatchSchema.safeParse(bad).success, JSON.stringify(bad));
  }
});

Deno.test("meetPermissions narrows a level's defaults to the bound", () => {
  const bound = { ...rec("standard"), network: ["*.example.com"], exec: ["git"] };
  bound.llm.max_tokens = 100;
  const m = meetPermissions(rec("standard"), bound);
  assert.deepEqual(m.network, ["*.example.com"]);
  assert.deepEqual(m.exec, ["git"]);
  assert.equal(m.llm.max_tokens, 100);
  assert.ok(withinBounds(m, bound));
  const s = meetPermissions(rec("sandboxed"), rec("standard"));
  assert.deepEqual(s.filesystem.read, [WS]);
  assert.ok(withinBounds(s, rec("standard")));
});
