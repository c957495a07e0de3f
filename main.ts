/**
 * `agentos`: the AgentOS command line. `agentos --help` lists the commands.
 * @module
 */
import {
  type Command,
  CommandError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  wantsHelp,
} from "./cli/command.ts";
import { kernelCommand } from "./cli/kernel.ts";
import { callCommand, statusCommand, stopCommand } from "./cli/call.ts";

// Permissions and host syscalls
import { permsCommand } from "./cli/perms.ts";

// Agents
import { killCommand, listCommand, logsCommand, runCommand, spawnCommand } from "./cli/agents.ts";

// Messaging
import { recvCommand, sendCommand } from "./cli/ipc.ts";

// THINK
import { thinkCommand } from "./cli/think.ts";
import { VERSION } from "./kernel/kernel.ts";

/** Every command, in the order `--help` lists them. */
export const commands: readonly Command[] = [
  kernelCommand,
  statusCommand,
  stopCommand,
  callCommand,
  // Permissions and host syscalls
  permsCommand,
  // Agents
  spawnCommand,
  listCommand,
  killCommand,
  logsCommand,
  runCommand,
  // Messaging
  sendCommand,
  recvCommand,
  // THINK
  thinkCommand,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `agentos ${VERSION} — a kernel for running AI agents safely

Usage: agentos <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Options:
  -h, --help     show help (also: agentos <command> --help, agentos help <command>)
  -V, --version  print the version

Exit codes: 0 ok, 1 failure, 2 usage error.`;
}

/**
 * Run the CLI with `args` (what follows `agentos`); returns the exit code: 0 ok, 1 failure,
 * 2 usage error.
 *
 * @example
 * ```ts
 * Deno.exit(await main(["status", "--json"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "help" && rest.length === 1) return await main([rest[0], "--help"]);
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    console.log(mainHelp());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === "-V" || name === "--version" || name === "version") {
    console.log(`agentos ${VERSION}`);
    return EXIT_OK;
  }
  const command = commands.find((c) => c.name === name || c.aliases?.includes(name));
  if (!command) {
    console.error(`agentos: unknown command "${name}"; run \`agentos --help\``);
    return EXIT_USAGE;
  }
  // Every command answers -h/--help the same way, whatever else is on the line.
  if (wantsHelp(rest)) {
    console.log(command.help);
    return EXIT_OK;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(
        `agentos ${command.name}: ${err.message}\nrun \`agentos ${command.name} --help\``,
      );
      return EXIT_USAGE;
    }
    if (err instanceof CommandError) {
      console.error(`agentos ${command.name}: ${err.message}`);
      return EXIT_FAILURE;
    }
    console.error(`agentos ${command.name}: ${(err as Error)?.stack ?? err}`);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
