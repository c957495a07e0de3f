/**
 * The kernel's tap on an agent's Deno permission audit log (DESIGN section 5): the agent's
 * runtime writes its audit records (`DENO_AUDIT_PERMISSIONS`) into a named pipe in the agent's
 * run directory, and a `cat` started by the kernel — outside the agent's sandbox — hands them
 * to the kernel through an ordinary async pipe. A pipe, not a file: the runtime records every
 * check, granted ones too, so a file would grow without bound; a pipe holds 64 KiB, and an
 * agent checking faster than the kernel reads waits (backpressure), never the disk.
 * The records are judged by `sandbox/audit.ts`.
 * @module
 */
import { type AuditRecord, parseAuditLine } from "../sandbox/audit.ts";
import { which } from "../sandbox/which.ts";

/** The host programs the tap needs. */
export interface AuditTools {
  mkfifo: string;
  cat: string;
  /** `setpriv` with `--pdeathsig`, so the reader dies with the kernel. */
  setpriv: string | null;
}

/** Find `mkfifo` and `cat`; null if either is missing (auditing is then off). */
export function findAuditTools(setpriv: string | null): AuditTools | null {
  const mkfifo = which("mkfifo");
  const cat = which("cat");
  return mkfifo && cat ? { mkfifo, cat, setpriv } : null;
}

/** Create the named pipe `path` (mode 0600). Returns false if that failed. */
export async function makeFifo(tools: AuditTools, path: string): Promise<boolean> {
  try {
    const r = await new Deno.Command(tools.mkfifo, {
      args: ["-m", "600", "--", path],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** Longest audit line kept (a path is at most a few KiB). */
const MAX_LINE = 65_536;
/**
 * Most records judged per agent per second. The runtime records every check, granted or not:
 * an agent checking in a tight loop must not cost the kernel more than this; records over it
 * are drained unread (counted in {@link AuditTap.skipped}).
 */
export const MAX_RECORDS_PER_SECOND = 5_000;

/** Reads one run of an agent's audit records from its pipe. */
export class AuditTap {
  #child: Deno.ChildProcess;
  #done: Promise<void>;
  #ended = false;
  #budget = new EventBudget(MAX_RECORDS_PER_SECOND);

  /** Records drained without being judged (over the per-second budget). */
  get skipped(): number {
    return this.#budget.suppressed;
  }

  /** Start reading `fifo`; `onRecord` gets every record, in order. */
  constructor(tools: AuditTools, fifo: string, onRecord: (record: AuditRecord) => void) {
    const cmd = tools.setpriv
      ? [tools.setpriv, "--pdeathsig", "KILL", "--", tools.cat, "--", fifo]
      : [tools.cat, "--", fifo];
    this.#child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      clearEnv: true,
    }).spawn();
    this.#done = this.#pump(onRecord);
    this.#child.status.then(() => this.#ended = true, () => this.#ended = true);
  }

  async #pump(onRecord: (record: AuditRecord) => void): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    let skipping = false;
    try {
      for await (const chunk of this.#child.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (skipping) {
            skipping = false;
            continue;
          }
          if (!this.#budget.take()) continue;
          const record = parseAuditLine(line);
          if (record) {
            try {
              onRecord(record);
            } catch { /* the consumer's failure is its own */ }
          }
        }
        if (buf.length > MAX_LINE) {
          buf = "";
          skipping = true; // drop the rest of an overlong line
        }
      }
    } catch { /* the reader is gone */ }
  }

  /**
   * The agent's run is over: let the reader drain what the agent wrote (it ends at the pipe's
   * end of file), and kill it if it has not ended within `graceMs` (the agent never opened
   * the pipe).
   */
  async close(graceMs = 1000): Promise<void> {
    const timer = setTimeout(() => {
      if (this.#ended) return;
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    try {
      await this.#done;
      await this.#child.status.catch(() => {});
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A per-second budget of events, with a count of what it suppressed. */
export class EventBudget {
  #windowStart = 0;
  #used = 0;
  /** Events suppressed since the last one let through. */
  suppressed = 0;

  constructor(readonly perSecond: number) {}

  /** True if one more event may go out now. */
  take(now = Date.now()): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.perSecond) {
      this.suppressed++;
      return false;
    }
    this.#used++;
    return true;
  }
}
