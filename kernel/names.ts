/**
 * The one rule for identity names, shared by SPAWN (an agent's name, which is also its
 * workspace and log file name) and REGISTER (messaging): 1–64 of `[A-Za-z0-9._-]`, starting
 * with a letter or digit, and not purely numeric (messaging reads a number as an id).
 * @module
 */
import { z } from "zod";

/** Longest identity name. */
export const MAX_NAME_LENGTH = 64;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why `name` is not a valid identity name, or null if it is. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "a name must not be empty";
  if (name.length > MAX_NAME_LENGTH) return `a name is at most ${MAX_NAME_LENGTH} characters`;
  if (!NAME_RE.test(name)) {
    return "a name may only contain letters, digits, '.', '_' and '-', and starts with a letter or digit";
  }
  if (/^[0-9]+$/.test(name)) return "a name must not be purely numeric (numbers are ids)";
  return null;
}

/** zod schema of an identity name: the rule of {@link nameProblem}, with its message. */
export const NameSchema: z.ZodType<string> = z.string().superRefine((name, ctx) => {
  const problem = nameProblem(name);
  if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
});
