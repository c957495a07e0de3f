/**
 * Kernel configuration: flags, then environment, then defaults.
 * @module
 */
import { join } from "node:path";
import { DEFAULT_SOCKET } from "./protocol.ts";
import type { Level } from "../sandbox/permissions.ts";
import type { LogFormat, LogLevel } from "./log.ts";
import { defaultMailboxTotalBytes } from "./mailbox.ts";

/** Everything the kernel needs to know to start. */
export interface KernelConfig {
  /** Path of the main socket. */
  socket: string;
  /** Root of the kernel's state (workspaces, logs, agent sockets). */
  stateDir: string;
  /** Level given to every connection on the main socket. */
  clientLevel: Level;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** A frame started but not finished for this long is dropped with its connection. */
  frameTimeoutMs: number;
  /** Most simultaneous connections across all sockets. */
  maxConnections: number;

  // Permissions and host syscalls
  /** Domains granted to main-socket clients (`--client-network`); undefined: the level's default. */
  clientNetwork?: string[];

  // Agents
  /** Deno executable for agents (`--deno`); else AGENTOS_DENO, deno on PATH, Deno.execPath(). */
  agentDeno?: string;
  /** Time between SIGTERM and SIGKILL when an agent is killed. */
  agentKillGraceMs: number;
  /** Size at which an agent's log file is rotated to `.1`. */
  agentLogMaxBytes: number;

  // Messaging
  /** Most messages waiting in one identity's mailbox (SEND beyond it: QUOTA_EXCEEDED). */
  mailboxMaxMessages: number;
  /** Most message bytes (serialized JSON) waiting in one identity's mailbox. */
  mailboxMaxBytes: number;
  /** Most memory held by waiting messages in all mailboxes together (see Mailboxes). */
  mailboxMaxTotalBytes: number;

  // THINK
  /** Default THINK model: `--model`, else `AGENTOS_MODEL`, else {@link DEFAULT_MODEL}. */
  llmModel: string;
  /** Most THINK calls in flight at once, kernel-wide. */
  llmConcurrency: number;
  /** Longest a THINK call waits in the queue before answering TIMEOUT. */
  llmQueueTimeoutMs: number;
  /** Longest one Messages API request may take. */
  llmRequestTimeoutMs: number;
  /** Attempts per THINK call (retries on 429, 529, 5xx and dropped connections). */
  llmMaxAttempts: number;
  /** API base URL (`ANTHROPIC_BASE_URL`), or null for the SDK's default. */
  llmBaseUrl: string | null;
  /** `permissions.llm.max_calls` given to every main-socket client, or null (unlimited). */
  clientLlmMaxCalls: number | null;
  /** `permissions.llm.max_tokens` given to every main-socket client, or null (unlimited). */
  clientLlmMaxTokens: number | null;
}

/** The default socket path: `AGENTOS_SOCKET`, else `/tmp/agentos.sock`. */
export function defaultSocketPath(): string {
  return Deno.env.get("AGENTOS_SOCKET") || DEFAULT_SOCKET;
}

/** The default state directory: `AGENTOS_STATE_DIR`, `$XDG_STATE_HOME/agentos`, `~/.local/state/agentos`. */
export function defaultStateDir(): string {
  const explicit = Deno.env.get("AGENTOS_STATE_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_STATE_HOME");
  if (xdg) return join(xdg, "agentos");
  const home = Deno.env.get("HOME") ?? "/tmp";
  return join(home, ".local", "state", "agentos");
}

/** Defaults for every field not given. */
export function resolveConfig(partial: Partial<KernelConfig> = {}): KernelConfig {
  return {
    socket: partial.socket ?? defaultSocketPath(),
    stateDir: partial.stateDir ?? defaultStateDir(),
    clientLevel: partial.clientLevel ?? "unrestricted",
    logLevel: partial.logLevel ?? "info",
    logFormat: partial.logFormat ?? "text",
    frameTimeoutMs: partial.frameTimeoutMs ?? 10_000,
    maxConnections: partial.maxConnections ?? 4096,
    // Permissions and host syscalls
    clientNetwork: partial.clientNetwork,
    // Agents
    agentDeno: partial.agentDeno,
    agentKillGraceMs: partial.agentKillGraceMs ?? 2000,
    agentLogMaxBytes: partial.agentLogMaxBytes ?? 10 * 1024 * 1024,
    // Messaging
    mailboxMaxMessages: partial.mailboxMaxMessages ?? 10_000,
    mailboxMaxBytes: partial.mailboxMaxBytes ?? 64 * 1024 * 1024,
    mailboxMaxTotalBytes: partial.mailboxMaxTotalBytes ?? defaultMailboxTotalBytes(),
    // THINK
    llmModel: partial.llmModel ?? (Deno.env.get("AGENTOS_MODEL") || DEFAULT_MODEL),
    llmConcurrency: partial.llmConcurrency ?? 4,
    llmQueueTimeoutMs: partial.llmQueueTimeoutMs ?? 120_000,
    llmRequestTimeoutMs: partial.llmRequestTimeoutMs ?? 600_000,
    llmMaxAttempts: partial.llmMaxAttempts ?? 4,
    llmBaseUrl: partial.llmBaseUrl !== undefined
      ? partial.llmBaseUrl
      : (Deno.env.get("ANTHROPIC_BASE_URL") || null),
    clientLlmMaxCalls: partial.clientLlmMaxCalls ?? null,
    clientLlmMaxTokens: partial.clientLlmMaxTokens ?? null,
  };
}

/** The THINK model used when neither `--model` nor `AGENTOS_MODEL` names one. */
export const DEFAULT_MODEL = "claude-sonnet-5-5";
