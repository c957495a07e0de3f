/**
 * The policy → Deno flags function, table-tested, plus the Deno 2.9 runtime facts it rests on,
 * checked against the real runtime.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AgentPaths, denoArgs, everythingBut, isInside } from "../sandbox/flags.ts";
import { defaultPermissions, type Level } from "../sandbox/permissions.ts";
import { grantsFromArgs, refusal } from "../sandbox/audit.ts";
import { agentBwrapArgs } from "../sandbox/agent_bwrap.ts";

const S = "/srv/state";
const paths: AgentPaths = {
  workspace: `${S}/workspaces/w1`,
  runDir: `${S}/run/7`,
  socket: `${S}/run/7/agent.sock`,
  mainSocket: "/tmp/agentos.sock",
  stateRoot: S,
  sdkDir: `${S}/sdk`,
  importMap: `${S}/sdk/import_map.json`,
  bootstrap: `${S}/sdk/bootstrap.ts`,
  script: `${S}/workspaces/w1/main.ts`,
  outsideState: ["/bin", "/dev", "/etc", "/home", "/proc", "/srv/other", "/tmp", "/usr"],
};
const blocked = ["/tmp/agentos.sock", `${S}/kernel`, `${S}/run`, `${S}/logs`, "/home/u/.ssh"];

function argsFor(
  level: Level,
  network?: string[],
  extra: Partial<Parameters<typeof denoArgs>[0]> = {},
) {
  const permissions = defaultPermissions(level, { workspace: paths.workspace, blocked, network });
  return denoArgs({ permissions, paths, ...extra });
}

function value(args: string[], name: string): string[] | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3).split(",");
}

Deno.test("isInside and everythingBut", () => {
  assert.equal(isInside("/a/b", "/a"), true);
  assert.equal(isInside("/a", "/a"), true);
  assert.equal(isInside("/ab", "/a"), false);
  assert.equal(isInside("/a", "/a/b"), false);
  assert.equal(isInside("/x", "/"), true);
  const tree: Record<string, string[]> = {
    "/": ["bin", "srv", "tmp"],
    "/srv": ["state", "other"],
  };
  assert.deepEqual(everythingBut("/srv/state", (d) => tree[d] ?? []), [
    "/bin",
    "/srv/other",
    "/tmp",
  ]);
});

Deno.test("flags: every level, table", async (t) => {
  const cases: {
    level: Level;
    network?: string[];
    want: (a: string[]) => void;
  }[] = [
    {
      level: "unrestricted",
      want: (a) => {
        assert.ok(a.includes("--allow-all"));
        assert.ok(!a.some((x) => x.startsWith("--deny")));
      },
    },
    {
      level: "standard",
      want: (a) => {
        const read = value(a, "allow-read")!;
        assert.ok(read.includes("/etc") && read.includes(paths.workspace));
        assert.ok(read.includes(paths.runDir) && read.includes(paths.sdkDir));
        assert.ok(!read.includes("/"), "never a global grant that would cover the state dir");
        assert.ok(
          !read.some((r) => isInside(r, `${S}/workspaces`) && !isInside(r, paths.workspace)),
        );
        assert.ok(value(a, "allow-write")!.includes(paths.workspace));
        assert.ok(
          value(a, "deny-write")!.includes("/run") && value(a, "deny-write")!.includes("/var/run"),
        );
        assert.deepEqual(value(a, "deny-read"), ["/tmp/agentos.sock", "/home/u/.ssh", "/proc"]);
        assert.ok(!read.some((r) => isInside(r, "/proc")), "/proc holds other processes' env");
        assert.ok(!read.includes("/dev") && read.includes("/dev/urandom"), "no raw disks");
        assert.ok(a.includes("--allow-net") && a.includes("--allow-import"));
        assert.ok(
          a.includes("--allow-sys") && a.includes("--deny-run") && a.includes("--deny-ffi"),
        );
        assert.ok(!a.includes("--no-npm"));
      },
    },
    {
      level: "sandboxed",
      want: (a) => {
        assert.deepEqual(value(a, "allow-read"), [
          paths.workspace,
          paths.runDir,
          paths.sdkDir,
          paths.script,
        ]);
        assert.deepEqual(value(a, "allow-write"), [paths.workspace, paths.socket]);
        assert.deepEqual(value(a, "allow-net"), [`unix:${paths.socket}`]);
        assert.ok(a.includes("--deny-import") && a.includes("--no-npm"));
        assert.ok(!a.includes("--allow-sys"));
      },
    },
    {
      level: "sandboxed",
      network: ["example.com", "*.api.test"],
      want: (a) => {
        assert.deepEqual(value(a, "allow-net"), [
          "example.com",
          "*.api.test",
          `unix:${paths.socket}`,
        ]);
        assert.deepEqual(value(a, "allow-import"), ["example.com", "*.api.test"]);
        assert.ok(
          a.includes("--no-npm"),
          "npm bypasses net checks: only with unrestricted network",
        );
      },
    },
    {
      level: "readonly",
      want: (a) => {
        assert.ok(value(a, "allow-read")!.includes("/usr"));
        assert.deepEqual(value(a, "allow-write"), [paths.socket]);
        assert.deepEqual(value(a, "allow-net"), [`unix:${paths.socket}`]);
        assert.ok(a.includes("--deny-import"));
      },
    },
    {
      level: "minimal",
      want: (a) => {
        assert.deepEqual(value(a, "allow-read"), [paths.runDir, paths.sdkDir, paths.script]);
        assert.deepEqual(value(a, "allow-write"), [paths.socket]);
      },
    },
  ];
  for (const c of cases) {
    await t.step(`${c.level}${c.network ? " +net" : ""}`, () => {
      const a = argsFor(c.level, c.network);
      assert.deepEqual(a.slice(0, 4), [
        "run",
        "--no-prompt",
        "--no-config",
        `--import-map=${paths.importMap}`,
      ]);
      assert.ok(!a.some((x) => x.includes("unstable") || x.startsWith("--location")));
      assert.equal(a.at(-1), paths.bootstrap);
      if (c.level !== "unrestricted") {
        assert.deepEqual(value(a, "deny-net"), [
          `unix:${paths.mainSocket}`,
          "169.254.169.254",
          "[fd00:ec2::254]",
        ]);
        assert.deepEqual(value(a, "allow-env"), ["AGENTOS_*"]);
        // No grant may lie inside a deny (Deno does not reliably let it win).
        for (const kind of ["read", "write"]) {
          const grants = value(a, `allow-${kind}`) ?? [];
          for (const d of value(a, `deny-${kind}`) ?? []) {
            assert.ok(!grants.some((g) => isInside(g, d)), `${kind} grant inside deny ${d}`);
          }
        }
      }
      c.want(a);
    });
  }
});

Deno.test("flags: heap limit, env names, args", () => {
  const a = argsFor("sandboxed", undefined, { heapMb: 96, envNames: ["TASK"], args: ["x", "y"] });
  assert.ok(a.includes("--v8-flags=--max-old-space-size=96"));
  assert.deepEqual(value(a, "allow-env"), ["AGENTOS_*", "TASK"]);
  assert.deepEqual(a.slice(-3), [paths.bootstrap, "x", "y"]);
});

Deno.test("flags: a grant list over the OS's per-argument limit is refused clearly", () => {
  const permissions = defaultPermissions("standard", { workspace: paths.workspace, blocked });
  const crowded = Array.from({ length: 5000 }, (_, i) => `/tmp/entry-with-a-long-name-${i}`);
  assert.throws(
    () => denoArgs({ permissions, paths: { ...paths, outsideState: crowded } }),
    /too many entries/,
  );
});

Deno.test("flags: a path with a comma is refused, not split", () => {
  const permissions = defaultPermissions("sandboxed", { workspace: "/s/w,x", blocked: [] });
  assert.throws(
    () => denoArgs({ permissions, paths: { ...paths, workspace: "/s/w,x" } }),
    /comma/,
  );
});

Deno.test("flags: a blocked path equal to a broad grant is dropped from the grants", () => {
  const permissions = defaultPermissions("standard", {
    workspace: paths.workspace,
    blocked: ["/home"],
  });
  const a = denoArgs({ permissions, paths });
  assert.ok(!value(a, "allow-read")!.includes("/home"));
  assert.ok(value(a, "deny-read")!.includes("/home"));
});

/** Run a snippet under `flags` with the real Deno; returns its stdout. */
async function probe(dir: string, flags: string[], code: string): Promise<string> {
  const file = join(dir, `p${crypto.randomUUID()}.ts`);
  await Deno.writeTextFile(file, code);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-config", ...flags, file],
    env: { DENO_DIR: join(dir, ".deno"), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("deno facts: unix sockets need read+write+net=unix, deny inside allow wins, imports", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aosflags" }));
  const sock = join(dir, "s.sock");
  const listener = Deno.listen({ transport: "unix", path: sock });
  const server = (async () => {
    for await (const c of listener) c.close();
  })();
  try {
    const connect = `try { (await Deno.connect({ transport: "unix", path: ${
      JSON.stringify(sock)
    } })).close(); console.log("ok"); } catch (e) { console.log(e.name); }`;
    assert.equal(
      await probe(dir, [`--allow-read=${dir}`, `--allow-write=${sock}`], connect),
      "NotCapable",
    );
    assert.equal(
      await probe(dir, [`--allow-read=${dir}`, `--allow-net=unix:${sock}`], connect),
      "NotCapable",
    );
    assert.equal(
      await probe(
        dir,
        [`--allow-read=${dir}`, `--allow-write=${sock}`, `--allow-net=unix:${sock}`],
        connect,
      ),
      "ok",
    );
    // A deny inside an allowed directory wins.
    await Deno.mkdir(join(dir, "secret"));
    await Deno.writeTextFile(join(dir, "secret", "k"), "x");
    const readSecret = `try { Deno.readTextFileSync(${
      JSON.stringify(join(dir, "secret", "k"))
    }); console.log("read"); } catch (e) { console.log(e.name); }`;
    assert.equal(
      await probe(
        dir,
        [`--allow-read=/a1,${dir},/z9`, `--deny-read=/b,${join(dir, "secret")}`],
        readSecret,
      ),
      "NotCapable",
    );
    // Static local imports bypass --allow-read; a computed dynamic import does not.
    await Deno.writeTextFile(join(dir, "secret", "m.ts"), "export const v = 'leak';");
    const mod = JSON.stringify(`file://${join(dir, "secret", "m.ts")}`);
    const dynamic =
      `const s = ${mod}; try { await import(s + ""); console.log("leak"); } catch (e) { console.log(e.name); }`;
    assert.equal(
      await probe(dir, [`--allow-read=${dir}`, `--deny-read=${join(dir, "secret")}`], dynamic),
      "TypeError",
    );
  } finally {
    listener.close();
    await server.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flags: a grant enclosing the state directory never widens beyond itself", () => {
  const permissions = defaultPermissions("sandboxed", { workspace: paths.workspace, blocked });
  // e.g. SET_PERMS gave write on /srv, which holds the state directory /srv/state.
  permissions.filesystem.write = [paths.workspace, "/srv"];
  permissions.filesystem.read = [paths.workspace, "/srv"];
  const a = denoArgs({ permissions, paths });
  for (const name of ["allow-write", "allow-read"]) {
    const granted = value(a, name)!;
    assert.ok(granted.includes("/srv/other"), `${name}: ${granted}`);
    assert.ok(granted.includes(paths.workspace), `${name}: ${granted}`);
    for (const g of granted) {
      assert.ok(
        isInside(g, "/srv") || [paths.runDir, paths.sdkDir, paths.script, paths.socket].includes(g),
        `${name} grants ${g}, outside /srv`,
      );
    }
  }
});

Deno.test("audit: refused checks are judged from the agent's own flags", () => {
  const judge = (level: Level, permission: string, value: string | null, network?: string[]) =>
    refusal(grantsFromArgs(argsFor(level, network)), { permission, value }, paths.workspace);
  assert.equal(judge("sandboxed", "read", "notes.txt"), null, "relative: inside the workspace");
  assert.equal(judge("sandboxed", "read", `${paths.workspace}/../w2/x`)?.includes("w2"), true);
  assert.match(judge("sandboxed", "read", "/etc/hostname")!, /^Permission denied: .*not granted/);
  assert.equal(judge("standard", "read", "/etc/hostname"), null);
  assert.match(judge("standard", "read", "/home/u/.ssh/id_rsa")!, /denied path/);
  assert.equal(judge("sandboxed", "write", paths.socket), null);
  assert.equal(judge("sandboxed", "env", "AGENTOS_AGENT_ID"), null, "AGENTOS_* wildcard");
  assert.match(judge("sandboxed", "env", "HOME")!, /env access to HOME/);
  assert.match(judge("sandboxed", "env", null)!, /whole environment/);
  assert.match(judge("sandboxed", "ffi", "libc.so.6")!, /--deny-ffi/);
  assert.match(judge("sandboxed", "sys", "hostname")!, /sys/);
  assert.equal(judge("standard", "sys", "hostname"), null);
  assert.match(judge("sandboxed", "net", "127.0.0.1:8080")!, /net/);
  assert.equal(judge("sandboxed", "net", "127.0.0.1:8080", ["127.0.0.1:8080"]), null);
  assert.equal(judge("sandboxed", "net", "http://127.0.0.1:8080/x", ["127.0.0.1:8080"]), null);
  assert.match(judge("sandboxed", "net", "127.0.0.1:9", ["127.0.0.1:8080"])!, /not granted/);
  assert.equal(judge("sandboxed", "net", "a.example.com:443", ["*.example.com"]), null);
  assert.equal(judge("standard", "net", "anything:1"), null, "all-network");
  assert.match(judge("standard", "net", `unix:${paths.mainSocket}`)!, /denied host/);
  assert.match(judge("sandboxed", "import", "example.com:443")!, /--deny-import/);
  assert.equal(judge("unrestricted", "read", "/etc/shadow"), null);
  assert.equal(judge("sandboxed", "hrtime", null), null, "kinds not judged");
});

Deno.test("agent bwrap: roots under /tmp survive the system view's private /tmp", () => {
  const args = agentBwrapArgs({
    maskDirs: [],
    maskFiles: [],
    keep: ["/srv/state/workspaces/w1"],
    keepReadOnly: [],
    noNetwork: true,
    confine: true,
    view: "system",
    systemDirs: ["/usr", "/tmp/shared-ro"],
    systemLinks: [{ path: "/lib", target: "usr/lib" }],
    writable: ["/tmp/shared-rw"],
  });
  const at = (...seq: string[]) => args.findIndex((_, i) => seq.every((s, j) => args[i + j] === s));
  const tmp = at("--tmpfs", "/tmp");
  assert.ok(tmp >= 0);
  assert.ok(at("--ro-bind", "/tmp/shared-ro", "/tmp/shared-ro") > tmp);
  assert.ok(at("--bind", "/tmp/shared-rw", "/tmp/shared-rw") > tmp);
  assert.ok(at("--symlink", "usr/lib", "/lib") > tmp);
  assert.ok(!args.includes("--dev-bind"), "nothing of the host is bound whole");
  assert.ok(args.includes("--unshare-net"));
});
