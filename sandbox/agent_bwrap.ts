/**
 * The OS layer under an agent's Deno flags: a bubblewrap command line that keeps the host's
 * filesystem as it is, except that blocked paths are masked (an empty tmpfs over a directory,
 * `/dev/null` over a file), the agent's own paths are bound back, `/proc` and `/dev` are the
 * sandbox's own, the agent gets its own pid namespace (all its processes die with it), and no
 * network namespace access unless granted. Deno's checks do not resolve symlinks; these mounts
 * do not care: a symlink into a masked path finds nothing.
 *
 * Unrelated to EXEC's sandbox (`sandbox/bwrap.ts`): this one wraps the agent process itself.
 * @module
 */

/** What to mask and what to keep. All paths absolute and existing. */
export interface AgentMounts {
  /** Directories to hide under an empty tmpfs. */
  maskDirs: readonly string[];
  /** Files (or sockets) to hide under `/dev/null`. */
  maskFiles: readonly string[];
  /** The agent's own paths to bind back after masking (read-write). */
  keep: readonly string[];
  /** Own files to bind back read-only (e.g. its script inside a masked directory). */
  keepReadOnly: readonly string[];
  /** Give the agent a private network namespace (no network at all but filesystem sockets). */
  noNetwork: boolean;
  /** Mask blocked paths and use private /proc and /dev (false: pid namespace only). */
  confine: boolean;
  /**
   * Mount the host's filesystem read-only (with `confine`), only `keep` writable: for levels
   * whose writes stop at their workspace. Deno's checks do not resolve symlinks, so without
   * this an agent that made `workspace/link -> /anywhere` (EXEC may) writes through it.
   */
  readOnlyRoot?: boolean;
}

/** bubblewrap arguments (without the command) for an agent. Pure. */
export function agentBwrapArgs(m: AgentMounts): string[] {
  const root = m.confine && m.readOnlyRoot ? "--ro-bind" : "--dev-bind";
  const args = [root, "/", "/", "--unshare-pid", "--die-with-parent"];
  if (!m.confine) return args;
  args.push("--proc", "/proc", "--dev", "/dev");
  if (m.noNetwork) args.push("--unshare-net");
  // Shorter paths first, so a mask inside another mask lands on the outer tmpfs.
  for (const d of [...m.maskDirs].sort((a, b) => a.length - b.length)) args.push("--tmpfs", d);
  for (const f of m.maskFiles) args.push("--ro-bind", "/dev/null", f);
  for (const k of m.keep) args.push("--bind", k, k);
  for (const k of m.keepReadOnly) args.push("--ro-bind", k, k);
  return args;
}
