/**
 * From policy to process: one pure function, {@link denoArgs}, that turns an agent's permission
 * record and its paths into the `deno run` command line that makes the Deno runtime itself
 * enforce the level (DESIGN section 4).
 *
 * Facts about Deno 2.9.6 this relies on (checked against the real runtime by
 * `tests/flags_test.ts` and `tests/agents_security_test.ts`):
 * - Connecting to a Unix socket needs read and write on its path and `--allow-net=unix:PATH`.
 * - A deny inside an allowed path always wins. An allow inside a denied path does NOT reliably
 *   win (the outcome depends on how the entries happen to sort), so the function never lets a
 *   grant lie inside a deny: kernel directories and other agents' files are excluded by never
 *   granting them (levels that read "everything" get an explicit list of everything outside the
 *   state directory, computed by {@link everythingBut}), not by denying their parent.
 * - Static imports of local files are not checked against `--allow-read`, but a module graph
 *   loaded through a dynamic import with a computed specifier is. Agents therefore start through
 *   a bootstrap module that dynamically imports the script.
 * - `npm:` specifiers download from the registry without any net permission, and remote imports
 *   are governed by `--allow-import`, not `--allow-net`: without network, the agent gets
 *   `--deny-import` and `--no-npm`; with a domain list, imports from those domains only.
 * - `--no-config` stops an agent from steering its own runtime through a `deno.json` it wrote
 *   into its workspace (e.g. `"unstable": ["kv"]`); the import map is given explicitly.
 * @module
 */
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import type { Permissions } from "./permissions.ts";
import { METADATA_ADDRESSES, normalizeHost } from "./domains.ts";

/** Every path the flags depend on. All absolute and already resolved. */
export interface AgentPaths {
  /** The agent's workspace (cwd, HOME, TMPDIR, DENO_DIR live here). */
  workspace: string;
  /** The agent's own run directory, holding its private socket. */
  runDir: string;
  /** The agent's private socket (inside `runDir`). */
  socket: string;
  /** The kernel's main socket: always denied. */
  mainSocket: string;
  /** The kernel's state directory: nothing in it is granted except the agent's own paths. */
  stateRoot: string;
  /** The read-only SDK copy the import map points at. */
  sdkDir: string;
  /** The import map file (maps "agentos" to the SDK). */
  importMap: string;
  /** The bootstrap module that dynamically imports the script (inside `sdkDir`). */
  bootstrap: string;
  /** The agent's script file (granted read; the bootstrap finds it in `AGENTOS_SCRIPT`). */
  script: string;
  /** More paths to deny read and write (e.g. the directory of the kernel user's SSH agent socket). */
  extraDenied?: readonly string[];
  /**
   * For levels that may read or write "everything": paths that together cover the whole
   * filesystem except `stateRoot` (see {@link everythingBut}).
   */
  outsideState: readonly string[];
}

/** Inputs of {@link denoArgs}. */
export interface FlagInput {
  permissions: Permissions;
  paths: AgentPaths;
  /** V8 heap limit in MiB (from the memory limit), or undefined. */
  heapMb?: number;
  /** Names of extra environment variables given explicitly at spawn (readable by the agent). */
  envNames?: readonly string[];
  /** Arguments passed to the script (`Deno.args`). */
  args?: readonly string[];
}

/** True if `path` equals `dir` or lies inside it (both absolute and normalised). */
export function isInside(path: string, dir: string): boolean {
  if (path === dir || dir === "/") return true;
  const rel = relative(dir, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * Paths that together cover every path except `excluded` and what lies inside it: at each
 * ancestor of `excluded`, every sibling entry. `list(dir)` returns the entry names of `dir`.
 * Entries created later next to an ancestor are not covered (documented limitation).
 */
export function everythingBut(excluded: string, list: (dir: string) => string[]): string[] {
  const out: string[] = [];
  let child = excluded;
  for (let dir = dirname(child);; dir = dirname(dir)) {
    for (const name of list(dir)) {
      const p = join(dir, name);
      if (p !== child) out.push(p);
    }
    if (dir === "/" || dir === dirname(dir)) break;
    child = dir;
  }
  return out.sort();
}

/**
 * Never granted below unrestricted, even to levels that read "everything": `/proc` holds every
 * process's environment (the kernel's API keys) and symlinks such as `/proc/self/root` that
 * Deno's path checks do not resolve; `/dev` holds raw disks. Only harmless devices are granted.
 */
export const HIDDEN_ROOTS: readonly string[] = ["/proc", "/dev"];
/**
 * Never writable below unrestricted: where system daemons keep their Unix sockets (Docker,
 * D-Bus, systemd). Connecting to a Unix socket needs write on it, so this keeps agents with
 * all-network (`--allow-net`, which covers every Unix socket) away from them.
 */
export const DAEMON_SOCKET_DIRS: readonly string[] = ["/run", "/var/run"];
/** Devices granted in place of `/dev`. */
export const SAFE_DEVICES: readonly string[] = [
  "/dev/null",
  "/dev/zero",
  "/dev/full",
  "/dev/random",
  "/dev/urandom",
];

function withoutHidden(paths: readonly string[]): string[] {
  const out = paths.filter((p) => !HIDDEN_ROOTS.some((h) => isInside(p, h)));
  return out.length < paths.length && paths.some((p) => isInside(p, "/dev"))
    ? [...out, ...SAFE_DEVICES]
    : out;
}

/** Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); stay clear of it. */
export const MAX_ARG_BYTES = 120_000;

function uniq(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function flag(name: string, values: readonly string[]): string[] {
  for (const v of values) {
    if (v.includes(",")) {
      throw new Error(`cannot grant "${v}": Deno's --${name} cannot take a path with a comma`);
    }
  }
  return values.length ? [`--${name}=${values.join(",")}`] : [];
}

/** Drop grants that lie inside a deny, and check that no deny encloses a remaining grant. */
function reconcile(grants: string[], denies: string[], own: readonly string[]): {
  grants: string[];
  denies: string[];
} {
  const kept = grants.filter((g) => own.includes(g) || !denies.some((d) => isInside(g, d)));
  // A deny that encloses one of the agent's own paths cannot be expressed (the grant inside it
  // would not reliably win); such a deny must already be covered by not granting its contents.
  const keptDenies = denies.filter((d) => !kept.some((g) => isInside(g, d)));
  for (const d of denies) {
    if (keptDenies.includes(d)) continue;
    const leaks = kept.filter((g) => !own.includes(g) && isInside(d, g));
    if (leaks.length) {
      throw new Error(
        `cannot deny ${d}: it encloses the agent's own files and lies inside ${leaks[0]}`,
      );
    }
  }
  return { grants: uniq(kept), denies: uniq(keptDenies) };
}

/**
 * Build the full argument list for the Deno executable (starting with `run`) that runs an
 * agent with exactly the rights of `input.permissions`. Pure: no I/O. Throws if the record
 * cannot be expressed safely as flags.
 */
export function denoArgs(input: FlagInput): string[] {
  const { permissions: p, paths } = input;
  const head = ["run", "--no-prompt", "--no-config", `--import-map=${paths.importMap}`];
  const v8 = input.heapMb !== undefined ? [`--v8-flags=--max-old-space-size=${input.heapMb}`] : [];
  // The script's path reaches the bootstrap through AGENTOS_SCRIPT, so Deno.args stay the agent's.
  const tail = [paths.bootstrap, ...(input.args ?? [])];
  if (p.level === "unrestricted") return [...head, "--allow-all", ...v8, ...tail];

  // Outside the state directory the record decides; inside it, only the agent's own paths.
  // A grant enclosing the state directory becomes the part of `outsideState` inside it (all of
  // it for `/`), never more than the grant itself.
  const expand = (list: readonly string[]) =>
    withoutHidden(list).flatMap((g) =>
      g === "/" || isInside(paths.stateRoot, g)
        ? [
          ...withoutHidden(paths.outsideState.filter((o) => isInside(o, g))),
          ...(isInside(paths.workspace, g) ? [paths.workspace] : []),
        ]
        : isInside(g, paths.stateRoot) && !isInside(g, paths.workspace)
        ? []
        : [g]
    );
  const denies = uniq([
    ...p.filesystem.blocked,
    paths.mainSocket,
    "/proc",
    ...(paths.extraDenied ?? []),
  ]).filter((d) => !isInside(d, paths.stateRoot)); // the state dir: covered by never granting it
  const ownRead = [paths.runDir, paths.sdkDir, paths.script];
  const ownWrite = [paths.socket];
  const read = reconcile([...expand(p.filesystem.read), ...ownRead], denies, ownRead);
  const write = reconcile([...expand(p.filesystem.write), ...ownWrite], [
    ...denies,
    ...DAEMON_SOCKET_DIRS.filter((d) => !isInside(d, paths.stateRoot)),
  ], ownWrite);

  const netAll = p.network.includes("*");
  const hosts = netAll ? [] : uniq(p.network.filter((d) => d.length > 0));
  const unix = `unix:${paths.socket}`;

  const out = [...head];
  out.push(...flag("allow-read", read.grants), ...flag("allow-write", write.grants));
  out.push(...flag("deny-read", read.denies), ...flag("deny-write", write.denies));
  out.push(...(netAll ? ["--allow-net"] : flag("allow-net", [...hosts, unix])));
  // Cloud metadata addresses stay unreachable unless the allowlist names them exactly (as for
  // HTTP); Deno checks the addresses a name resolves to as well.
  const metadata = METADATA_ADDRESSES
    .filter((ip) => !p.network.some((n) => normalizeHost(n) === ip))
    .map((ip) => ip.includes(":") ? `[${ip}]` : ip);
  out.push(...flag("deny-net", [`unix:${paths.mainSocket}`, ...metadata]));
  if (netAll) out.push("--allow-import");
  else if (hosts.length) out.push(...flag("allow-import", hosts));
  else out.push("--deny-import");
  if (!netAll) out.push("--no-npm");
  out.push(...flag("allow-env", uniq(["AGENTOS_*", ...(input.envNames ?? [])])));
  if (p.level === "standard") out.push("--allow-sys");
  out.push("--deny-run", "--deny-ffi");
  const long = out.find((a) => a.length > MAX_ARG_BYTES);
  if (long) {
    throw new Error(
      `${
        long.slice(0, long.indexOf("="))
      } would be ${long.length} bytes, over the OS limit for one argument; the directories around the state directory hold too many entries: move it (--state-dir) somewhere less crowded`,
    );
  }
  return [...out, ...v8, ...tail];
}
