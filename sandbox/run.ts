/**
 * Running one confined command for EXEC: async process APIs only (a running command never
 * blocks the kernel), output collected per stream up to a cap, and a timeout or abort that
 * kills the whole process group, grandchildren included.
 * @module
 */
import { readCapped } from "../syscalls/fit.ts";

/** What to run and how. */
export interface RunOptions {
  /** Program and arguments, e.g. `["setsid", "sh", "-c", cmd]` or `["bwrap", ..., "sh", ...]`. */
  argv: readonly string[];
  /** Working directory of the program (the sandbox sets its own with `--chdir`). */
  cwd?: string;
  /** The complete environment (nothing of the kernel's is inherited). */
  env: Readonly<Record<string, string>>;
  /** Bytes written to the command's stdin, which is then closed; none: stdin is /dev/null. */
  stdin?: Uint8Array;
  /** Kill everything after this many milliseconds. */
  timeoutMs: number;
  /** Kill everything when this aborts (connection closed, kernel stopping). */
  signal: AbortSignal;
  /** Bytes kept per stream; the rest is read and dropped. */
  maxBytes: number;
  /**
   * How to end the program and its descendants on timeout or abort. With `group`, whatever the
   * program left running in its group is also killed once it exits.
   */
  killMode: KillMode;
}

/** What happened. */
export interface RunResult {
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** True if a stream produced more than `maxBytes`. */
  truncated: boolean;
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** The signal that ended the program, if any. */
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

/** Pids of every live descendant of `pid`, from /proc (empty where /proc is unreadable). */
export async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
        // "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(entry.name));
        children.set(ppid, list);
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 100_000) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** Direct children of `pid`, read synchronously from /proc (empty if unavailable). */
export function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

function trySignal(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * How a running program and everything it started is ended:
 * - `group`: it leads its own process group (`setsid`): SIGKILL the group, at once;
 * - `namespace`: it is bubblewrap with its own PID namespace: SIGKILL it, and the kernel ends
 *   every process in the namespace;
 * - `tree`: neither: find its descendants in /proc first, then SIGKILL them all.
 */
export type KillMode = "group" | "namespace" | "tree";

/** End `pid` and everything it started, as `mode` says. */
export async function killTree(pid: number, mode: KillMode): Promise<void> {
  if (mode === "group") {
    // Synchronous, so that it is done even if the kernel exits right after (shutdown).
    trySignal(-pid, "SIGKILL");
    trySignal(pid, "SIGKILL");
    return;
  }
  if (mode === "namespace") {
    // bwrap's child is the namespace's init: killing it ends the whole namespace. bwrap's
    // --die-with-parent would do so when bwrap dies, but killing both directly leaves no race.
    const inner = childrenOf(pid);
    trySignal(pid, "SIGKILL");
    for (const p of inner) trySignal(p, "SIGKILL");
    return;
  }
  const found = await descendants(pid);
  trySignal(pid, "SIGKILL");
  for (const p of found) trySignal(p, "SIGKILL");
}

/** Run one program to the end (or until its timeout or abort) and collect its output. */
export async function runProcess(options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const [program, ...args] = options.argv;
  const child = new Deno.Command(program, {
    args,
    cwd: options.cwd,
    clearEnv: true,
    env: { ...options.env },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let timedOut = false;
  let aborted = false;
  let killing: Promise<void> | null = null;
  let exited = false;
  const kill = () => killing ??= exited ? Promise.resolve() : killTree(child.pid, options.killMode);

  let releaseStop!: () => void;
  const stopReading = new Promise<void>((r) => releaseStop = r);
  const deadline = setTimeout(() => {
    timedOut = true;
    void kill();
    // Whatever still holds a pipe open after the kill is not waited for.
    setTimeout(releaseStop, 2_000);
  }, options.timeoutMs);
  const onAbort = () => {
    aborted = true;
    void kill();
    setTimeout(releaseStop, 2_000);
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener("abort", onAbort, { once: true });

  const writing = (async () => {
    if (!options.stdin) return;
    const writer = child.stdin.getWriter();
    try {
      await writer.write(options.stdin);
      await writer.close();
    } catch {
      // the command did not read its stdin: that is its business
    }
  })();

  const collect = (stream: ReadableStream<Uint8Array>) =>
    readCapped(stream, options.maxBytes, { drain: true, stop: stopReading });
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  const status = await child.status;
  exited = true;
  clearTimeout(deadline); // the program ended in time; draining its pipes is bounded below
  await killing;
  // The program has exited: end whatever it left behind in its process group, so that no
  // leftover keeps running or holds the output pipes open. (The pid cannot have been reused as
  // a group id while members of that group live.)
  if (options.killMode === "group") trySignal(-child.pid, "SIGKILL");
  // Leftovers that escaped every kill must not keep EXEC waiting past its deadline.
  const rest = setTimeout(
    releaseStop,
    Math.max(500, options.timeoutMs - (performance.now() - started)),
  );
  // A leftover may hold stdin open without reading it: the write then never ends. It is not
  // waited for past the point where reading stops (the pending write fails once it exits).
  const [stdout, stderr] = await Promise.all([out, err, Promise.race([writing, stopReading])]);
  clearTimeout(rest);
  releaseStop();
  options.signal.removeEventListener("abort", onAbort);
  return {
    stdout: stdout.bytes,
    stderr: stderr.bytes,
    truncated: stdout.truncated || stderr.truncated,
    code: status.code,
    signal: status.signal,
    timedOut,
    aborted,
    durationMs: Math.round(performance.now() - started),
  };
}
