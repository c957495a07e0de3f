/**
 * The OS layer under an agent's Deno flags: a bubblewrap command line. Deno's permission checks
 * compare paths as written and do not resolve symlinks, so a symlink in the agent's workspace
 * (one an EXEC made: `ln -s /etc link`) would take a Deno read or write grant anywhere the
 * kernel's user may go. The mounts make sure that what the OS lets the process reach is never
 * more than the level allows, whatever the symlinks:
 *
 * - `host-rw` (standard: it may write everything outside the state directory): the host's
 *   filesystem as it is.
 * - `host-ro` (readonly): the host's filesystem read-only.
 * - `system` (sandboxed, minimal: only their own files): an empty root with the system's
 *   program and library directories and a few files of `/etc` read-only, a private `/tmp`, the
 *   Deno executable, and the agent's own paths — nothing else of the host (no `/root`,
 *   `/home`, `/tmp`, `/var`, the rest of `/etc`...).
 *
 * In every view blocked paths are masked (an empty tmpfs over a directory, `/dev/null` over a
 * file), the agent's own paths are bound back, `/proc` and `/dev` are the sandbox's own, the
 * agent gets its own pid namespace (all its processes die with it), and no network namespace
 * access unless granted.
 *
 * Unrelated to EXEC's sandbox (`sandbox/bwrap.ts`): this one wraps the agent process itself.
 * @module
 */

/** What the agent's root filesystem starts from (see the module documentation). */
export type AgentView = "host-rw" | "host-ro" | "system";

/** What to mask and what to keep. All paths absolute and existing. */
export interface AgentMounts {
  /** Directories to hide under an empty tmpfs. */
  maskDirs: readonly string[];
  /** Files (or sockets) to hide under `/dev/null`. */
  maskFiles: readonly string[];
  /** The agent's own paths to bind back after masking (read-write). */
  keep: readonly string[];
  /** Own files to bind back read-only (its script, the SDK, the Deno executable). */
  keepReadOnly: readonly string[];
  /** Give the agent a private network namespace (no network at all but filesystem sockets). */
  noNetwork: boolean;
  /** Mask blocked paths and use private /proc and /dev (false: pid namespace only). */
  confine: boolean;
  /** The root filesystem the agent starts from (when confined). Default `host-rw`. */
  view?: AgentView;
  /** For the `system` view: host directories bound read-only. */
  systemDirs?: readonly string[];
  /** For the `system` view: top-level symlinks recreated (e.g. `/lib -> usr/lib`). */
  systemLinks?: readonly { path: string; target: string }[];
  /**
   * The record's own write roots, bound writable right after the base view (so masks inside
   * them still apply). Not needed in `host-rw`.
   */
  writable?: readonly string[];
}

/** Directories of the host a `system` view shows (those that exist; symlinks are recreated). */
export const SYSTEM_DIRS: readonly string[] = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
];

/**
 * The few files of `/etc` a `system` view shows (name resolution, time zone, public CA
 * certificates) — not `/etc` itself, which holds host keys (`/etc/ssh/ssh_host_*_key`), TLS
 * private keys and other files the kernel's user may read.
 */
export const SYSTEM_ETC: readonly string[] = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/host.conf",
  "/etc/nsswitch.conf",
  "/etc/gai.conf",
  "/etc/localtime",
  "/etc/ssl/certs",
  "/etc/ca-certificates",
  "/etc/pki/tls/certs",
];

/** bubblewrap arguments (without the command) for an agent. Pure. */
export function agentBwrapArgs(m: AgentMounts): string[] {
  const view = m.confine ? m.view ?? "host-rw" : "host-rw";
  const args: string[] = [];
  if (view === "host-rw") args.push("--dev-bind", "/", "/");
  else if (view === "host-ro") args.push("--ro-bind", "/", "/");
  else {
    // A private /tmp first, so read or write roots under /tmp are bound on top of it.
    if (m.confine) args.push("--tmpfs", "/tmp");
    for (const d of m.systemDirs ?? []) args.push("--ro-bind", d, d);
    for (const l of m.systemLinks ?? []) args.push("--symlink", l.target, l.path);
  }
  args.push("--unshare-pid", "--die-with-parent");
  if (!m.confine) return args;
  if (view !== "host-rw") { for (const w of m.writable ?? []) args.push("--bind", w, w); }
  args.push("--proc", "/proc", "--dev", "/dev");
  if (m.noNetwork) args.push("--unshare-net");
  // Shorter paths first, so a mask inside another mask lands on the outer tmpfs.
  for (const d of [...m.maskDirs].sort((a, b) => a.length - b.length)) args.push("--tmpfs", d);
  for (const f of m.maskFiles) args.push("--ro-bind", "/dev/null", f);
  for (const k of m.keep) args.push("--bind", k, k);
  for (const k of m.keepReadOnly) args.push("--ro-bind", k, k);
  return args;
}
