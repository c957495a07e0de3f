/**
 * Test helper: start a real kernel process on a private socket and state directory.
 * @module
 */
import { join } from "node:path";
import { AgentOSClient } from "../../sdk/mod.ts";
import { kernelArgs, MAIN, waitForKernel } from "../../scripts/bench_util.ts";

export { MAIN };

/** A kernel started for a test. */
export interface TestKernel {
  /** Main socket path. */
  socket: string;
  /** State directory. */
  stateDir: string;
  /** Temporary directory holding both (removed by stop). */
  dir: string;
  /** The kernel's process. */
  process: Deno.ChildProcess;
  pid: number;
  /** Everything the kernel has written to stderr so far. */
  logs(): string;
  /** A connected SDK client (closed by stop). */
  client(): Promise<AgentOSClient>;
  /** SIGTERM the kernel, wait for it, remove its files. Returns its exit code. */
  stop(): Promise<number>;
  /** SIGKILL the kernel and wait for it. */
  kill(): Promise<void>;
}

/** Options for {@link startKernel}. */
export interface StartOptions {
  /** Extra `agentos kernel` flags. */
  args?: string[];
  /** Extra environment for the kernel process. */
  env?: Record<string, string>;
  /** Reuse this directory instead of a fresh temporary one. */
  dir?: string;
}

/** Start a kernel and wait until it answers on its socket. */
export async function startKernel(options: StartOptions = {}): Promise<TestKernel> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "aos" });
  const socket = join(dir, "k.sock");
  const stateDir = join(dir, "state");
  const command = new Deno.Command(Deno.execPath(), {
    args: kernelArgs(socket, stateDir, options.args),
    env: { ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const process = command.spawn();
  let logText = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) logText += decoder.decode(chunk);
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const clients: AgentOSClient[] = [];
  let exited = false;
  const status = process.status.then((s) => {
    exited = true;
    return s;
  });
  if (!(await waitForKernel(socket, { exited: () => exited }))) {
    if (!exited) process.kill("SIGKILL");
    await status;
    await pumps;
    throw new Error(`kernel did not start:\n${logText}`);
  }
  const cleanup = async () => {
    for (const c of clients) c.close();
    await pumps;
    if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    socket,
    stateDir,
    dir,
    process,
    pid: process.pid,
    logs: () => logText,
    async client() {
      const c = await AgentOSClient.connect({ socket });
      clients.push(c);
      return c;
    },
    async stop() {
      if (!exited) process.kill("SIGTERM");
      const s = await status;
      await cleanup();
      return s.code;
    },
    async kill() {
      if (!exited) process.kill("SIGKILL");
      await status;
      await cleanup();
    },
  };
}

/** Run the CLI (`main.ts`) with `args`; returns exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/**
 * Run `fn` with a kernel started with `options` (a flag list is shorthand for `{ args }`), and
 * stop the kernel afterwards whatever happens.
 */
export async function withKernel(
  options: StartOptions | string[],
  fn: (k: TestKernel) => Promise<void>,
): Promise<void> {
  const k = await startKernel(Array.isArray(options) ? { args: options } : options);
  try {
    await fn(k);
  } finally {
    await k.stop();
  }
}
