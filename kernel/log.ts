/**
 * Kernel logging: readable lines by default, one JSON object per line with `--log-format json`.
 * @module
 */

/** Log levels, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];
/** Output format. */
export type LogFormat = "text" | "json";

/** A small structured logger writing to stderr. */
export class Logger {
  readonly #min: number;
  readonly #encoder = new TextEncoder();

  constructor(readonly level: LogLevel = "info", readonly format: LogFormat = "text") {
    this.#min = LOG_LEVELS.indexOf(level);
  }

  /** Log at debug level. */
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#write("debug", msg, fields);
  }
  /** Log at info level. */
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#write("info", msg, fields);
  }
  /** Log at warn level. */
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#write("warn", msg, fields);
  }
  /** Log at error level. */
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#write("error", msg, fields);
  }

  #write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LOG_LEVELS.indexOf(level) < this.#min) return;
    const time = new Date().toISOString();
    let line: string;
    if (this.format === "json") {
      line = JSON.stringify({ time, level, msg, ...fields });
    } else {
      const extra = fields
        ? Object.entries(fields).map(([k, v]) =>
          `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`
        ).join(" ")
        : "";
      line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? " " + extra : ""}`;
    }
    try {
      Deno.stderr.writeSync(this.#encoder.encode(line + "\n"));
    } catch {
      // stderr closed: logging must never take the kernel down.
    }
  }
}
