/**
 * What every benchmark script shares: starting a kernel process on a private socket and state
 * directory (also used by `tests/helpers/kernel.ts`), percentiles, rounding and RSS.
 * @module
 */
import { join, resolve } from "node:path";
import { probeSocket } from "../kernel/probe.ts";
import { readRss } from "../kernel/agent_runtime.ts";

/** Path of the repository's `main.ts`. */
export const MAIN: string = resolve(import.meta.dirname!, "..", "main.ts");

/** The `deno` arguments that run `agentos kernel` on `socket` and `stateDir`, plus `extra`. */
export function kernelArgs(socket: string, stateDir: string, extra: string[] = []): string[] {
  return ["run", "-A", MAIN, "kernel", "--socket", socket, "--state-dir", stateDir, ...extra];
}

/** Options of {@link waitForKernel}. */
export interface WaitOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Give up as soon as this says the kernel process has exited. */
  exited?: () => boolean;
}

/**
 * Wait until a kernel answers on `socket`. Resolves true once it does, false when the kernel
 * exited or the time ran out first.
 */
export async function waitForKernel(socket: string, options: WaitOptions = {}): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!(await probeSocket(socket, 500))) {
    if (options.exited?.() || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** A kernel process started by {@link startBenchKernel}. */
export interface BenchKernel {
  /** Main socket path. */
  socket: string;
  /** State directory. */
  stateDir: string;
  /** The kernel's process id. */
  pid: number;
  /** SIGTERM the kernel, wait for it, and remove its temporary directory. */
  stop(): Promise<void>;
}

/** Options of {@link startBenchKernel}. */
export interface BenchKernelOptions {
  /** Extra `agentos kernel` flags (after `--log-level warn`, so they may override it). */
  args?: string[];
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
  /** Prefix of the temporary directory (default `aosbench`). */
  prefix?: string;
}

/**
 * Start a kernel for a benchmark on a fresh temporary directory, logging warnings and errors
 * to this process's stderr, and wait until it answers.
 */
export async function startBenchKernel(options: BenchKernelOptions = {}): Promise<BenchKernel> {
  const dir = await Deno.makeTempDir({ prefix: options.prefix ?? "aosbench" });
  const socket = join(dir, "k.sock");
  const stateDir = join(dir, "state");
  const process = new Deno.Command(Deno.execPath(), {
    args: kernelArgs(socket, stateDir, ["--log-level", "warn", ...(options.args ?? [])]),
    env: { ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const status = process.status.finally(() => exited = true);
  const stop = async () => {
    if (!exited) process.kill("SIGTERM");
    await status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (!(await waitForKernel(socket, { exited: () => exited }))) {
    if (!exited) process.kill("SIGKILL");
    await stop();
    throw new Error("the benchmark kernel did not start (its log is above)");
  }
  return { socket, stateDir, pid: process.pid, stop };
}

/** The `p`th percentile (0–100) of ascending `sorted`, interpolating between neighbours. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const k = (sorted.length - 1) * p / 100;
  const f = Math.floor(k);
  const c = Math.min(f + 1, sorted.length - 1);
  return sorted[f] + (sorted[c] - sorted[f]) * (k - f);
}

/** The `p`th percentile (0–100) of ascending `sorted` by nearest rank: one of its values. */
export function nearestRank(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `x` rounded to `digits` decimal places (default 1). */
export function round(x: number, digits = 1): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/** Bytes as MiB, to one decimal. */
export function mib(bytes: number): number {
  return round(bytes / 1_048_576);
}

/** Resident memory of process `pid` in MiB (one decimal), or null if it is gone. */
export function rssMb(pid: number): number | null {
  const bytes = readRss(pid);
  return bytes === null ? null : mib(bytes);
}
