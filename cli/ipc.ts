/**
 * `agentos send` and `agentos recv`: messaging from the command line.
 *
 * Every CLI invocation is a new connection and so a new identity with its own (empty)
 * mailbox, which disappears when the command ends. `agentos recv` is therefore useful with
 * `--name`: it registers that name, then waits for messages sent to it.
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
  optionalIntFlag,
  parseFlags,
  printResult,
  UsageError,
} from "./command.ts";
import { type AgentOSClient, isKernelError, type MessageEnvelope } from "../sdk/mod.ts";
import { RECV_MAX_MAX, RECV_MAX_TIMEOUT_MS } from "../syscalls/ipc.ts";

/** Register `name` for `client`, or fail the command. */
async function registerOrFail(client: AgentOSClient, name: string): Promise<void> {
  const r = await client.registerName(name);
  if (r.success === false) throw new CommandError(`cannot register "${name}": ${r.error}`);
}

/** `--name NAME`: register a name for this connection first (send and recv). */
const NAME_OPTION = { name: { type: "string" } } as const;

/** `agentos send <name|id> <json>`: queue one message. */
export const sendCommand: Command = {
  name: "send",
  summary: "send a JSON message to an agent or registered name",
  help: `agentos send — send one JSON message to an identity

Usage: agentos send [options] <name|id> <json>

The target is a name (a spawned agent's name, or one taken with REGISTER) or, when it is a
number, an identity id. The message is any JSON value; quote strings for the shell, e.g.
  agentos send worker '{"task": "go"}'
  agentos send worker '"hello"'

Options:
  --name NAME     register NAME for this connection first, so the receiver sees it in from_name
${CLIENT_OPTIONS_HELP}

Exit codes: 0 delivered; 1 not delivered (unknown target: NOT_FOUND, full mailbox:
QUOTA_EXCEEDED); 2 usage.`,
  async run(args) {
    const { values, positionals } = parseFlags(args, { ...CLIENT_OPTIONS, ...NAME_OPTION });
    if (positionals.length !== 2) throw new UsageError("expected <name|id> <json>");
    const [target, text] = positionals;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (err) {
      throw new UsageError(
        `the message is not valid JSON (${(err as Error).message}); quote a string: '"hello"'`,
      );
    }
    const byId = /^[0-9]+$/.test(target);
    const id = byId ? Number(target) : 0;
    if (byId && (!Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff)) {
      throw new UsageError(`"${target}" is not a valid identity id (1 to 4294967295)`);
    }
    await using client = await connectClient(values.socket);
    if (values.name !== undefined) await registerOrFail(client, values.name);
    const r = await client.sendMessage(message, byId ? { to: id } : { toName: target });
    if (isKernelError(r) && !values.json) {
      console.log(`not delivered (${r.code}): ${r.error}`);
      return EXIT_FAILURE;
    }
    return printResult(
      r,
      values.json,
      (v) => `delivered to ${target} (id ${v.delivered_to}, seq ${v.seq})`,
    );
  },
};

function formatMessage(m: MessageEnvelope): string {
  const who = m.from_name === null ? `id ${m.from}` : `${m.from_name} (id ${m.from})`;
  return `#${m.seq} from ${who}, ${m.age_ms} ms ago: ${JSON.stringify(m.message)}`;
}

/** `agentos recv [--name NAME] [--wait]`: take messages sent to this connection. */
export const recvCommand: Command = {
  name: "recv",
  summary: "receive messages (use --name to register a name first)",
  help: `agentos recv — receive messages sent to this connection

Usage: agentos recv [options]

Each CLI invocation is a new connection, so a new identity with its own, empty mailbox that
ends with the command. Use --name to register a name first, then wait for messages to it:
  agentos recv --name inbox --wait --timeout 60000     # in one terminal
  agentos send inbox '{"hello": "world"}'              # in another

Options:
  --name NAME     register NAME for this connection before receiving
  --wait          block until a message arrives or the timeout passes
  --timeout MS    how long --wait blocks (default 30000, at most ${RECV_MAX_TIMEOUT_MS})
  --max N         most messages to return (1-${RECV_MAX_MAX}, default 100)
${CLIENT_OPTIONS_HELP}

Prints one line per message (or the whole RECV response with --json). Exit code 0 also when
no message came.`,
  async run(args) {
    const { values } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      ...NAME_OPTION,
      wait: { type: "boolean" },
      timeout: { type: "string" },
      max: { type: "string" },
    }, false);
    const max = optionalIntFlag("max", values.max, { min: 1, max: RECV_MAX_MAX });
    const timeoutMs = optionalIntFlag("timeout", values.timeout, {
      min: 0,
      max: RECV_MAX_TIMEOUT_MS,
      unit: "milliseconds",
    });
    if (timeoutMs !== undefined && !values.wait) throw new UsageError("--timeout needs --wait");
    await using client = await connectClient(values.socket);
    if (values.name !== undefined) await registerOrFail(client, values.name);
    const r = await client.recvMessages({ max, wait: values.wait, timeoutMs });
    if (!values.json && !isKernelError(r) && r.count === 0) {
      console.error("no messages");
      return EXIT_OK;
    }
    return printResult(
      r,
      values.json,
      (v) => v.messages.map(formatMessage).join("\n"),
      "RECV failed",
    );
  },
};
