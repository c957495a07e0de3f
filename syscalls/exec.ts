/**
 * EXEC (0x02): run `sh -c <command>` confined per level (DESIGN section 4).
 *
 * - `unrestricted`: as the kernel's user, in a new session (`setsid`), no bubblewrap.
 * - `standard`: bubblewrap, whole filesystem writable, blocked paths hidden, network shared.
 * - `sandboxed`: bubblewrap, workspace writable, the rest read-only, private /tmp, blocked
 *   paths hidden, no network unless the identity was granted some.
 * - `readonly`, `minimal`: refused (`can_exec` is false).
 *
 * Where bubblewrap is needed and not usable, EXEC fails closed.
 * @module
 */
import { basename } from "node:path";
import { z } from "zod";
import { MAX_PAYLOAD, Op } from "../kernel/protocol.ts";
import { permissionDenied, SyscallError } from "../kernel/errors.ts";
import type { Identity } from "../kernel/identity.ts";
import {
  ambientSecretPaths,
  bwrapArgs,
  bwrapEnvironment,
  bwrapStatus,
  bwrapUnavailable,
  classifyPaths,
  confinementFor,
  DEFAULT_PATH,
} from "../sandbox/bwrap.ts";
import { which } from "../sandbox/which.ts";
import { type KillMode, runProcess } from "../sandbox/run.ts";
import { checkPath, isCanonicalRoot } from "../sandbox/paths.ts";
import { defineSyscall, type SyscallContext } from "./registry.ts";
import { fitPair } from "./fit.ts";

/** Default EXEC timeout, in seconds. */
export const DEFAULT_EXEC_TIMEOUT_S = 30;
/** Room kept in the response frame for everything but stdout and stderr. */
const RESPONSE_OVERHEAD = 4096;

/** Longest command line in UTF-8 bytes: Linux's limit for one argument, less its NUL. */
export const MAX_COMMAND_BYTES = 131_071;

const utf8 = new TextEncoder();
function utf8Length(s: string): number {
  return utf8.encode(s).length;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const noNul = (s: string) => !s.includes("\0");

/** EXEC's payload. */
export const ExecRequestSchema = z.object({
  /** Shell command line, run as `sh -c <command>`. */
  command: z.string().min(1).max(MAX_COMMAND_BYTES).refine(noNul, "must not contain NUL bytes")
    .refine(
      (c) => utf8Length(c) <= MAX_COMMAND_BYTES,
      `must be at most ${MAX_COMMAND_BYTES} bytes in UTF-8 (the operating system's limit for one argument); pass a longer script on stdin with command "sh -s"`,
    ),
  /** Working directory (checked like a READ path); default: the caller's workspace. */
  cwd: z.string().min(1).max(4096).refine(noNul, "must not contain NUL bytes").optional(),
  /** Seconds before the whole process group is killed (default 30, capped by max_exec_time_ms). */
  timeout: z.number().positive().max(86_400).optional(),
  /** Variables added to the command's minimal environment. */
  env: z.record(
    z.string().max(256).regex(ENV_NAME, "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    z.string().max(65_536).refine(noNul, "must not contain NUL bytes"),
  ).refine((e) => Object.keys(e).length <= 256, "at most 256 variables").optional(),
  /** Text written to the command's stdin (then closed); default: stdin is empty. */
  stdin: z.string().max(MAX_PAYLOAD).optional(),
}).strict();

/** EXEC's success response. */
export interface ExecResponse {
  /** True if the command exited with code 0 within its time. */
  success: boolean;
  stdout: string;
  stderr: string;
  /** Exit code; 128 + signal number when a signal ended it (137 after a timeout kill). */
  exit_code: number;
  /** The signal that ended the command, if any. */
  signal: string | null;
  /** True if the timeout killed the command (its whole process group). */
  timed_out: boolean;
  /** True if stdout or stderr was cut to fit the response. */
  truncated: boolean;
  /** Wall time in milliseconds. */
  duration_ms: number;
  /** How the command was confined: `none` (unrestricted), `standard` or `sandboxed`. */
  confinement: "none" | "standard" | "sandboxed";
}

/** The first word of each simple command in `command` (a convenience check, not a boundary). */
export function commandWords(command: string): string[] {
  const words: string[] = [];
  for (const segment of command.split(/\$\(|[;&|()\n`{}!]/)) {
    const tokens = segment.trim().split(/\s+/).filter((t) => t !== "");
    // Skip leading variable assignments (`FOO=bar cmd`).
    const first = tokens.find((t) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(t));
    if (first) words.push(basename(first.replace(/^["']|["']$/g, "")));
  }
  return words;
}

/** Refuse `command` if the allowlist does not name it or the blocklist does. */
export function checkCommand(
  command: string,
  allowed: readonly string[],
  blocked: readonly string[],
) {
  const words = commandWords(command);
  for (const word of words) {
    if (blocked.includes(word)) {
      throw permissionDenied(`command "${word}" is in blocked_commands`);
    }
    if (!allowed.includes("*") && !allowed.includes(word)) {
      throw permissionDenied(
        `command "${word}" is not in the exec allowlist (${
          allowed.length ? allowed.join(", ") : "empty"
        })`,
      );
    }
  }
}

/**
 * The timeout EXEC applies, in ms: `timeout` seconds (default 30) capped by the identity's
 * `max_exec_time_ms`; refused if that is 0.
 */
export function execTimeoutMs(timeoutS: number | undefined, maxExecTimeMs: number): number {
  if (maxExecTimeMs <= 0) {
    throw permissionDenied("max_exec_time_ms is 0 for this identity, so no command may run");
  }
  return Math.min(Math.ceil((timeoutS ?? DEFAULT_EXEC_TIMEOUT_S) * 1000), maxExecTimeMs);
}

let setsidPath: string | null | undefined;

/** The minimal environment of an EXEC'd command before the caller's `env` is merged on. */
export function baseEnv(identity: Identity): Record<string, string> {
  const unrestricted = identity.permissions.level === "unrestricted";
  return {
    PATH: Deno.env.get("PATH") || DEFAULT_PATH,
    HOME: unrestricted ? Deno.env.get("HOME") || identity.workspace : identity.workspace,
    TMPDIR: "/tmp",
    LANG: "C.UTF-8",
    TERM: "dumb",
    AGENTOS_AGENT_ID: String(identity.id),
  };
}

/** The working directory: `cwd` checked as a read path, or the workspace (created on demand). */
async function resolveCwd(
  identity: Identity,
  cwd: string | undefined,
  layout: { root: string; workspacesDir: string },
): Promise<string> {
  if (cwd === undefined) await Deno.mkdir(identity.workspace, { recursive: true, mode: 0o700 });
  const checked = await checkPath(identity, cwd ?? identity.workspace, "read", {
    workspacesDir: layout.workspacesDir,
    stateDir: layout.root,
  });
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(checked);
  } catch {
    throw new SyscallError("NOT_FOUND", `cwd ${checked} does not exist`);
  }
  if (!info.isDirectory) throw new SyscallError("INVALID_MSG", `cwd ${checked} is not a directory`);
  return checked;
}

/**
 * The write roots to bind writable: existing directories whose path is canonical (no symlink
 * anywhere in it). A root that goes through a link grants nothing — bubblewrap would follow
 * the link and bind whatever it points to (say the user's home, through `workspace/link`).
 */
async function existingDirs(paths: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const p of paths) {
    try {
      if (!(await isCanonicalRoot(p))) continue;
      const real = await Deno.realPath(p);
      if ((await Deno.lstat(real)).isDirectory) out.add(real);
    } catch {
      // missing: nothing to bind
    }
  }
  return [...out];
}

/** The identity's workspace, created if missing; refused if it is not a real directory. */
async function realWorkspace(identity: Identity): Promise<string> {
  await Deno.mkdir(identity.workspace, { recursive: true, mode: 0o700 });
  if (!(await isCanonicalRoot(identity.workspace))) {
    throw permissionDenied(
      `the workspace ${identity.workspace} is (or goes through) a symbolic link; EXEC binds only real directories`,
    );
  }
  return await Deno.realPath(identity.workspace);
}

/** Run EXEC for `ctx.identity`. */
export async function execCommand(
  input: z.output<typeof ExecRequestSchema>,
  ctx: SyscallContext,
): Promise<ExecResponse> {
  const { identity, kernel } = ctx;
  const perms = identity.permissions;
  const mode = confinementFor(perms.level);
  if (mode === "denied") {
    throw permissionDenied(`level ${perms.level} may not run commands`);
  }
  checkCommand(input.command, perms.exec, perms.blocked_commands);
  const timeoutMs = execTimeoutMs(input.timeout, perms.max_exec_time_ms);
  // Confinement must be available before anything else is looked at: fail closed.
  let bwrap: string | null = null;
  if (mode !== "none") {
    const status = await bwrapStatus();
    if (!status.available) throw bwrapUnavailable(perms.level, status.reason);
    bwrap = status.path;
  }
  const cwd = await resolveCwd(identity, input.cwd, kernel.layout);
  const env = { ...baseEnv(identity), ...input.env };
  const shell = ["/bin/sh", "-c", input.command];
  let argv: string[];
  let killMode: KillMode;
  if (bwrap && mode !== "none") {
    const workspace = await realWorkspace(identity);
    const hidden = await classifyPaths([
      ...new Set([
        ...perms.filesystem.blocked,
        ...kernel.blockedPaths(),
        // The kernel's state directory: its files, the agents' SDK runtime, every other
        // identity's workspace (the caller's own is bound back on top).
        kernel.layout.root,
        kernel.layout.workspacesDir,
        ...ambientSecretPaths(
          {
            SSH_AUTH_SOCK: Deno.env.get("SSH_AUTH_SOCK"),
            XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR"),
          },
          Deno.uid(),
        ),
      ]),
    ]);
    const writable = await existingDirs(perms.filesystem.write);
    argv = [
      bwrap,
      ...bwrapArgs({ permissions: perms, workspace, writable, hidden, cwd, command: shell, env }),
    ];
    killMode = "namespace"; // bwrap's PID namespace ends every process when bwrap dies
  } else {
    if (setsidPath === undefined) {
      setsidPath = which("setsid", Deno.env.get("PATH") || DEFAULT_PATH);
    }
    const setsid = setsidPath;
    argv = setsid ? [setsid, ...shell] : shell;
    killMode = setsid !== null ? "group" : "tree";
  }
  const result = await runProcess({
    argv,
    cwd: bwrap ? undefined : cwd,
    env: bwrap ? bwrapEnvironment(env) : env,
    stdin: input.stdin === undefined ? undefined : new TextEncoder().encode(input.stdin),
    timeoutMs,
    signal: ctx.signal,
    maxBytes: MAX_PAYLOAD,
    killMode,
  });
  if (result.aborted && !result.timedOut) {
    throw new SyscallError(
      "ERROR",
      "EXEC was cancelled: the connection closed or the kernel is stopping",
    );
  }
  // Lossy: invalid UTF-8 becomes U+FFFD. A leading BOM is output like any other character.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const fitted = fitPair(
    decoder.decode(result.stdout),
    decoder.decode(result.stderr),
    MAX_PAYLOAD - RESPONSE_OVERHEAD,
  );
  return {
    success: result.code === 0 && !result.timedOut,
    stdout: fitted.a,
    stderr: fitted.b,
    exit_code: result.code,
    signal: result.signal,
    timed_out: result.timedOut,
    truncated: result.truncated || fitted.truncated,
    duration_ms: result.durationMs,
    confinement: mode,
  };
}

/** EXEC (0x02). */
export const exec = defineSyscall({
  op: Op.EXEC,
  name: "EXEC",
  summary: "Run `sh -c <command>` confined per level; stdout, stderr, exit code.",
  schema: ExecRequestSchema,
  right: "can_exec",
  maxInFlight: { perIdentity: 16, total: 256 },
  emptyResponse: {
    stdout: "",
    stderr: "",
    exit_code: -1,
    timed_out: false,
    truncated: false,
  },
  handler: (input, ctx): Promise<ExecResponse> => execCommand(input, ctx),
});
