/**
 * Where the kernel keeps its files under the state directory. Kernel-only files live apart
 * from workspaces so that an agent's denies (kernel files, other agents) never cover its own
 * workspace (DESIGN section 3).
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";

/** Absolute paths of the state directory's parts. */
export interface StateLayout {
  root: string;
  /** Kernel-only files: pid file, kernel log. Denied to every agent. */
  kernelDir: string;
  /** Per-agent private sockets, one subdirectory per agent. */
  runDir: string;
  /** Per-agent log files. Denied to every agent. */
  logsDir: string;
  /** One workspace per identity. */
  workspacesDir: string;
  /**
   * The SDK copy agents load (written by the kernel at start). Blocked for every identity's
   * syscalls and EXEC, bound read-only into every confined agent: no agent can tamper with the
   * SDK other agents run.
   */
  sdkDir: string;
}

/**
 * `path` with the symlinks of its longest existing prefix resolved (the rest as given), so
 * that paths derived from it (workspaces, allowed roots) are canonical.
 */
function realPrefix(path: string): string {
  const missing: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(Deno.realPathSync(at), ...missing.reverse());
    } catch {
      const up = dirname(at);
      if (up === at) return path;
      missing.push(basename(at));
      at = up;
    }
  }
}

/** Compute the layout of `stateDir` (nothing is created; symlinks in it are resolved). */
export function stateLayout(stateDir: string): StateLayout {
  const root = realPrefix(resolve(stateDir));
  return {
    root,
    kernelDir: join(root, "kernel"),
    runDir: join(root, "run"),
    logsDir: join(root, "logs"),
    workspacesDir: join(root, "workspaces"),
    sdkDir: join(root, "sdk"),
  };
}

/** Create every directory of the layout, private to the kernel's user. */
export async function ensureLayout(layout: StateLayout): Promise<void> {
  for (
    const dir of [
      layout.root,
      layout.kernelDir,
      layout.runDir,
      layout.logsDir,
      layout.workspacesDir,
    ]
  ) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  }
}
