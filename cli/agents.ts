/**
 * Agent commands: `agentos spawn`, `list`, `kill`, `logs`, and `run` (the CI command: runs one
 * agent to the end, streaming its output, and exits with its exit code).
 * @module
 */
import { nameProblem } from "../kernel/names.ts";
import { join, resolve } from "node:path";
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  type Command,
  CommandError,
  connectClient,
  parseFlags,
  printResult,
  UsageError,
} from "./command.ts";
import { type AgentOSClient, isKernelError, type RequestFor } from "../sdk/mod.ts";
import { LEVELS } from "../sandbox/permissions.ts";
import type { AgentInfo } from "../kernel/agents.ts";
import { probeSocket } from "../kernel/probe.ts";
import { defaultSocketPath } from "../kernel/config.ts";

const SPAWN_OPTIONS = {
  ...CLIENT_OPTIONS,
  level: { type: "string" },
  memory: { type: "string" },
  cpu: { type: "string" },
  timeout: { type: "string" },
  restart: { type: "string" },
  "max-restarts": { type: "string" },
  "restart-window": { type: "string" },
  env: { type: "string", multiple: true },
  "can-spawn": { type: "boolean" },
} as const;

const SPAWN_OPTIONS_HELP = `  --level LEVEL          ${LEVELS.join(", ")} (default: sandboxed)
  --network[=DOMAINS]    grant network: all, or a comma-separated list (e.g. api.example.com)
  --memory SIZE          memory limit, e.g. 256M, 1G (MiB if no unit)
  --cpu DURATION         CPU time limit, e.g. 10s, 500ms, 2m
  --timeout DURATION     wall-clock limit, e.g. 10m
  --restart POLICY       never (default), on-failure, always
  --max-restarts N       restarts allowed per window (default 5)
  --restart-window DUR   the window for --max-restarts (default 60s)
  --env KEY=VALUE        pass an environment variable (repeatable)
  --can-spawn            let the agent spawn agents of its own (at most its level)`;

/** Parse `256M`, `1G`, `512` (MiB) into MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--memory: "${text}" is not a size like 256M or 1G`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "m").toLowerCase()[0];
  const mib = unit === "k" ? n / 1024 : unit === "g" ? n * 1024 : n;
  if (!Number.isFinite(mib) || mib < 1) throw new UsageError(`--memory: "${text}" is too small`);
  return Math.floor(mib);
}

/** Parse `10s`, `500ms`, `2m`, `1h`, `1500` (ms) into ms. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration like 10s, 500ms or 10m`);
  const n = Number(m[1]);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "ms").toLowerCase()]!;
  const ms = Math.round(n * mult);
  if (ms < 1) throw new UsageError(`${flag}: "${text}" is too short`);
  return ms;
}

/** Split `args` at `--` and pull `--network[=...]` out (parseArgs cannot take an optional value). */
function preparse(args: string[]): {
  rest: string[];
  scriptArgs: string[];
  network: boolean | string[] | undefined;
} {
  const dd = args.indexOf("--");
  const mine = dd >= 0 ? args.slice(0, dd) : args;
  const scriptArgs = dd >= 0 ? args.slice(dd + 1) : [];
  let network: boolean | string[] | undefined;
  const rest: string[] = [];
  for (const a of mine) {
    if (a === "--network") network = true;
    else if (a.startsWith("--network=")) {
      const list = a.slice("--network=".length).split(",").map((s) => s.trim()).filter(Boolean);
      if (!list.length) throw new UsageError("--network= needs at least one domain");
      network = list;
    } else rest.push(a);
  }
  return { rest, scriptArgs, network };
}

type SpawnValues = ReturnType<typeof parseFlags<typeof SPAWN_OPTIONS>>["values"];

/** Build a SPAWN request from parsed CLI flags. */
async function spawnRequest(
  values: SpawnValues,
  name: string | undefined,
  script: string,
  network: boolean | string[] | undefined,
  args: string[],
): Promise<RequestFor<"SPAWN">> {
  if (values.level !== undefined && !(LEVELS as readonly string[]).includes(values.level)) {
    throw new UsageError(`--level must be one of ${LEVELS.join(", ")}`);
  }
  const restart = values.restart;
  if (restart !== undefined && !["never", "on-failure", "always"].includes(restart)) {
    throw new UsageError("--restart must be never, on-failure or always");
  }
  const env: Record<string, string> = {};
  for (const e of values.env ?? []) {
    const i = e.indexOf("=");
    if (i <= 0) throw new UsageError(`--env: "${e}" is not KEY=VALUE`);
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  // A path to an existing file is sent as an absolute path; anything else is inline source.
  let scriptValue = script;
  if (/\.(ts|js|mts|mjs|tsx|jsx)$/.test(script) && !script.includes("\n")) {
    try {
      scriptValue = await Deno.realPath(resolve(script));
    } catch {
      throw new CommandError(`script file ${script} does not exist`);
    }
  }
  const limits: NonNullable<RequestFor<"SPAWN">["limits"]> = {};
  if (values.memory) limits.memory_mb = parseMemory(values.memory);
  if (values.cpu) limits.cpu_time_ms = parseDuration(values.cpu, "--cpu");
  if (values.timeout) limits.timeout_ms = parseDuration(values.timeout, "--timeout");
  const maxRestarts = values["max-restarts"];
  if (maxRestarts !== undefined && !/^\d+$/.test(maxRestarts)) {
    throw new UsageError("--max-restarts must be a whole number");
  }
  return {
    ...(name ? { name } : {}),
    script: scriptValue,
    ...(values.level ? { level: values.level as RequestFor<"SPAWN">["level"] } : {}),
    ...(network !== undefined ? { network } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
    ...(args.length ? { args } : {}),
    ...(Object.keys(env).length ? { env } : {}),
    ...(restart ? { restart_policy: restart as "on-failure" } : {}),
    ...(maxRestarts !== undefined ? { max_restarts: Number(maxRestarts) } : {}),
    ...(values["restart-window"]
      ? { restart_window: parseDuration(values["restart-window"], "--restart-window") }
      : {}),
    ...(values["can-spawn"] ? { can_spawn: true } : {}),
  };
}

/** `agentos spawn <name> <script>`. */
export const spawnCommand: Command = {
  name: "spawn",
  summary: "start an agent (a sandboxed Deno subprocess)",
  help: `agentos spawn — start an agent

Usage: agentos spawn <name> <script> [options] [-- args…]

<script> is a .ts/.js file or inline TypeScript. The agent imports the SDK as "agentos".

Options:
${SPAWN_OPTIONS_HELP}
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const pre = preparse(args);
    const { values, positionals } = parseFlags(pre.rest, SPAWN_OPTIONS);
    if (positionals.length !== 2) throw new UsageError("expected <name> <script>");
    const req = await spawnRequest(
      values,
      positionals[0],
      positionals[1],
      pre.network,
      pre.scriptArgs,
    );
    await using client = await connectClient(values.socket);
    const r = await client.spawn(req);
    return printResult(
      r,
      values.json,
      (r) => `spawned ${r.name} (id ${r.id}, pid ${r.pid}, ${r.level})`,
    );
  },
};

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60}m`;
}

/** Render LIST rows as a table. */
export function agentTable(rows: AgentInfo[]): string {
  if (!rows.length) return "no agents";
  const head = ["ID", "NAME", "PID", "STATE", "UPTIME", "LEVEL", "PARENT", "EXIT", "RESTARTS"];
  const body = rows.map((r) => [
    String(r.id),
    r.name,
    r.pid === null ? "-" : String(r.pid),
    r.state,
    r.uptime_ms ? formatUptime(r.uptime_ms) : "-",
    r.level,
    r.parent_id === null ? "-" : String(r.parent_id),
    r.exit_code === null ? "-" : String(r.exit_code),
    String(r.restarts),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const reasons = rows.filter((r) => r.exit_reason && r.state !== "running").map((r) =>
    `  ${r.name}: ${r.exit_reason}`
  );
  return [line(head), ...body.map(line), ...(reasons.length ? ["", ...reasons] : [])].join("\n");
}

/** `agentos list`. */
export const listCommand: Command = {
  name: "list",
  aliases: ["ps"],
  summary: "list agents with their state, pid, uptime and exit reason",
  help: `agentos list — list agents (alias: ps)

Usage: agentos list [options]

Options:
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const { values } = parseFlags(args, CLIENT_OPTIONS, false);
    await using client = await connectClient(values.socket);
    return printResult(await client.listAgents(), values.json, agentTable);
  },
};

/** `agentos kill <name|id>`. */
export const killCommand: Command = {
  name: "kill",
  summary: "stop an agent and its descendants (SIGTERM, grace, SIGKILL)",
  help: `agentos kill — stop an agent and every agent it spawned

Usage: agentos kill <name|id> [options]

Options:
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parseFlags(args, CLIENT_OPTIONS);
    if (positionals.length !== 1) throw new UsageError("expected <name|id>");
    const t = positionals[0];
    await using client = await connectClient(values.socket);
    const r = await client.kill(/^\d+$/.test(t) ? { id: Number(t) } : { name: t });
    return printResult(
      r,
      values.json,
      (r) => r.killed ? `killed ${r.name} (id ${r.agent_id})` : `${r.name} was not running`,
    );
  },
};

async function stateDirOf(client: AgentOSClient): Promise<string> {
  const s = await client.status();
  if (isKernelError(s)) throw new CommandError(s.error);
  return s.state_dir;
}

/** Copy new bytes of `path` from `offset` to stdout; returns the new offset. */
async function copyFrom(path: string, offset: number, filter: LineFilter | null): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return offset;
  }
  try {
    const size = (await file.stat()).size;
    if (size < offset) offset = 0; // rotated
    if (size === offset) return offset;
    await file.seek(offset, Deno.SeekMode.Start);
    const buf = new Uint8Array(Math.min(size - offset, 1 << 20));
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    const chunk = buf.subarray(0, got);
    await writeAll(filter ? filter.push(chunk) : chunk);
    return offset + got;
  } finally {
    file.close();
  }
}

async function writeAll(data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await Deno.stdout.write(data.subarray(off));
}

/** Drops the kernel's own `--- agentos` lines from a byte stream. */
class LineFilter {
  #pending = new Uint8Array(0);
  #enc = new TextEncoder();
  #dec = new TextDecoder();
  push(chunk: Uint8Array): Uint8Array {
    const all = new Uint8Array(this.#pending.length + chunk.length);
    all.set(this.#pending);
    all.set(chunk, this.#pending.length);
    const last = all.lastIndexOf(10);
    if (last < 0) {
      this.#pending = all;
      return new Uint8Array(0);
    }
    this.#pending = all.slice(last + 1);
    const text = this.#dec.decode(all.subarray(0, last + 1));
    return this.#enc.encode(
      text.split(/(?<=\n)/).filter((l) => !l.startsWith("--- agentos ")).join(""),
    );
  }
  flush(): Uint8Array {
    const rest = this.#pending;
    this.#pending = new Uint8Array(0);
    return rest;
  }
}

/** `agentos logs <name> [-f]`. */
export const logsCommand: Command = {
  name: "logs",
  summary: "print an agent's log (stdout and stderr); -f follows it",
  help: `agentos logs — print an agent's stdout and stderr

Usage: agentos logs <name> [-f] [options]

Options:
  -f, --follow    keep printing as the log grows (Ctrl-C to stop)
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      follow: { type: "boolean", short: "f" },
    });
    if (positionals.length !== 1) throw new UsageError("expected <name>");
    const name = positionals[0];
    const problem = nameProblem(name);
    if (problem !== null) throw new UsageError(`"${name}" is not an agent name: ${problem}`);
    const client = await connectClient(values.socket);
    const path = join(await stateDirOf(client), "logs", `${name}.log`);
    client.close();
    try {
      await Deno.stat(path);
    } catch {
      throw new CommandError(`no log for agent "${name}" (${path})`);
    }
    let offset = 0;
    if (!values.follow) {
      // Print the rotated part first so the output reads in order.
      await copyFrom(`${path}.1`, 0, null);
      await copyFrom(path, 0, null);
      return 0;
    }
    const stop = new AbortController();
    const onInt = () => stop.abort();
    Deno.addSignalListener("SIGINT", onInt);
    try {
      while (!stop.signal.aborted) {
        offset = await copyFrom(path, offset, null);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
    return 0;
  },
};

const TERMINAL = new Set(["exited", "failed", "killed"]);

/** `agentos run <script>`: the CI command. */
export const runCommand: Command = {
  name: "run",
  summary: "run one agent to the end, streaming its output; exits with its exit code",
  help: `agentos run — run one agent to the end and exit with its exit code

Usage: agentos run <script> [options] [-- args…]

Uses the kernel on the socket if one is running; otherwise starts a private kernel in this
process (temporary socket and state directory, removed afterwards). The agent's stdout and
stderr are streamed to stdout. Exit code: the agent's, or 1 if it could not start.

Options:
  --name NAME            agent name (default: run-<pid>)
${SPAWN_OPTIONS_HELP}
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const pre = preparse(args);
    const { values, positionals } = parseFlags(pre.rest, {
      ...SPAWN_OPTIONS,
      name: { type: "string" },
    });
    if (positionals.length !== 1) throw new UsageError("expected <script>");
    const name = values.name ?? `run-${Deno.pid}`;
    const req = await spawnRequest(values, name, positionals[0], pre.network, pre.scriptArgs);
    const socket = values.socket ?? defaultSocketPath();
    let shutdown: (() => Promise<void>) | null = null;
    let sock = socket;
    if (!(await probeSocket(socket))) {
      const started = await startPrivateKernel();
      sock = started.socket;
      shutdown = started.stop;
    }
    try {
      const client = await connectClient(sock);
      try {
        return await runAgent(client, req);
      } finally {
        client.close();
      }
    } finally {
      await shutdown?.();
    }
  },
};

async function runAgent(client: AgentOSClient, req: RequestFor<"SPAWN">): Promise<number> {
  const path = join(await stateDirOf(client), "logs", `${req.name}.log`);
  let offset = 0;
  try {
    offset = (await Deno.stat(path)).size;
  } catch { /* no log yet */ }
  const r = await client.spawn(req);
  if (isKernelError(r)) throw new CommandError(r.error);
  const filter = new LineFilter();
  let interrupted = false;
  const onInt = () => {
    interrupted = true;
    void client.kill({ id: r.id }).catch(() => {});
  };
  Deno.addSignalListener("SIGINT", onInt);
  try {
    for (;;) {
      offset = await copyFrom(path, offset, filter);
      const rows = await client.listAgents();
      if (isKernelError(rows)) throw new CommandError(rows.error);
      const row = rows.find((x) => x.id === r.id);
      if (!row || TERMINAL.has(row.state)) {
        offset = await copyFrom(path, offset, filter);
        await writeAll(filter.flush());
        if (row && row.state !== "exited") {
          console.error(`agentos run: ${row.name} ${row.state}: ${row.exit_reason ?? ""}`);
        }
        if (interrupted) return 130;
        return row?.exit_code ?? 1;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
  }
}

/** Start a kernel in this process on a temporary socket and state directory. */
async function startPrivateKernel(): Promise<{ socket: string; stop: () => Promise<void> }> {
  // Imported here so the other commands do not load the kernel.
  const { Kernel } = await import("../kernel/kernel.ts");
  const { allSyscalls } = await import("../syscalls/mod.ts");
  const dir = await Deno.makeTempDir({ prefix: "agentos-run-" });
  const socket = join(dir, "kernel.sock");
  const kernel = new Kernel(
    { socket, stateDir: join(dir, "state"), logLevel: "warn" },
    allSyscalls,
  );
  await kernel.start();
  return {
    socket,
    async stop() {
      await kernel.shutdown("agentos run finished");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
