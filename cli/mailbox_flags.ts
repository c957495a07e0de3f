/**
 * The kernel's messaging flags (`--mailbox-max-messages`, `--mailbox-max-bytes`,
 * `--mailbox-max-total-bytes`), parsed into config fields.
 * @module
 */
import { UsageError } from "./command.ts";
import type { KernelConfig } from "../kernel/config.ts";

const UNITS: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
};

/** Parse a positive integer, optionally with a K/M/G (binary) suffix, e.g. `64M`. */
export function parseSize(flag: string, text: string, allowUnits: boolean): number {
  const m = /^([0-9]{1,15})([KMG]?)(?:i?B)?$/i.exec(text.trim());
  const unit = m?.[2].toUpperCase() ?? "";
  if (!m || (!allowUnits && (unit !== "" || /B$/i.test(text.trim())))) {
    throw new UsageError(
      `--${flag} must be a positive whole number${allowUnits ? " (K, M or G suffix allowed)" : ""}`,
    );
  }
  const value = Number(m[1]) * UNITS[unit];
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${flag} must be between 1 and ${Number.MAX_SAFE_INTEGER}`);
  }
  return value;
}

/** Config fields from the messaging flags that were given. */
export function mailboxFlags(values: {
  "mailbox-max-messages"?: string;
  "mailbox-max-bytes"?: string;
  "mailbox-max-total-bytes"?: string;
}): Partial<Pick<KernelConfig, "mailboxMaxMessages" | "mailboxMaxBytes" | "mailboxMaxTotalBytes">> {
  const out: Partial<
    Pick<KernelConfig, "mailboxMaxMessages" | "mailboxMaxBytes" | "mailboxMaxTotalBytes">
  > = {};
  const n = values["mailbox-max-messages"];
  if (n !== undefined) out.mailboxMaxMessages = parseSize("mailbox-max-messages", n, false);
  const b = values["mailbox-max-bytes"];
  if (b !== undefined) out.mailboxMaxBytes = parseSize("mailbox-max-bytes", b, true);
  const t = values["mailbox-max-total-bytes"];
  if (t !== undefined) out.mailboxMaxTotalBytes = parseSize("mailbox-max-total-bytes", t, true);
  return out;
}
