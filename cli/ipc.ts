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
  output,
  parseFlags,
  resultCode,
  UsageError,
} from "./command.ts";
import type { AgentOSClient, MessageEnvelope } from "../sdk/mod.ts";

/** Register `name` for `client`, or fail the command. */
async function registerOrFail(client: AgentOSClient, name: string): Promise<void> {
  const r = await client.registerName(name);
  if (r.success === false) throw new CommandError(`cannot register "${name}": ${r.error}`);
}

/** Parse a whole number flag within bounds. */
function intFlag(flag: string, text: string | undefined, min: number, max: number) {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

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
    const { values, positionals } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      name: { type: "string" },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
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
    output(r, values.json, (v) => {
      const res = v as typeof r;
      return res.success === false
        ? `not delivered (${res.code}): ${res.error}`
        : `delivered to ${target} (id ${res.delivered_to}, seq ${res.seq})`;
    });
    return resultCode(r);
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
  --timeout MS    how long --wait blocks (default 30000, at most 600000)
  --max N         most messages to return (1-10000, default 100)
${CLIENT_OPTIONS_HELP}

Prints one line per message (or the whole RECV response with --json). Exit code 0 also when
no message came.`,
  async run(args) {
    const { values } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      name: { type: "string" },
      wait: { type: "boolean" },
      timeout: { type: "string" },
      max: { type: "string" },
    }, false);
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    const max = intFlag("max", values.max, 1, 10_000);
    const timeoutMs = intFlag("timeout", values.timeout, 0, 600_000);
    if (timeoutMs !== undefined && !values.wait) throw new UsageError("--timeout needs --wait");
    await using client = await connectClient(values.socket);
    if (values.name !== undefined) await registerOrFail(client, values.name);
    const r = await client.recvMessages({ max, wait: values.wait, timeoutMs });
    if (r.success === false) throw new CommandError(`RECV failed (${r.code}): ${r.error}`);
    if (values.json) {
      output(r, true, () => "");
    } else if (r.count === 0) {
      console.error("no messages");
    } else {
      console.log(r.messages.map(formatMessage).join("\n"));
    }
    return 0;
  },
};
