/**
 * Table tests of the pure pieces behind EXEC and HTTP: the bubblewrap argument builder, the
 * command allow/block lists, domain patterns, forbidden addresses and response fitting.
 */
import assert from "node:assert/strict";
import {
  ambientSecretPaths,
  bwrapArgs,
  bwrapEnvironment,
  type BwrapPlan,
  classifyPaths,
  isWithin,
} from "../sandbox/bwrap.ts";
import { defaultPermissions, type Level } from "../sandbox/permissions.ts";
import { checkCommand, commandWords, execTimeoutMs } from "../syscalls/exec.ts";
import {
  explicitlyAllowed,
  forbiddenAddress,
  hostAllowed,
  hostMatches,
  parseIPv6,
  patternCovers,
  splitPattern,
} from "../sandbox/domains.ts";
import { decodeUtf8, fitJsonString, fitPair, jsonStringBytes } from "../syscalls/fit.ts";
import { SyscallError } from "../kernel/errors.ts";

const WS = "/state/workspaces/client-1";

function plan(level: Level, extra: Partial<BwrapPlan> = {}, network?: string[]): BwrapPlan {
  return {
    permissions: defaultPermissions(level, { workspace: WS, blocked: [], network }),
    workspace: WS,
    writable: defaultPermissions(level, { workspace: WS, blocked: [], network }).filesystem.write,
    hidden: [],
    cwd: WS,
    command: ["/bin/sh", "-c", "echo hi"],
    ...extra,
  };
}

/** Index of the first occurrence of the consecutive items `seq` in `args`, or -1. */
function indexOfSeq(args: string[], ...seq: string[]): number {
  for (let i = 0; i + seq.length <= args.length; i++) {
    if (seq.every((s, j) => args[i + j] === s)) return i;
  }
  return -1;
}

Deno.test("bwrapArgs: sandboxed is read-only but for the workspace, private /tmp, no network", () => {
  const args = bwrapArgs(plan("sandboxed"));
  const ro = indexOfSeq(args, "--ro-bind", "/", "/");
  const tmp = indexOfSeq(args, "--tmpfs", "/tmp");
  const ws = indexOfSeq(args, "--bind", WS, WS);
  assert.ok(ro >= 0 && tmp > ro && ws > tmp, args.join(" "));
  assert.ok(indexOfSeq(args, "--dev", "/dev") >= 0);
  assert.ok(indexOfSeq(args, "--proc", "/proc") >= 0);
  assert.ok(args.includes("--unshare-all"));
  assert.ok(!args.includes("--share-net"));
  assert.ok(!args.includes("--bind") || args.filter((a) => a === "--bind").length === 1);
  for (const flag of ["--die-with-parent", "--new-session"]) {
    assert.ok(args.includes(flag), flag);
  }
  assert.ok(indexOfSeq(args, "--chdir", WS) >= 0);
  assert.deepEqual(args.slice(args.indexOf("--")), ["--", "/bin/sh", "-c", "echo hi"]);
});

Deno.test("bwrapArgs: sandboxed with network granted shares the network", () => {
  const args = bwrapArgs(plan("sandboxed", {}, ["example.com"]));
  assert.ok(args.includes("--unshare-all") && args.includes("--share-net"));
});

Deno.test("bwrapArgs: standard binds / writable, shares the network, no private /tmp", () => {
  const args = bwrapArgs(plan("standard"));
  assert.ok(indexOfSeq(args, "--bind", "/", "/") >= 0);
  assert.equal(indexOfSeq(args, "--ro-bind", "/", "/"), -1);
  assert.equal(indexOfSeq(args, "--tmpfs", "/tmp"), -1);
  assert.ok(args.includes("--share-net"));
  assert.ok(args.includes("--die-with-parent") && args.includes("--new-session"));
});

Deno.test("bwrapArgs: hidden paths — tmpfs over directories, /dev/null over files", () => {
  for (const level of ["standard", "sandboxed"] as const) {
    const args = bwrapArgs(plan(level, {
      hidden: [
        { path: "/home/u/.ssh", kind: "dir" },
        { path: "/etc/shadow", kind: "file" },
        { path: "/state/workspaces", kind: "dir" }, // contains the workspace
        { path: `${WS}/secret`, kind: "file" }, // inside the workspace
        { path: WS, kind: "dir" }, // the workspace itself is never hidden from its owner
      ],
    }));
    const ssh = indexOfSeq(args, "--tmpfs", "/home/u/.ssh");
    const shadow = indexOfSeq(args, "--ro-bind", "/dev/null", "/etc/shadow");
    const wsDir = indexOfSeq(args, "--tmpfs", "/state/workspaces");
    const ws = indexOfSeq(args, "--bind", WS, WS);
    const inner = indexOfSeq(args, "--ro-bind", "/dev/null", `${WS}/secret`);
    assert.ok(ssh >= 0 && shadow >= 0 && wsDir >= 0 && ws >= 0 && inner >= 0, args.join(" "));
    assert.ok(wsDir < ws, "the workspace is bound back over the hidden workspaces directory");
    assert.ok(inner > ws, "a hidden path inside the workspace is hidden after the bind");
    assert.equal(indexOfSeq(args, "--tmpfs", WS), -1);
    const remount = indexOfSeq(args, "--remount-ro", "/state/workspaces");
    assert.ok(remount > ws, "hidden directories are made read-only after the workspace bind");
    assert.ok(indexOfSeq(args, "--remount-ro", "/home/u/.ssh") > 0);
    assert.equal(indexOfSeq(args, "--remount-ro", WS), -1);
  }
});

Deno.test("bwrapArgs: no environment value on the command line", () => {
  const args = bwrapArgs(plan("sandboxed"));
  assert.ok(!args.includes("--setenv") && !args.includes("--clearenv"));
  assert.deepEqual(bwrapEnvironment({ TOKEN: "s3cret" }), { TOKEN: "s3cret" });
});

Deno.test("bwrap never starts with loader variables: they are set inside the sandbox", () => {
  const env = { TOKEN: "s3cret", LD_PRELOAD: "/ws/x.so", GCONV_PATH: "/ws", MALLOC_TRACE: "/x" };
  const outer = bwrapEnvironment(env);
  assert.deepEqual(outer, { TOKEN: "s3cret" });
  const args = bwrapArgs(plan("sandboxed", { env }));
  for (const [name, value] of Object.entries(env)) {
    const at = indexOfSeq(args, "--setenv", name, value);
    if (name === "TOKEN") assert.equal(at, -1, "a secret never goes on the command line");
    else assert.ok(at >= 0 && at < args.indexOf("--"), `${name} set inside the sandbox`);
  }
});

Deno.test("bwrapArgs: a hidden path inside a hidden directory is not mounted again", () => {
  const args = bwrapArgs(plan("standard", {
    hidden: [
      { path: "/state/kernel", kind: "dir" },
      { path: "/state", kind: "dir" },
      { path: "/state/workspaces", kind: "dir" },
      { path: "/state/sock", kind: "file" },
      { path: `${WS}/.secret`, kind: "file" },
    ],
  }));
  for (const p of ["/state/kernel", "/state/workspaces", "/state/sock"]) {
    assert.ok(!args.includes(p), `${p} is already under the /state tmpfs: ${args.join(" ")}`);
  }
  const tmpfs = indexOfSeq(args, "--tmpfs", "/state");
  const ws = indexOfSeq(args, "--bind", WS, WS);
  const inner = indexOfSeq(args, "--ro-bind", "/dev/null", `${WS}/.secret`);
  assert.ok(tmpfs >= 0 && ws > tmpfs && inner > ws, args.join(" "));
  assert.ok(indexOfSeq(args, "--remount-ro", "/state") > ws);
});

Deno.test("bwrapArgs: refuses levels without bubblewrap confinement", () => {
  for (const level of ["unrestricted", "readonly", "minimal"] as const) {
    assert.throws(() => bwrapArgs(plan(level)), /no bubblewrap confinement/);
  }
});

Deno.test("isWithin compares whole components", () => {
  assert.ok(isWithin("/a/b", "/a/b"));
  assert.ok(isWithin("/a/b/c", "/a/b"));
  assert.ok(!isWithin("/a/bc", "/a/b"));
  assert.ok(!isWithin("/a", "/a/b"));
  assert.ok(isWithin("/a/..b", "/a"));
});

Deno.test("classifyPaths: resolves symlinks, skips missing, classifies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeTextFile(`${dir}/f`, "x");
    await Deno.symlink(`${dir}/d`, `${dir}/link`);
    const real = await Deno.realPath(dir);
    const out = await classifyPaths([`${dir}/d`, `${dir}/f`, `${dir}/link`, `${dir}/missing`]);
    assert.deepEqual(out, [{ path: `${real}/d`, kind: "dir" }, {
      path: `${real}/f`,
      kind: "file",
    }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commandWords and checkCommand", () => {
  assert.deepEqual(commandWords("ls -la"), ["ls"]);
  assert.deepEqual(commandWords("FOO=1 /usr/bin/env x; sudo rm -rf / && echo $(whoami) | wc"), [
    "env",
    "sudo",
    "echo",
    "whoami",
    "wc",
  ]);
  assert.doesNotThrow(() => checkCommand("ls; cat x", ["*"], []));
  assert.doesNotThrow(() => checkCommand("ls | wc -l", ["ls", "wc"], []));
  const denied = (f: () => void) =>
    assert.throws(f, (e) => e instanceof SyscallError && e.code === "PERMISSION_DENIED");
  denied(() => checkCommand("ls; sudo id", ["*"], ["sudo"]));
  denied(() => checkCommand("/usr/bin/sudo id", ["*"], ["sudo"]));
  denied(() => checkCommand("ls | rm x", ["ls"], []));
  denied(() => checkCommand("echo hi", [], []));
});

Deno.test("hostMatches: *, exact, *.domain (the domain itself and subdomains)", () => {
  const cases: [string, string, boolean][] = [
    ["api.example.com", "*", true],
    ["example.com", "example.com", true],
    ["EXAMPLE.com.", "example.com", true],
    ["api.example.com", "example.com", false],
    ["api.example.com", "*.example.com", true],
    ["a.b.example.com", "*.example.com", true],
    ["example.com", "*.example.com", true],
    ["badexample.com", "*.example.com", false],
    ["example.com.evil.org", "*.example.com", false],
    ["[::1]", "::1", true],
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.2", "127.0.0.1", false],
  ];
  for (const [host, pattern, want] of cases) {
    assert.equal(hostMatches(host, pattern), want, `${host} vs ${pattern}`);
  }
  assert.ok(!hostAllowed("x.org", []));
  assert.ok(hostAllowed("x.org", ["a.com", "*.x.org"]));
});

Deno.test("hostMatches: a pattern with a port matches that port only", () => {
  const cases: [string, string, string | undefined, boolean][] = [
    ["localhost", "localhost:8080", "8080", true],
    ["localhost", "localhost:8080", "80", false],
    ["localhost", "localhost:8080", undefined, false],
    ["localhost", "localhost", "8080", true],
    ["api.x.org", "*.x.org:443", "443", true],
    ["api.x.org", "*.x.org:443", "80", false],
    ["::1", "[::1]:8080", "8080", true],
    ["::1", "::1", "8080", true],
    ["::1", "[::1]:8080", "8081", false],
  ];
  for (const [host, pattern, port, want] of cases) {
    assert.equal(hostMatches(host, pattern, port), want, `${host}:${port} vs ${pattern}`);
  }
  assert.deepEqual(splitPattern("::1"), { host: "::1", port: null });
  assert.deepEqual(splitPattern("a.com:0443"), { host: "a.com", port: "443" });
  // Bounds: a port narrows, never widens.
  assert.ok(patternCovers("a.com", "a.com:8080"));
  assert.ok(!patternCovers("a.com:8080", "a.com"));
  assert.ok(!patternCovers("a.com:8080", "a.com:8081"));
  assert.ok(patternCovers("*.a.com:443", "*.b.a.com:443"));
  assert.ok(!patternCovers("*.a.com:443", "*.b.a.com"));
});

Deno.test("forbiddenAddress: link-local and metadata, also embedded in IPv6", () => {
  const refused = [
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "FE80::abcd:1",
    "febf::1",
    "fd00:ec2::254",
    "fd00:0ec2:0:0:0:0:0:254",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "64:ff9b::169.254.169.254",
  ];
  for (const ip of refused) assert.ok(forbiddenAddress(ip), ip);
  const fine = [
    "127.0.0.1",
    "10.0.0.1",
    "169.253.1.1",
    "::1",
    "fec0::1",
    "fd00:ec2::255",
    "2001:db8::1",
  ];
  for (const ip of fine) assert.equal(forbiddenAddress(ip), null, ip);
  assert.deepEqual(parseIPv6("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
  assert.equal(parseIPv6("1::2::3"), null);
  assert.equal(parseIPv6("1:2:3:4:5:6:7:8:9"), null);
  assert.ok(explicitlyAllowed("169.254.169.254", "169.254.169.254", ["169.254.169.254"]));
  assert.ok(explicitlyAllowed("meta.internal", "169.254.169.254", ["meta.internal"]));
  assert.ok(!explicitlyAllowed("169.254.169.254", "169.254.169.254", ["*"]));
  assert.ok(!explicitlyAllowed("meta.internal", "169.254.169.254", ["*.internal"]));
  assert.ok(explicitlyAllowed("[fd00:ec2::254]", "fd00:ec2:0::254", ["fd00:ec2:0:0:0:0:0:254"]));
});

Deno.test("fitJsonString / fitPair: encoded size never exceeds the budget", () => {
  const samples = ["plain", 'q"uo\\te', "\u0000\u0001\n\t", "é✓😀", "\ud800lone", ""];
  for (const s of samples) {
    assert.equal(jsonStringBytes(s), new TextEncoder().encode(JSON.stringify(s)).length, s);
  }
  const text = "a😀\u0000é".repeat(1000);
  for (const budget of [2, 3, 7, 100, 5001]) {
    const { text: cut, truncated } = fitJsonString(text, budget);
    assert.ok(new TextEncoder().encode(JSON.stringify(cut)).length <= budget);
    assert.ok(truncated);
    assert.ok(text.startsWith(cut));
  }
  const pair = fitPair("x".repeat(100), "y".repeat(10), 60);
  assert.equal(pair.b, "y".repeat(10));
  assert.equal(pair.a.length, 60 - 12 - 2);
  assert.ok(pair.truncated);
  assert.deepEqual(fitPair("a", "b", 100), { a: "a", b: "b", truncated: false });
});

Deno.test("decodeUtf8: text, binary, and a sequence cut at the end", () => {
  assert.equal(decodeUtf8(new TextEncoder().encode("hé")), "hé");
  assert.equal(decodeUtf8(new Uint8Array([0xff, 0xfe])), null);
  const cut = new TextEncoder().encode("ab😀").subarray(0, 4);
  assert.equal(decodeUtf8(cut), null);
  assert.equal(decodeUtf8(cut, true), "ab");
});

Deno.test("execTimeoutMs: default 30 s, capped by max_exec_time_ms, 0 refuses", () => {
  assert.equal(execTimeoutMs(undefined, 600_000), 30_000);
  assert.equal(execTimeoutMs(1.5, 600_000), 1_500);
  assert.equal(execTimeoutMs(3600, 120_000), 120_000);
  assert.equal(execTimeoutMs(undefined, 10_000), 10_000);
  assert.throws(
    () => execTimeoutMs(1, 0),
    (e) => e instanceof SyscallError && e.code === "PERMISSION_DENIED",
  );
});

Deno.test("ambientSecretPaths: agent sockets, runtime dirs and container sockets", () => {
  const paths = ambientSecretPaths(
    { SSH_AUTH_SOCK: "/tmp/ssh-x/agent.1", XDG_RUNTIME_DIR: "/run/user/1000" },
    1000,
  );
  for (const p of ["/tmp/ssh-x/agent.1", "/run/user/1000", "/run/user", "/var/run/docker.sock"]) {
    assert.ok(paths.includes(p), p);
  }
  assert.ok(
    !ambientSecretPaths({ SSH_AUTH_SOCK: "relative/sock" }, null).includes("relative/sock"),
  );
});

Deno.test("bwrapArgs: the record's write roots decide what is writable", () => {
  // standard narrowed to one write root: / read-only, that root writable.
  const narrowed = bwrapArgs(plan("standard", { writable: ["/data/project"] }));
  assert.ok(indexOfSeq(narrowed, "--ro-bind", "/", "/") >= 0);
  assert.equal(indexOfSeq(narrowed, "--bind", "/", "/"), -1);
  assert.ok(indexOfSeq(narrowed, "--bind", "/data/project", "/data/project") >= 0);
  // sandboxed never binds / writable, even if its record says so; extra roots are bound.
  const sbx = bwrapArgs(plan("sandboxed", { writable: ["/", "/data/out", WS] }));
  assert.equal(indexOfSeq(sbx, "--bind", "/", "/"), -1);
  assert.ok(indexOfSeq(sbx, "--bind", "/data/out", "/data/out") >= 0);
  assert.equal(sbx.filter((a) => a === WS).length, 3, "workspace bound once (+ --chdir)");
  // A blocked path inside a write root is hidden after the root is bound.
  const hid = bwrapArgs(plan("standard", {
    writable: ["/data"],
    hidden: [{ path: "/data/secret", kind: "dir" }],
  }));
  assert.ok(
    indexOfSeq(hid, "--tmpfs", "/data/secret") > indexOfSeq(hid, "--bind", "/data", "/data"),
  );
});
