/**
 * `agentos kernel` (alias `start`): run the kernel in the foreground.
 * @module
 */
import { type Command, EXIT_FAILURE, EXIT_OK, intFlag, parseFlags, UsageError } from "./command.ts";
import { mailboxFlags } from "./mailbox_flags.ts";
import { Kernel, KernelRunningError } from "../kernel/kernel.ts";
import { allSyscalls } from "../syscalls/mod.ts";
import { type Level, LEVELS } from "../sandbox/permissions.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../kernel/log.ts";
import { defaultSocketPath, defaultStateDir } from "../kernel/config.ts";
// THINK
import { DEFAULT_MODEL } from "../kernel/config.ts";
import { thinkConfigFromFlags } from "./think_flags.ts";

const HELP = `agentos kernel — run the AgentOS kernel in the foreground (alias: agentos start)

Usage: agentos kernel [options]

Options:
  --socket PATH         main socket (default: $AGENTOS_SOCKET or /tmp/agentos.sock)
  --state-dir DIR       state directory (default: $AGENTOS_STATE_DIR, $XDG_STATE_HOME/agentos
                        or ~/.local/state/agentos)
  --client-level LEVEL  level of main-socket clients: ${LEVELS.join(", ")} (default: unrestricted)
  --client-network DOMAINS
                        comma-separated domains granted to main-socket clients (HTTP
                        allowlist; "*" any, "*.example.com" a domain and its subdomains);
                        gives sandboxed clients HTTP and a network in EXEC
  --log-format FORMAT   text (default) or json
  --log-level LEVEL     ${LOG_LEVELS.join(", ")} (default: info)
  --frame-timeout MS    drop a connection whose frame stays unfinished this long (default: 10000)
  --model MODEL         default THINK model (default: $AGENTOS_MODEL or ${DEFAULT_MODEL})
  --llm-concurrency N   THINK calls in flight at once, kernel-wide (default: 4)
  --llm-queue-timeout S seconds a THINK call may wait for a slot before TIMEOUT (default: 120)
  --llm-timeout S       seconds one Messages API request may take (default: 600)
  --llm-max-attempts N  attempts per THINK on 429/529/5xx (default: 4)
  --client-llm-max-calls N   THINK call quota of each main-socket client (default: none)
  --client-llm-max-tokens N  THINK token quota of each main-socket client (default: none)
  --deno PATH           Deno executable for agents (default: $AGENTOS_DENO, deno on PATH,
                        or this Deno when not compiled)
  --agent-log-max BYTES agent log size before rotation to .1 (default: 10485760)
  --mailbox-max-messages N
                        messages waiting in one mailbox; SEND beyond it is refused (default: 10000)
  --mailbox-max-bytes SIZE
                        message bytes waiting in one mailbox, K/M/G suffixes (default: 64M)
  --mailbox-max-total-bytes SIZE
                        memory held by waiting messages in all mailboxes together
                        (default: 1G, or a quarter of the kernel's heap limit if less)
  -h, --help            show this help

THINK reads ANTHROPIC_API_KEY (kept in the kernel, removed from its environment at start)
and ANTHROPIC_BASE_URL from the environment.

SIGINT or SIGTERM (or \`agentos stop\`) shut the kernel down cleanly and remove the socket.`;

/** Parse `--client-network a.com,*.b.org` into a list; undefined when the flag is absent. */
function parseDomainList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(",").map((d) => d.trim()).filter((d) => d !== "");
  if (list.length === 0) throw new UsageError("--client-network needs at least one domain");
  for (const d of list) {
    if (d.length > 256 || !/^(\*|(\*\.)?[A-Za-z0-9.:\[\]_-]+)$/.test(d)) {
      throw new UsageError(`--client-network: "${d}" is not a domain, "*" or "*.domain"`);
    }
  }
  return list;
}

/** Start a kernel with the given flags and serve until it is stopped. */
export const kernelCommand: Command = {
  name: "kernel",
  aliases: ["start"],
  summary: "run the kernel in the foreground",
  help: HELP,
  async run(args) {
    const { values } = parseFlags(args, {
      socket: { type: "string" },
      "state-dir": { type: "string" },
      "client-level": { type: "string" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
      "frame-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
      // Permissions and host syscalls
      "client-network": { type: "string" },
      // Agents
      deno: { type: "string" },
      "agent-log-max": { type: "string" },
      // Messaging
      "mailbox-max-messages": { type: "string" },
      "mailbox-max-bytes": { type: "string" },
      "mailbox-max-total-bytes": { type: "string" },
      // THINK
      model: { type: "string" },
      "llm-concurrency": { type: "string" },
      "llm-queue-timeout": { type: "string" },
      "llm-timeout": { type: "string" },
      "llm-max-attempts": { type: "string" },
      "client-llm-max-calls": { type: "string" },
      "client-llm-max-tokens": { type: "string" },
    }, false);
    const clientLevel = values["client-level"] ?? "unrestricted";
    if (!(LEVELS as readonly string[]).includes(clientLevel)) {
      throw new UsageError(`--client-level must be one of ${LEVELS.join(", ")}`);
    }
    const logFormat = values["log-format"] ?? "text";
    if (logFormat !== "text" && logFormat !== "json") {
      throw new UsageError("--log-format must be text or json");
    }
    const logLevel = values["log-level"] ?? "info";
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);
    }
    const frameTimeout = values["frame-timeout"] === undefined
      ? undefined
      : intFlag("frame-timeout", values["frame-timeout"], { min: 100, unit: "milliseconds" });
    const kernel = new Kernel({
      socket: values.socket ?? defaultSocketPath(),
      stateDir: values["state-dir"] ?? defaultStateDir(),
      clientLevel: clientLevel as Level,
      logFormat: logFormat as LogFormat,
      logLevel: logLevel as LogLevel,
      frameTimeoutMs: frameTimeout,
      // Permissions and host syscalls
      clientNetwork: parseDomainList(values["client-network"]),
      // Agents
      agentDeno: values.deno,
      agentLogMaxBytes: parseLogMax(values["agent-log-max"]),
      // Messaging
      ...mailboxFlags(values),
      // THINK
      ...thinkConfigFromFlags(values),
    }, allSyscalls);
    // Signals are caught from the first instant: one that arrives while the kernel is still
    // starting is honoured as soon as start-up has finished, so it always stops cleanly.
    let started = false;
    let pending: string | null = null;
    const stop = (signal: string) => () => {
      if (started) void kernel.shutdown(signal);
      else pending ??= signal;
    };
    const onInt = stop("SIGINT");
    const onTerm = stop("SIGTERM");
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
    try {
      await kernel.start();
    } catch (err) {
      kernel.log.error(
        err instanceof KernelRunningError ? err.message : `cannot start: ${(err as Error).message}`,
      );
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
      return EXIT_FAILURE;
    }
    started = true;
    if (pending) void kernel.shutdown(pending);
    await kernel.stopped;
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    return EXIT_OK;
  },
};

/** `--agent-log-max`: bytes, 4096 to 1 TiB. */
function parseLogMax(text: string | undefined): number | undefined {
  return text === undefined
    ? undefined
    : intFlag("agent-log-max", text, { min: 4096, max: 2 ** 40, unit: "bytes" });
}
