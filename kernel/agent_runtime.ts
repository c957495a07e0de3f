/**
 * What agents run on: the Deno executable for agents (DESIGN section 5), the read-only SDK copy
 * with its import map and bootstrap, and the host facilities the supervisor relies on
 * (`setpriv --pdeathsig`, `/proc`).
 * @module
 */
import { basename, join } from "node:path";
import { isExecutable, which } from "../sandbox/which.ts";

/** Where the agent runtime comes from, for the start-up log line. */
export interface AgentDeno {
  path: string | null;
  source: "--deno" | "AGENTOS_DENO" | "PATH" | "Deno.execPath()" | "none";
}

/** True when this process is a `deno compile` binary (its executable is not a Deno CLI). */
export function isCompiled(): boolean {
  return !/^deno(\.exe)?$/.test(basename(Deno.execPath()));
}

/** Resolve the Deno for agents: `--deno`, `AGENTOS_DENO`, `deno` on PATH, `Deno.execPath()`. */
export function resolveAgentDeno(flag?: string): AgentDeno {
  if (flag) return { path: isExecutable(flag) ? flag : null, source: "--deno" };
  const env = Deno.env.get("AGENTOS_DENO");
  if (env) return { path: isExecutable(env) ? env : null, source: "AGENTOS_DENO" };
  const onPath = which("deno");
  if (onPath) return { path: onPath, source: "PATH" };
  if (!isCompiled()) return { path: Deno.execPath(), source: "Deno.execPath()" };
  return { path: null, source: "none" };
}

/** The SDK files agents load, relative to the repository root (keep in step with sdk/mod.ts). */
export const SDK_FILES = ["sdk/mod.ts", "sdk/client.ts", "kernel/frame.ts", "kernel/protocol.ts"];

/** Paths of the runtime directory the kernel prepares for agents. */
export interface SdkRuntime {
  dir: string;
  importMap: string;
  bootstrap: string;
  /** Every file written, with the text it must hold (for {@link verifySdk}). */
  files: ReadonlyMap<string, string>;
}

const BOOTSTRAP =
  `// AgentOS agent bootstrap (written by the kernel). The script is loaded through a dynamic
// import with a computed specifier so that its whole module graph is held to the agent's
// read permissions.
const script = Deno.env.get("AGENTOS_SCRIPT");
if (!script) throw new Error("AGENTOS_SCRIPT is not set");
await import(new URL("file://" + script.split("/").map(encodeURIComponent).join("/")).href);
`;

/**
 * Copy the SDK into `dir` (read-only), with an import map mapping `agentos` to it and the
 * bootstrap module. Works from a source checkout and from a compiled binary that includes the
 * SDK files (`deno compile --include sdk --include kernel/frame.ts --include kernel/protocol.ts`).
 */
export async function prepareSdk(dir: string): Promise<SdkRuntime> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  await Deno.chmod(dir, 0o755);
  const root = new URL("../", import.meta.url);
  const files = new Map<string, string>();
  for (const rel of SDK_FILES) {
    files.set(join(dir, rel), await Deno.readTextFile(new URL(rel, root)));
  }
  const importMap = join(dir, "import_map.json");
  const bootstrap = join(dir, "bootstrap.ts");
  files.set(
    importMap,
    JSON.stringify({ imports: { agentos: `file://${join(dir, "sdk", "mod.ts")}` } }),
  );
  files.set(bootstrap, BOOTSTRAP);
  for (const [path, text] of files) await writeReadOnly(path, text);
  return { dir, importMap, bootstrap, files };
}

/** Replace whatever is at `path` by a regular read-only file holding `text`. */
async function writeReadOnly(path: string, text: string): Promise<void> {
  const parent = join(path, "..");
  await Deno.mkdir(parent, { recursive: true, mode: 0o755 });
  await Deno.chmod(parent, 0o755);
  // Never write through whatever is there (a symlink, a directory): remove it first.
  await Deno.remove(path, { recursive: true }).catch(() => {});
  await Deno.writeTextFile(path, text, { mode: 0o444, createNew: true });
  await Deno.chmod(path, 0o444);
}

/**
 * Check that every SDK file is still the regular file the kernel wrote, with the same text;
 * restore any that is not. Returns the paths restored (empty when nothing was touched).
 */
export async function verifySdk(rt: SdkRuntime): Promise<string[]> {
  const restored: string[] = [];
  for (const [path, text] of rt.files) {
    let intact = false;
    try {
      intact = (await Deno.lstat(path)).isFile && (await Deno.readTextFile(path)) === text;
    } catch { /* missing */ }
    if (!intact) {
      await writeReadOnly(path, text);
      restored.push(path);
    }
  }
  return restored;
}

/**
 * bubblewrap arguments that change nothing but the pid namespace: when its first process dies
 * (with its parent, `--die-with-parent`), the kernel kills every process in it. Used for
 * unrestricted agents, which may start processes of their own.
 */
export const PID_NS_ARGS: readonly string[] = [
  "--dev-bind",
  "/",
  "/",
  "--unshare-pid",
  "--die-with-parent",
];

/** Host facilities the supervisor uses. */
export interface HostFacilities {
  /** `setpriv` supporting `--pdeathsig`, or null. */
  setpriv: string | null;
  /** `/proc/<pid>/status` and `/stat` are readable (memory and CPU watchdogs). */
  proc: boolean;
  /** `bwrap` able to start a process in a new pid namespace, or null. */
  bwrap: string | null;
  /** Clock ticks per second for `/proc/<pid>/stat` times. */
  clockTicks: number;
}

/** Probe the host for `setpriv --pdeathsig` and `/proc`. */
export async function probeHost(): Promise<HostFacilities> {
  let setpriv = which("setpriv");
  if (setpriv) {
    try {
      const r = await new Deno.Command(setpriv, {
        args: ["--pdeathsig", "KILL", "--", "true"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!r.success) setpriv = null;
    } catch {
      setpriv = null;
    }
  }
  let proc = false;
  try {
    Deno.readTextFileSync(`/proc/${Deno.pid}/status`);
    Deno.readTextFileSync(`/proc/${Deno.pid}/stat`);
    proc = true;
  } catch { /* no /proc */ }
  let clockTicks = 100;
  const getconf = which("getconf");
  if (getconf) {
    try {
      const r = await new Deno.Command(getconf, { args: ["CLK_TCK"], stderr: "null" }).output();
      const n = Number(new TextDecoder().decode(r.stdout).trim());
      if (Number.isInteger(n) && n > 0) clockTicks = n;
    } catch { /* keep 100 */ }
  }
  let bwrap = which("bwrap");
  if (bwrap) {
    try {
      const r = await new Deno.Command(bwrap, {
        // Everything the agent sandbox uses (sandbox/agent_bwrap.ts) must work here.
        args: [
          ...PID_NS_ARGS,
          "--proc",
          "/proc",
          "--dev",
          "/dev",
          "--unshare-net",
          "--tmpfs",
          "/mnt",
          "--",
          "true",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!r.success) bwrap = null;
    } catch {
      bwrap = null;
    }
  }
  return { setpriv, proc, clockTicks, bwrap };
}

/** Resident set size of `pid` in bytes, or null if it is gone. */
export function readRss(pid: number): number | null {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return null;
  }
}

/** User plus system CPU time of `pid` in ms, or null if it is gone. */
export function readCpuMs(pid: number, clockTicks: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime, stime, and the children it has already reaped (cutime, cstime).
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) +
      Number(fields[14]);
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks : null;
  } catch {
    return null;
  }
}

/** `pid` and all its descendants (through every thread's `children` list), at most `max`. */
export function processTree(pid: number, max = 4096): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length && out.length < max) {
    const p = queue.shift()!;
    out.push(p);
    let tasks: string[];
    try {
      tasks = [...Deno.readDirSync(`/proc/${p}/task`)].map((e) => e.name);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const kids = Deno.readTextFileSync(`/proc/${p}/task/${t}/children`).trim();
        if (kids) queue.push(...kids.split(/\s+/).map(Number));
      } catch { /* gone */ }
    }
  }
  return out;
}

/** Total RSS (bytes) of `pid` and its descendants, or null if `pid` is gone. */
export function treeRss(pid: number): number | null {
  const tree = processTree(pid);
  const own = readRss(pid);
  if (own === null) return null;
  return tree.slice(1).reduce((sum, p) => sum + (readRss(p) ?? 0), own);
}

/** Total CPU time (ms) of `pid` and its descendants, or null if `pid` is gone. */
export function treeCpuMs(pid: number, clockTicks: number): number | null {
  const own = readCpuMs(pid, clockTicks);
  if (own === null) return null;
  return processTree(pid).slice(1).reduce((s, p) => s + (readCpuMs(p, clockTicks) ?? 0), own);
}
