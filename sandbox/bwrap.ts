/**
 * EXEC confinement with bubblewrap (DESIGN section 4): detecting a working `bwrap`, and the
 * pure function that turns a permission record into a bwrap argument array.
 *
 * | level        | EXEC runs                                                                 |
 * |--------------|---------------------------------------------------------------------------|
 * | unrestricted | without bwrap, as the kernel's user                                        |
 * | standard     | bwrap: whole filesystem writable, blocked paths hidden, network shared     |
 * | sandboxed    | bwrap: workspace writable, rest read-only, private /tmp, no network unless granted, blocked paths hidden |
 * | readonly, minimal | denied (`can_exec` is false)                                           |
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { which } from "./which.ts";
import type { Level, Permissions } from "./permissions.ts";
import { SyscallError } from "../kernel/errors.ts";

/** How to install bubblewrap, quoted in every "bwrap missing" error. */
export const BWRAP_INSTALL_HINT =
  "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install bubblewrap`, Alpine: `apk add bubblewrap`) and make sure unprivileged user namespaces are enabled";

/** The PATH given to EXEC'd commands when the kernel has none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The base of the `sandboxed` shape (and of the start-up probe, so that what is probed is
 * what runs): host read-only, own /dev, /proc and /tmp, every namespace unshared.
 */
const SANDBOXED_BASE = [
  "--ro-bind",
  "/",
  "/",
  "--dev",
  "/dev",
  "--proc",
  "/proc",
  "--tmpfs",
  "/tmp",
  "--unshare-all",
] as const;

/** How EXEC is confined for a level. */
export type ConfinementMode = "none" | "standard" | "sandboxed" | "denied";

/** The confinement EXEC uses at `level`. */
export function confinementFor(level: Level): ConfinementMode {
  switch (level) {
    case "unrestricted":
      return "none";
    case "standard":
      return "standard";
    case "sandboxed":
      return "sandboxed";
    case "readonly":
    case "minimal":
      return "denied";
  }
}

/** A path to hide inside the sandbox: directories get a tmpfs, files get `/dev/null`. */
export interface HiddenPath {
  path: string;
  kind: "dir" | "file";
}

/** Inputs of {@link bwrapArgs}. */
export interface BwrapPlan {
  /** The caller's permission record (level and network decide the shape). */
  permissions: Permissions;
  /** Absolute, resolved workspace of the caller (writable in `sandboxed`). */
  workspace: string;
  /**
   * The record's `filesystem.write` roots, resolved, existing directories only. `standard`
   * binds `/` writable when it is among them, else the filesystem read-only and these writable;
   * `sandboxed` binds these writable (never `/`). The workspace is writable in any case.
   */
  writable?: readonly string[];
  /** Existing blocked paths, already resolved and classified (see {@link classifyPaths}). */
  hidden: readonly HiddenPath[];
  /** Absolute, resolved working directory inside the sandbox. */
  cwd: string;
  /** The command and its arguments, e.g. `["sh", "-c", "ls"]`. */
  command: readonly string[];
  /**
   * The command's environment. Only its loader variables (see {@link isLoaderVariable}) end up
   * on the command line, as `--setenv`; the rest reaches the command through bwrap's own
   * environment ({@link bwrapEnvironment}).
   */
  env?: Readonly<Record<string, string>>;
}

/**
 * Variables that make the dynamic loader or the C library load code or files chosen by
 * whoever sets them (glibc drops exactly these for set-uid programs, plus every `LD_` and
 * `MALLOC_` name). Given to bwrap's own process, `LD_PRELOAD=workspace/x.so` would run the
 * caller's code in bwrap itself — outside the sandbox it is about to build.
 */
const LOADER_VARIABLES = new Set([
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TMPDIR",
  "TZDIR",
]);

/** True if `name` must never be in bwrap's own environment (see {@link BwrapPlan.env}). */
export function isLoaderVariable(name: string): boolean {
  return /^(LD_|MALLOC_)/.test(name) || LOADER_VARIABLES.has(name);
}

/** True if `child` is `parent` or lies below it. */
export function isWithin(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function hideArgs(h: HiddenPath): string[] {
  return h.kind === "dir" ? ["--tmpfs", h.path] : ["--ro-bind", "/dev/null", h.path];
}

/**
 * The bwrap argument array (without the `bwrap` program itself) that runs `plan.command`
 * confined as `plan.permissions.level` requires. Pure: no filesystem access.
 *
 * Throws for levels that run unconfined (`unrestricted`) or may not EXEC at all.
 */
export function bwrapArgs(plan: BwrapPlan): string[] {
  const mode = confinementFor(plan.permissions.level);
  if (mode === "none" || mode === "denied") {
    throw new Error(`level ${plan.permissions.level} has no bubblewrap confinement`);
  }
  const ws = plan.workspace;
  // Hidden paths that contain the workspace are hidden first and the workspace bound back on
  // top; hidden paths inside the workspace are applied after it, so they stay hidden.
  // The workspace itself is never hidden from its owner.
  // A path inside another hidden directory is hidden already (and a mount on it would be
  // buried by the outer tmpfs): it is dropped, unless it lies in the workspace bound back.
  const hidden = plan.hidden.filter((h) =>
    h.path !== ws &&
    (isWithin(h.path, ws) ||
      !plan.hidden.some((d) => d.kind === "dir" && d.path !== h.path && isWithin(h.path, d.path)))
  );
  const outer = hidden.filter((h) => !isWithin(h.path, ws));
  const inner = hidden.filter((h) => isWithin(h.path, ws));
  const writable = plan.writable ?? [];
  const rootWritable = mode === "standard" && writable.includes("/");
  const args: string[] = [];
  if (mode === "sandboxed") {
    const shareNet = plan.permissions.can_http && plan.permissions.network.length > 0;
    args.push(...SANDBOXED_BASE, ...(shareNet ? ["--share-net"] : []));
  } else {
    args.push(
      rootWritable ? "--bind" : "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--unshare-all",
      "--share-net",
    );
  }
  // Extra write roots first, so that blocked paths inside them are hidden on top.
  for (const w of writable) {
    if (w !== "/" && w !== ws && !isWithin(w, ws)) args.push("--bind", w, w);
  }
  for (const h of outer) args.push(...hideArgs(h));
  args.push("--bind", ws, ws);
  for (const h of inner) args.push(...hideArgs(h));
  // The tmpfs over each hidden directory is made read-only last, after the workspace has been
  // bound inside it where needed (remounting earlier would leave no room for the mount point).
  for (const h of hidden) if (h.kind === "dir") args.push("--remount-ro", h.path);
  // The environment is not on this command line (every local user can read a process's
  // arguments in /proc): bwrap is started with a cleared environment holding the command's
  // variables (see {@link bwrapEnvironment}), and passes it on unchanged. Loader variables
  // are the exception: bwrap itself must not see them, so they are set inside the sandbox.
  for (const [name, value] of Object.entries(plan.env ?? {})) {
    if (isLoaderVariable(name)) args.push("--setenv", name, value);
  }
  args.push("--die-with-parent", "--new-session", "--chdir", plan.cwd, "--", ...plan.command);
  return args;
}

/**
 * The environment to start bwrap with: `env` (nothing of the kernel's) minus its loader
 * variables, since bwrap hands its own environment to the command. Kept apart from
 * {@link bwrapArgs} so that no other value (tokens passed in EXEC's `env`) ever appears in a
 * process's arguments.
 */
export function bwrapEnvironment(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !isLoaderVariable(name)));
}

/**
 * Resolve and classify `paths` for {@link BwrapPlan.hidden}: symlinks are followed (hiding the
 * target hides it under every name), missing paths are skipped, duplicates removed.
 */
export async function classifyPaths(paths: readonly string[]): Promise<HiddenPath[]> {
  const out = new Map<string, HiddenPath>();
  for (const p of paths) {
    let real: string;
    let info: Deno.FileInfo;
    try {
      real = await Deno.realPath(resolve(p));
      info = await Deno.stat(real);
    } catch {
      continue; // does not exist (or cannot be seen): nothing to hide
    }
    if (real === "/") continue;
    out.set(real, { path: real, kind: info.isDirectory ? "dir" : "file" });
  }
  return [...out.values()];
}

/**
 * Sockets and runtime directories hidden from every bubblewrap sandbox on top of the blocked
 * paths: a Unix socket stays connectable on a read-only mount, and these hand out the user's
 * credentials (ssh-agent, gpg-agent, D-Bus session, keyrings) or root (container runtimes).
 * `env` is the kernel's environment; paths that do not exist are skipped later.
 */
export function ambientSecretPaths(
  env: { SSH_AUTH_SOCK?: string; XDG_RUNTIME_DIR?: string },
  uid: number | null,
): string[] {
  const out = [
    "/run/user", // per-user runtime dirs: D-Bus session, systemd, keyrings, gpg-agent, podman
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd",
    "/run/podman",
    "/run/dbus",
    "/var/run/dbus",
    "/run/snapd.socket",
    "/run/snapd-snap.socket",
  ];
  if (uid !== null) out.push(`/run/user/${uid}`);
  if (env.XDG_RUNTIME_DIR) out.push(env.XDG_RUNTIME_DIR);
  if (env.SSH_AUTH_SOCK) out.push(env.SSH_AUTH_SOCK);
  return out.filter((p) => isAbsolute(p));
}

/** Result of probing bubblewrap on this host. */
export type BwrapStatus =
  | { available: true; path: string; version: string }
  | { available: false; reason: string };

let probe: Promise<BwrapStatus> | null = null;

/**
 * Is bubblewrap on PATH and can it actually start a sandbox here (user namespaces, /proc,
 * network namespace)? Probed once per process; later calls return the cached answer.
 */
export function bwrapStatus(): Promise<BwrapStatus> {
  return probe ??= probeBwrap();
}

async function probeBwrap(): Promise<BwrapStatus> {
  const path = which("bwrap", Deno.env.get("PATH") || DEFAULT_PATH);
  if (!path) return { available: false, reason: "`bwrap` was not found on PATH" };
  try {
    const out = await new Deno.Command(path, {
      args: [
        ...SANDBOXED_BASE,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--",
        "/bin/sh",
        "-c",
        "echo agentos-bwrap-ok",
      ],
      clearEnv: true,
      env: { PATH: DEFAULT_PATH },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    if (out.code !== 0 || stdout !== "agentos-bwrap-ok") {
      const stderr = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
      return {
        available: false,
        reason: `\`${path}\` cannot start a sandbox here (exit ${out.code}${
          stderr ? `: ${stderr}` : ""
        })`,
      };
    }
    const v = await new Deno.Command(path, { args: ["--version"], stdout: "piped", stderr: "null" })
      .output();
    return {
      available: true,
      path,
      version: new TextDecoder().decode(v.stdout).trim() || "bubblewrap",
    };
  } catch (err) {
    return { available: false, reason: `\`${path}\` failed to run: ${(err as Error).message}` };
  }
}

/** The error EXEC answers when a level needs bubblewrap and it is not usable. */
export function bwrapUnavailable(level: Level, reason: string): SyscallError {
  return new SyscallError(
    "ERROR",
    `EXEC at level ${level} must run inside a bubblewrap sandbox, and bubblewrap is not usable: ${reason}; ${BWRAP_INSTALL_HINT}. The command was not run.`,
  );
}

/** Log whether EXEC confinement is available (called once at kernel start). */
export async function logExecConfinement(log: {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}): Promise<void> {
  const status = await bwrapStatus();
  if (status.available) {
    log.info("EXEC confinement available", { bwrap: status.path, version: status.version });
  } else {
    log.warn(
      "EXEC confinement UNAVAILABLE: EXEC at levels standard and sandboxed will be refused",
      { reason: status.reason, fix: BWRAP_INSTALL_HINT },
    );
  }
}
