/**
 * Path checks (DESIGN sections 3 and 4): every path a syscall touches is resolved — relative to
 * the identity's workspace, `..` and symlinks anywhere in it resolved by the operating system —
 * and only then compared, on whole path components, with the identity's
 * `filesystem.read` / `filesystem.write` roots and its `filesystem.blocked` list.
 *
 * Always blocked, whatever the record says:
 * - every other identity's workspace: the workspaces directory (the parent of the identity's own
 *   workspace) except the identity's own workspace;
 * - `/proc` (the kernel's own environment, e.g. API keys, is readable there).
 *
 * Blocked entries are compared both as written and resolved (so a blocked path that is itself a
 * symlink, or sits under one, still blocks what it points to).
 *
 * Checking a path and then opening it is a race (the path can be swapped for a symlink in
 * between); {@link openVerified} opens with `O_NOFOLLOW` and then verifies, through
 * `/proc/self/fd`, that the file opened really is the checked path.
 * @module
 */
import { basename, dirname } from "node:path";
import { constants, promises as fsp } from "node:fs";
import { SyscallError } from "../kernel/errors.ts";
import type { Identity } from "../kernel/identity.ts";

/** Longest path accepted, in UTF-16 units. */
export const MAX_PATH_LENGTH = 4096;
/** Most path components resolved in one path. */
const MAX_COMPONENTS = 1024;

/** Paths blocked for every identity, in addition to its record's `filesystem.blocked`. */
export const ALWAYS_BLOCKED: readonly string[] = ["/proc"];
/**
 * Paths never written, whatever the record says: sysfs files are regular files to `stat`, but
 * writing them changes kernel and device settings (a kernel running as root could be made to
 * suspend the machine by an "append").
 */
export const WRITE_BLOCKED: readonly string[] = ["/sys"];

/** The access a path is checked for. */
export type Access = "read" | "write";

/** Options of {@link checkPath}. */
export interface CheckOptions {
  /** Extra blocked paths, on top of the identity's `filesystem.blocked`. */
  blocked?: readonly string[];
  /**
   * The directory holding every identity's workspace (all of it but the identity's own is
   * blocked). Default: the parent of the identity's workspace. The kernel passes
   * `kernel.layout.workspacesDir`.
   */
  workspacesDir?: string;
  /**
   * The kernel's state directory: all of it but the identity's own workspace is blocked (the
   * kernel's files, the agents' SDK runtime that every agent imports, other workspaces). The
   * kernel passes `kernel.layout.root`.
   */
  stateDir?: string;
  /**
   * For `write`: accept a path whose parent directories do not exist yet (WRITE `mkdirs`);
   * the directories that would be created must be writable too. Default false.
   */
  allowMissingParents?: boolean;
}

/** What {@link checkPathInfo} found. */
export interface CheckedPath {
  /** Absolute real path (symlinks and `..` resolved; missing components appended as given). */
  path: string;
  /** True if the path exists. */
  exists: boolean;
  /**
   * Directories that do not exist yet, outermost first (non-empty only for `write` with
   * `allowMissingParents`).
   */
  missingDirs: string[];
}

/** Normalize an absolute path lexically: no `//`, no trailing `/` (except the root). */
function tidy(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  return "/" + parts.join("/");
}

/**
 * True if `path` is `root` or lies inside it, comparing whole components: `/a/bc` is not under
 * `/a/b`. Both must be absolute; they are tidied (`//`, trailing `/`) but not resolved.
 */
export function isUnder(path: string, root: string): boolean {
  if (!path.startsWith("/") || !root.startsWith("/")) return false;
  const p = tidy(path);
  const r = tidy(root);
  if (r === "/") return true;
  return p === r || p.startsWith(r + "/");
}

/** True if `path` is under any of `roots`. */
export function isUnderAny(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => isUnder(path, root));
}

/**
 * A test "is this path under one of `roots`?" ({@link isUnder} semantics) that costs one set
 * lookup per component of the path, however many roots there are: for comparing whole lists
 * (1,024 blocked paths against 1,024 would otherwise be a million comparisons, run
 * synchronously in the kernel).
 */
export function underAnyOf(roots: readonly string[]): (path: string) => boolean {
  const set = new Set(roots.filter((r) => r.startsWith("/")).map(tidy));
  if (set.has("/")) return (path) => path.startsWith("/");
  return (path) => {
    if (!path.startsWith("/")) return false;
    const p = tidy(path);
    for (let at = p.length; at > 0; at = p.lastIndexOf("/", at - 1)) {
      if (set.has(p.slice(0, at))) return true;
    }
    return false;
  };
}

/** Validate a caller-given path string, or throw `INVALID_MSG`. */
export function validatePathInput(path: string): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new SyscallError("INVALID_MSG", "path is empty; give a file path");
  }
  if (path.includes("\0")) {
    throw new SyscallError("INVALID_MSG", "path contains a NUL byte");
  }
  if (path.length > MAX_PATH_LENGTH) {
    throw new SyscallError("INVALID_MSG", `path is longer than ${MAX_PATH_LENGTH} characters`);
  }
}

/** Make `path` absolute against `workspace`, without resolving anything. */
export function absolutize(path: string, workspace: string): string {
  return path.startsWith("/") ? path : `${workspace.replace(/\/+$/, "")}/${path}`;
}

/** Result of resolving a path that may not fully exist. */
interface Loose {
  /** Real path of the longest existing prefix. */
  base: string;
  /** Components after `base` that do not exist (as given, never `.` or `..`). */
  missing: string[];
}

function osError(err: unknown, path: string): SyscallError {
  if (err instanceof SyscallError) return err;
  if (err instanceof Deno.errors.FilesystemLoop) {
    return new SyscallError("INVALID_MSG", `${path}: too many levels of symbolic links`);
  }
  if (err instanceof Deno.errors.NotADirectory) {
    return new SyscallError("NOT_FOUND", `${path}: a component of the path is not a directory`);
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: the operating system refused access to ${path}`,
    );
  }
  if (err instanceof Deno.errors.NotFound) {
    return new SyscallError("NOT_FOUND", `${path}: no such file or directory`);
  }
  return new SyscallError("ERROR", `${path}: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * Resolve absolute `abs` as far as it exists, by the operating system's rules (so `link/..`
 * means what the kernel would make of it). Components after the existing prefix are returned
 * as `missing`; a missing component that is `.` or `..` cannot be resolved and is NOT_FOUND.
 *
 * The longest existing prefix is found by bisection (a prefix exists only if every shorter
 * one does): a few `realpath` calls for any depth, so that deep paths that do not exist (say,
 * 256 roots of 1,000 components each) cost no more than shallow ones.
 */
async function resolveLoose(abs: string): Promise<Loose> {
  const parts = abs.split("/").filter((p) => p !== "");
  if (parts.length > MAX_COMPONENTS) {
    throw new SyscallError("INVALID_MSG", `path has more than ${MAX_COMPONENTS} components`);
  }
  const real = async (k: number): Promise<string | null> => {
    try {
      return await Deno.realPath("/" + parts.slice(0, k).join("/"));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw osError(err, abs);
    }
  };
  const whole = await real(parts.length);
  if (whole !== null) return { base: whole, missing: [] };
  // Invariant: prefix `lo` exists (resolving to `base`), prefix `hi + 1` does not.
  let lo = 0;
  let hi = parts.length - 1;
  let base = "/";
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const r = await real(mid);
    if (r !== null) {
      lo = mid;
      base = r;
    } else {
      hi = mid - 1;
    }
  }
  const missing = parts.slice(lo);
  if (missing.some((m) => m === "." || m === "..")) {
    throw new SyscallError("NOT_FOUND", `${abs}: no such file or directory`);
  }
  return { base, missing };
}

/** Join a real base path and missing components. */
function joinMissing(base: string, missing: readonly string[]): string {
  return missing.length === 0 ? base : tidy(`${base}/${missing.join("/")}`);
}

/**
 * Resolve `path` to its real form as far as it exists; for a non-existent tail, the real
 * form of the existing prefix plus the tail as written. Never fails for a missing file (it
 * is a best effort used for blocked and allowed roots).
 */
export async function realish(path: string): Promise<string> {
  if (!path.startsWith("/")) return path;
  try {
    const loose = await resolveLoose(path);
    return joinMissing(loose.base, loose.missing);
  } catch {
    return tidy(path);
  }
}

/**
 * Resolve an allowed root: its parent directories are resolved, its last component is not
 * followed. A root that is (or has been replaced by) a symlink therefore grants nothing
 * through it — an agent that swaps its own workspace for a link to `/` gains nothing.
 */
export async function realRoot(root: string): Promise<string> {
  const t = tidy(root);
  if (t === "/") return "/";
  const parent = await realish(dirname(t));
  return tidy(`${parent}/${basename(t)}`);
}

/**
 * The form an allowed root is stored in (SET_PERMS): `root` with every symlink and `..` in its
 * existing part resolved, the last component included. A root given through a link (say
 * `workspace/link/etc` with `link -> /`) is thereby recorded, and bound-checked, as what it
 * really names (`/etc`).
 */
export async function canonicalRoot(root: string): Promise<string> {
  return await realish(tidy(root));
}

/**
 * True if `root` is still canonical: no component of its existing part is a symlink (or was
 * swapped for one since the root was recorded). Only such roots grant anything: a root that
 * now goes through a link would otherwise grant whatever the link points to.
 */
export async function isCanonicalRoot(root: string): Promise<boolean> {
  const t = tidy(root);
  return (await realish(t)) === t;
}

/**
 * Every blocked root for `identity` (its record's `filesystem.blocked`, `extra`, and
 * {@link ALWAYS_BLOCKED}), both as written and resolved. Other identities' workspaces are not
 * in this list: see {@link workspaceRoots}.
 */
export async function blockedRoots(
  identity: Identity,
  extra: readonly string[],
): Promise<string[]> {
  const listed = [...identity.permissions.filesystem.blocked, ...extra, ...ALWAYS_BLOCKED]
    .filter((p) => p.startsWith("/"));
  const resolved = await Promise.all(listed.map(realish));
  return [...new Set([...listed.map(tidy), ...resolved])];
}

/**
 * The workspaces directory (every identity's workspace lives in it; all of it but `own` is
 * blocked for `identity`) and the identity's own workspace.
 */
export function workspaceRoots(
  identity: Identity,
  workspacesDir?: string,
): { workspacesDir: string; own: string } {
  const own = tidy(identity.workspace);
  return { workspacesDir: workspacesDir ? tidy(workspacesDir) : dirname(own), own };
}

/** True if `target` lies in `dir` (written or resolved) but not in `identity`'s workspace. */
async function insideBut(identity: Identity, target: string, dir: string): Promise<boolean> {
  const own = tidy(identity.workspace);
  const [ownReal, dirReal] = await Promise.all([realRoot(own), realish(dir)]);
  for (const [d, o] of [[dir, own], [dirReal, ownReal]]) {
    if (isUnder(target, d) && !isUnder(target, o)) return true;
  }
  return false;
}

/**
 * The allowed roots of `access` that still grant anything: those that are canonical (see
 * {@link isCanonicalRoot}), tidied. Targets are real paths, so they are compared lexically.
 */
export async function allowedRoots(
  identity: Identity,
  access: Access,
): Promise<{ roots: string[]; through: string[] }> {
  const fs = identity.permissions.filesystem;
  const listed = (access === "read" ? fs.read : fs.write).filter((p) => p.startsWith("/"));
  const ok = await Promise.all(listed.map(isCanonicalRoot));
  return {
    roots: listed.filter((_, i) => ok[i]).map(tidy),
    through: listed.filter((_, i) => !ok[i]),
  };
}

/**
 * Check that `identity` may `access` `target` (already resolved): not blocked, not another
 * identity's workspace, and under one of its allowed roots. Throws PERMISSION_DENIED.
 */
export async function checkResolved(
  identity: Identity,
  target: string,
  access: Access,
  options: Pick<CheckOptions, "blocked" | "workspacesDir" | "stateDir"> = {},
  shown: string = target,
): Promise<void> {
  const blocked = await blockedRoots(identity, options.blocked ?? []);
  const hit = blocked.find((b) => isUnder(target, b));
  if (hit !== undefined) {
    throw new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} is a blocked path (under ${hit})`,
    );
  }
  const settings = access === "write" ? WRITE_BLOCKED.find((b) => isUnder(target, b)) : undefined;
  if (settings !== undefined) {
    throw new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} is under ${settings} (kernel and device settings); WRITE never writes there`,
    );
  }
  const { workspacesDir } = workspaceRoots(identity, options.workspacesDir);
  if (await insideBut(identity, target, workspacesDir)) {
    throw new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} is inside another identity's workspace`,
    );
  }
  if (options.stateDir !== undefined && await insideBut(identity, target, tidy(options.stateDir))) {
    throw new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} is among the kernel's own files (its state directory); only your workspace there is yours`,
    );
  }
  const { roots, through } = await allowedRoots(identity, access);
  if (!isUnderAny(target, roots)) {
    const level = identity.permissions.level;
    const note = through.length === 0
      ? ""
      : ` (filesystem.${access} ${
        through.slice(0, 3).join(", ")
      } goes through a symbolic link and grants nothing; name the real path)`;
    throw new SyscallError(
      "PERMISSION_DENIED",
      roots.length === 0 && through.length === 0
        ? `Permission denied: level ${level} may not ${access} any file`
        : `Permission denied: ${shown} is outside the paths this identity (level ${level}) may ${access}${note}`,
    );
  }
}

/**
 * Resolve and check `path` for `access`, returning what was found. See {@link checkPath}.
 */
export async function checkPathInfo(
  identity: Identity,
  path: string,
  access: Access,
  options: CheckOptions = {},
): Promise<CheckedPath> {
  validatePathInput(path);
  const abs = absolutize(path, identity.workspace);
  const loose = await resolveLoose(abs);
  const target = joinMissing(loose.base, loose.missing);
  if (loose.missing.length > 0) {
    // The first missing component may still exist as a dangling symlink: realpath could not
    // follow it. Writing through it (or creating directories behind it) would follow it.
    const first = joinMissing(loose.base, loose.missing.slice(0, 1));
    let dangling = false;
    try {
      dangling = (await Deno.lstat(first)).isSymlink;
    } catch { /* truly missing */ }
    if (dangling && access === "write") {
      throw new SyscallError(
        "PERMISSION_DENIED",
        `Permission denied: ${path} goes through a symbolic link (${first}) whose target does not exist; WRITE never follows a symlink it cannot check`,
      );
    }
  }
  await checkResolved(identity, target, access, options, path);
  if (access === "read") {
    if (loose.missing.length > 0) {
      throw new SyscallError("NOT_FOUND", `${path}: no such file or directory`);
    }
    return { path: target, exists: true, missingDirs: [] };
  }
  // write
  if (loose.missing.length === 0) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(abs);
    } catch (err) {
      throw osError(err, path);
    }
    if (info.isSymlink) {
      throw new SyscallError(
        "PERMISSION_DENIED",
        `Permission denied: ${path} is a symbolic link; WRITE never writes through a symlink (write to its target's path instead)`,
      );
    }
    return { path: target, exists: true, missingDirs: [] };
  }
  const missingDirs: string[] = [];
  for (let i = 1; i < loose.missing.length; i++) {
    missingDirs.push(joinMissing(loose.base, loose.missing.slice(0, i)));
  }
  if (missingDirs.length > 0) {
    if (!options.allowMissingParents) {
      throw new SyscallError(
        "NOT_FOUND",
        `${path}: the directory ${missingDirs[0]} does not exist (pass mkdirs: true to create it)`,
      );
    }
    // Directories created on the way must be writable too.
    await checkResolved(identity, missingDirs[0], "write", options, missingDirs[0]);
  }
  return { path: target, exists: false, missingDirs };
}

/**
 * Resolve `path` for `identity` and check it for `access`. Returns the absolute real path
 * (for a path that does not exist yet — a WRITE that creates — the real parent plus the name).
 *
 * Relative paths are relative to the identity's workspace; `..` and symlinks anywhere are
 * resolved by the operating system. A final component that is a symlink is refused for
 * `write`. Throws {@link SyscallError}: `PERMISSION_DENIED` (text "Permission denied: ..."),
 * `NOT_FOUND` (missing file on read, missing parent on write), `INVALID_MSG` (empty path,
 * NUL byte, too long, symlink loop).
 */
export async function checkPath(
  identity: Identity,
  path: string,
  access: Access,
  options?: CheckOptions,
): Promise<string> {
  return (await checkPathInfo(identity, path, access, options)).path;
}

// --- opening what was checked -------------------------------------------------------------

/** `open(2)` flags used by {@link openVerified} (from `node:fs`). */
export const O = constants;

let procFdWorks: boolean | undefined;

async function hasProcFd(): Promise<boolean> {
  if (procFdWorks === undefined) {
    try {
      await Deno.readLink("/proc/self/fd/0");
      procFdWorks = true;
    } catch {
      procFdWorks = false;
    }
  }
  return procFdWorks;
}

/**
 * Verify that open file `handle` is the file at `expected` (a real path): through
 * `/proc/self/fd` where available (the kernel's own record of what was opened), else by
 * comparing device and inode with the path's `lstat` and re-resolving the path.
 */
export async function verifyOpened(handle: fsp.FileHandle, expected: string): Promise<boolean> {
  if (await hasProcFd()) {
    try {
      const opened = await Deno.readLink(`/proc/self/fd/${handle.fd}`);
      if (opened === expected) return true;
      // Replaced since the open (an atomic rename over it): the file we hold was unlinked
      // from the checked path itself, so it is what was checked.
      return opened === `${expected} (deleted)` && (await handle.stat()).nlink === 0;
    } catch {
      return false;
    }
  }
  try {
    const [opened, atPath, real] = await Promise.all([
      handle.stat(),
      Deno.lstat(expected),
      Deno.realPath(expected),
    ]);
    return real === expected && atPath.dev === opened.dev && atPath.ino === opened.ino;
  } catch {
    return false;
  }
}

/**
 * Open real path `path` with `flags` (O_NOFOLLOW is always added), then verify
 * that what was opened is `path` — defeating a swap of any component for a symlink between
 * the check and the open. On mismatch the handle is closed and PERMISSION_DENIED thrown.
 */
export async function openVerified(
  path: string,
  flags: number,
  mode = 0o666,
  shown = path,
): Promise<fsp.FileHandle> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, flags | O.O_NOFOLLOW, mode);
  } catch (err) {
    throw openError(err, shown);
  }
  if (!(await verifyOpened(handle, path))) {
    await handle.close().catch(() => {});
    throw new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} changed between the permission check and the open (a path component was swapped)`,
    );
  }
  return handle;
}

/** Map a failed `open`/`mkdir` of `shown` to a {@link SyscallError}. */
function openError(err: unknown, shown: string): SyscallError {
  const code = (err as { code?: string }).code;
  if (code === "ELOOP" || code === "ENOTDIR") {
    return new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: ${shown} became a symbolic link after it was checked`,
    );
  }
  if (code === "EEXIST") return new SyscallError("ERROR", `${shown} already exists`);
  if (code === "ENOENT") return new SyscallError("NOT_FOUND", `${shown}: no such file`);
  if (code === "EACCES" || code === "EPERM") {
    return new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: the operating system refused to open ${shown}`,
    );
  }
  if (code === "EISDIR") return new SyscallError("INVALID_MSG", `${shown} is a directory`);
  if (code === "ENXIO") return new SyscallError("INVALID_MSG", `${shown} is not a regular file`);
  return new SyscallError("ERROR", `cannot open ${shown}: ${(err as Error)?.message ?? err}`);
}

/**
 * A directory held open and verified to be a checked real path. Entries are reached through
 * `/proc/self/fd/<fd>/<name>` (the `openat(2)` of this runtime), so once the directory is
 * verified, swapping any component of its path for a symlink changes nothing: every file is
 * created, opened, renamed or linked inside this very directory. Without `/proc`, entries are
 * reached by path and each opened file is verified instead.
 */
export class VerifiedDir {
  private constructor(
    /** The directory's real path (as checked). */
    readonly path: string,
    private readonly handle: fsp.FileHandle,
    private readonly viaProc: boolean,
  ) {}

  /** Open real directory path `path` and verify it is what was checked. */
  static async open(path: string, shown = path): Promise<VerifiedDir> {
    const handle = await openVerified(path, O.O_RDONLY | O.O_DIRECTORY, 0, shown);
    return new VerifiedDir(path, handle, await hasProcFd());
  }

  /** A path that reaches entry `name` of this exact directory. */
  entry(name: string): string {
    if (name === "" || name === "." || name === ".." || name.includes("/")) {
      throw new SyscallError("INVALID_MSG", `"${name}" is not a file name`);
    }
    return this.viaProc
      ? `/proc/self/fd/${this.handle.fd}/${name}`
      : `${this.path === "/" ? "" : this.path}/${name}`;
  }

  /** Open entry `name` with `flags` (O_NOFOLLOW added: a symlink there is refused). */
  async openEntry(
    name: string,
    flags: number,
    mode = 0o666,
    shown = name,
  ): Promise<fsp.FileHandle> {
    const path = this.entry(name);
    // Reached by path (no /proc): open it the way every checked path is opened, then verified.
    if (!this.viaProc) return await openVerified(path, flags, mode, shown);
    try {
      return await fsp.open(path, flags | O.O_NOFOLLOW, mode);
    } catch (err) {
      throw openError(err, shown);
    }
  }

  /** Create (if missing) and open subdirectory `name`; refused if a non-directory is there. */
  async mkdirEntry(name: string, shown = name): Promise<VerifiedDir> {
    try {
      await Deno.mkdir(this.entry(name), { mode: 0o777 });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw openError(err, shown);
    }
    const child = `${this.path === "/" ? "" : this.path}/${name}`;
    if (!this.viaProc) return await VerifiedDir.open(child, shown);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.entry(name), O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW);
    } catch (err) {
      throw openError(err, shown);
    }
    return new VerifiedDir(child, handle, true);
  }

  /** fsync the directory (makes a rename or link in it durable); best effort. */
  async sync(): Promise<void> {
    await this.handle.sync().catch(() => {});
  }

  /** Close the directory handle. */
  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

/** The directory part and the name of a real path. */
export function splitPath(path: string): { dir: string; name: string } {
  return { dir: dirname(path), name: basename(path) };
}
