/**
 * `agentos call`, `agentos status`, `agentos stop`: talking to a running kernel.
 * @module
 */
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  type Command,
  CommandError,
  connectClient,
  EXIT_FAILURE,
  EXIT_OK,
  output,
  parseFlags,
  printResult,
  resultCode,
  UsageError,
} from "./command.ts";
import { Op, type OpName } from "../kernel/protocol.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { isKernelError } from "../sdk/mod.ts";

const hex = (code: number) => `0x${code.toString(16).padStart(2, "0")}`;

/** Every registered op by opcode: name, code, and the registry's one-line summary. */
const OPS = [...allSyscalls].sort((a, b) => a.op - b.op);
const OP_NAMES = OPS.map((s) => s.name).join(", ");
const nameWidth = Math.max(...OPS.map((s) => s.name.length)) + 2;
const OP_TABLE = OPS.map((s) =>
  `  ${s.name.padEnd(nameWidth)}${hex(s.op)}  ${wrap(s.summary, 96 - nameWidth - 8, nameWidth + 8)}`
).join("\n");

/** Wrap `text` at `width` columns, indenting continuation lines by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Parse `NAME` or `0xNN` or a decimal into an opcode. */
export function parseOp(text: string): number {
  const upper = text.toUpperCase();
  if (upper in Op) return Op[upper as OpName];
  const n = /^0x[0-9a-f]{1,2}$/i.test(text)
    ? parseInt(text, 16)
    : /^\d{1,3}$/.test(text)
    ? Number(text)
    : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 255) {
    throw new UsageError(`unknown op "${text}": give a name (${OP_NAMES}) or 0x00–0xff`);
  }
  return n;
}

/** `agentos call <op> [json]`: send one request and print the response. */
export const callCommand: Command = {
  name: "call",
  summary: "send one syscall and print the response",
  help: `agentos call — send one syscall to the kernel and print its response

Usage: agentos call <op-name|0xNN> [payload]

The op is a name (any case) or a code. The payload is JSON for JSON ops (default {}), and
raw text for NOOP. The response is printed as JSON (pretty, or on one line with --json);
NOOP's as text, or with --json as {"op", "agent_id", "payload"}.
  agentos call KERNEL_STATUS
  agentos call read '{"path": "notes.txt"}'

Ops:
${OP_TABLE}

Options:
${CLIENT_OPTIONS_HELP}

Exit code 1 if the response is an error ("success": false).`,
  async run(args) {
    const { values, positionals } = parseFlags(args, CLIENT_OPTIONS);
    if (positionals.length < 1 || positionals.length > 2) {
      throw new UsageError("expected <op> [payload]");
    }
    const op = parseOp(positionals[0]);
    const text = positionals[1] ?? "";
    if (op !== Op.NOOP && text !== "") {
      try {
        JSON.parse(text);
      } catch (err) {
        throw new UsageError(`payload is not valid JSON: ${(err as Error).message}`);
      }
    }
    await using client = await connectClient(values.socket);
    const r = await client.call(op, text);
    const body = new TextDecoder().decode(r.payload);
    if (op === Op.NOOP) {
      console.log(
        values.json ? JSON.stringify({ op: r.op, agent_id: r.agentId, payload: body }) : body,
      );
      return EXIT_OK;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      console.log(body);
      return EXIT_FAILURE;
    }
    console.log(JSON.stringify(parsed, null, values.json ? undefined : 2));
    return resultCode(parsed);
  },
};

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor(s / 3600) % 24, "h"], [
    Math.floor(s / 60) % 60,
    "m",
  ], [
    s % 60,
    "s",
  ]] as const;
  const shown = parts.filter(([n], i) => n > 0 || i === 3);
  return shown.map(([n, u]) => `${n}${u}`).join(" ");
}

/** `agentos status`: is a kernel running, and what is it doing. */
export const statusCommand: Command = {
  name: "status",
  summary: "show whether a kernel is running, its version, uptime and connections",
  help: `agentos status — show whether a kernel is running on the socket

Usage: agentos status [options]

Options:
${CLIENT_OPTIONS_HELP}

Exit code 0 if a kernel is running, 1 if not.`,
  async run(args) {
    const { values } = parseFlags(args, CLIENT_OPTIONS, false);
    let client;
    try {
      client = await connectClient(values.socket);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      output(
        { running: false, error: err.message },
        values.json,
        () => `not running: ${err.message}`,
      );
      return EXIT_FAILURE;
    }
    await using _ = client;
    const s = await client.status();
    return printResult(
      isKernelError(s) ? s : { running: true, ...s },
      values.json,
      (v) =>
        [
          `running: yes`,
          `version: ${v.version}`,
          `pid: ${v.pid}`,
          `uptime: ${formatDuration(v.uptime_ms)}`,
          `socket: ${v.socket}`,
          `state dir: ${v.state_dir}`,
          `connections: ${v.connections}`,
        ].join("\n"),
    );
  },
};

/** `agentos stop`: shut a running kernel down cleanly. */
export const stopCommand: Command = {
  name: "stop",
  summary: "shut the running kernel down cleanly (unrestricted callers only)",
  help: `agentos stop — shut the running kernel down cleanly

Usage: agentos stop [options]

Waits until the kernel has closed its socket. Only unrestricted callers may stop it.

Options:
${CLIENT_OPTIONS_HELP}`,
  async run(args) {
    const { values } = parseFlags(args, CLIENT_OPTIONS, false);
    const client = await connectClient(values.socket);
    const r = await client.shutdown("agentos stop");
    if (isKernelError(r)) {
      client.close();
      return printResult(r, values.json, () => "");
    }
    // The kernel closes every connection as it stops; wait for ours to end.
    await Promise.race([
      client.echo("wait").catch(() => {}),
      new Promise((ok) => setTimeout(ok, 10_000)),
    ]);
    client.close();
    output({ stopped: true }, values.json, () => "kernel stopped");
    return EXIT_OK;
  },
};
