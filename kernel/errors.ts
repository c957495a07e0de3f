/**
 * The error a syscall handler throws to answer with `{"success": false, "error", "code"}`.
 * @module
 */
import type { ErrorCodeName } from "./protocol.ts";

/** A kernel-level error with a code from DESIGN section 2 and a sentence a person can act on. */
export class SyscallError extends Error {
  constructor(readonly code: ErrorCodeName, message: string) {
    super(message);
    this.name = "SyscallError";
  }
}

/** Shorthand for a `PERMISSION_DENIED` error; the text always starts with "Permission denied". */
export function permissionDenied(why: string): SyscallError {
  return new SyscallError("PERMISSION_DENIED", `Permission denied: ${why}`);
}
