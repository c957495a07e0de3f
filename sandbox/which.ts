/**
 * Finding host programs: one `PATH` search for the kernel, the agent runtime and the EXEC
 * sandbox.
 * @module
 */
import { delimiter, join } from "node:path";

/** True if `path` is a regular file with an execute bit. */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Find `name` on `path` (default: the kernel's `PATH`); null if absent. */
export function which(name: string, path = Deno.env.get("PATH") ?? ""): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}
