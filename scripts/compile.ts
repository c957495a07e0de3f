/**
 * `deno task compile`: builds the single `agentos` executable with `deno compile`.
 *
 * `deno compile` needs the `denort` runtime for the target. Deno downloads it, or uses the file
 * named by `DENORT_BIN` when that is set (offline builds). The SDK sources are embedded so a
 * compiled kernel can hand them to agents.
 *
 * Usage: deno task compile [--target TRIPLE] [--output PATH]
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "..");

/** The `deno compile` argument list for `output` and optional `target`. */
export function compileArgs(output: string, target?: string): string[] {
  return [
    "compile",
    "--allow-all",
    "--include",
    join(ROOT, "sdk", "mod.ts"),
    "--include",
    join(ROOT, "sdk", "client.ts"),
    "--include",
    join(ROOT, "kernel", "frame.ts"),
    "--include",
    join(ROOT, "kernel", "protocol.ts"),
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    join(ROOT, "main.ts"),
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { target: { type: "string" }, output: { type: "string" } },
  });
  const output = resolve(values.output ?? join(ROOT, "dist", "agentos"));
  const denort = Deno.env.get("DENORT_BIN");
  console.error(
    denort
      ? `compile: using the denort runtime at ${denort} (DENORT_BIN)`
      : "compile: deno will download the denort runtime (set DENORT_BIN to use a local copy)",
  );
  const status = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(output, values.target),
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (status.success) console.error(`compile: wrote ${output}`);
  Deno.exit(status.code);
}
