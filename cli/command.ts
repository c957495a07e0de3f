/**
 * What a CLI command is, and the small helpers every command shares: flag parsing with
 * usage errors, JSON or human output, and connecting to the kernel.
 * @module
 */
import { parseArgs, type ParseArgsConfig, type ParseArgsOptionsConfig } from "node:util";
import { AgentOSClient, AgentOSConnectionError, isKernelError, type Result } from "../sdk/mod.ts";

/** Exit codes: 0 ok, 1 failure, 2 usage. */
export const EXIT_OK = 0;
/** The command ran and failed. */
export const EXIT_FAILURE = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;

/** A usage mistake: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  /** `message` names the flag or argument at fault. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure to report without a stack: exit code 1. */
export class CommandError extends Error {
  /** `message` is printed after `agentos <command>: `. */
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

/** One `agentos` subcommand. */
export interface Command {
  /** The word after `agentos`. */
  readonly name: string;
  /** Other words that run the same command (`start` for `kernel`). */
  readonly aliases?: readonly string[];
  /** One line for `agentos --help`. */
  readonly summary: string;
  /** Full help text for `agentos <name> --help`. */
  readonly help: string;
  /** Run with the arguments after the command name; returns the exit code. */
  run(args: string[]): Promise<number>;
}

/** True if `args` asks for help (`-h` or `--help` before any `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "-h" || a === "--help") return true;
  }
  return false;
}

/** Options shared by commands that talk to a running kernel. */
export const CLIENT_OPTIONS = {
  socket: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** Help lines for {@link CLIENT_OPTIONS}. */
export const CLIENT_OPTIONS_HELP =
  `  --socket PATH   kernel socket (default: $AGENTOS_SOCKET or /tmp/agentos.sock)
  --json          print machine-readable JSON
  -h, --help      show this help`;

/** What {@link parseFlags} returns: `values` typed by `options`, and `positionals`. */
export type ParsedFlags<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>
>;

/** Parse `args` strictly; unknown flags become a {@link UsageError}. */
export function parseFlags<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  allowPositionals = true,
): ParsedFlags<O> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Connect to the kernel, turning a missing kernel into a {@link CommandError}. */
export async function connectClient(socket?: string): Promise<AgentOSClient> {
  try {
    return await AgentOSClient.connect(socket ? { socket } : {});
  } catch (err) {
    if (err instanceof AgentOSConnectionError) throw new CommandError(err.message);
    throw err;
  }
}

/** Bounds of {@link intFlag}. */
export interface IntBounds {
  /** Smallest value accepted. */
  min: number;
  /** Largest value accepted (default `Number.MAX_SAFE_INTEGER`, left out of the message). */
  max?: number;
  /** What the number counts, for the message, e.g. `"milliseconds"`. */
  unit?: string;
}

/**
 * Parse the value of `--flag` as a whole number within `bounds`; anything else is a
 * {@link UsageError} that names the flag and the accepted range.
 */
export function intFlag(flag: string, text: string, bounds: IntBounds): number {
  const { min, max = Number.MAX_SAFE_INTEGER, unit } = bounds;
  const n = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const what = unit ? `a whole number of ${unit}` : "a whole number";
    throw new UsageError(
      max === Number.MAX_SAFE_INTEGER
        ? `--${flag} must be ${what}, at least ${min}`
        : `--${flag} must be ${what} from ${min} to ${max}`,
    );
  }
  return n;
}

/** {@link intFlag} for a flag that may be absent: `undefined` stays `undefined`. */
export function optionalIntFlag(
  flag: string,
  text: string | undefined,
  bounds: IntBounds,
): number | undefined {
  return text === undefined ? undefined : intFlag(flag, text, bounds);
}

/** Print `value` as JSON (with `--json`) or through `human`. */
export function output<T>(
  value: T,
  json: boolean | undefined,
  human: (v: T) => string,
): void {
  console.log(json ? JSON.stringify(value, null, 2) : human(value));
}

/**
 * Print a syscall's result and return the exit code, the same way in every command:
 * - with `--json`, the response as JSON on stdout, a kernel error included (exit 1 for it);
 * - otherwise a success through `human` on stdout (exit 0), and a kernel error as a
 *   {@link CommandError} on stderr, exit 1: `agentos <command>: CODE: error`, or
 *   `agentos <command>: <context> (CODE): error` when `context` is given.
 */
export function printResult<T>(
  r: Result<T>,
  json: boolean | undefined,
  human: (value: T) => string,
  context?: string,
): number {
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return isKernelError(r) ? EXIT_FAILURE : EXIT_OK;
  }
  if (isKernelError(r)) {
    throw new CommandError(
      context ? `${context} (${r.code}): ${r.error}` : `${r.code}: ${r.error}`,
    );
  }
  console.log(human(r));
  return EXIT_OK;
}

/** Exit code for a syscall result: 1 when it is a kernel error (`success: false`). */
export function resultCode(value: unknown): number {
  return typeof value === "object" && value !== null &&
      (value as { success?: unknown }).success === false
    ? EXIT_FAILURE
    : EXIT_OK;
}
