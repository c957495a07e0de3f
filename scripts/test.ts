/**
 * `deno task test`: runs the Deno test suite and the Python SDK's unittest suite, streams
 * their output, and ends with one plain line: `tests: N passed, M failed`.
 *
 * Extra arguments are passed to `deno test` (e.g. a file to run only that file); with
 * arguments, the Python suite runs only if `--python` is among them.
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "..");

/** Run `cmd`, copying its output to ours while keeping it for parsing. */
async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; text: string }> {
  const child = new Deno.Command(cmd, { args, cwd: ROOT, env, stdout: "piped", stderr: "piped" })
    .spawn();
  let text = "";
  const decoder = new TextDecoder();
  const copy = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  await Promise.all([copy(child.stdout, Deno.stdout), copy(child.stderr, Deno.stderr)]);
  return { code: (await child.status).code, text };
}

// deno-lint-ignore no-control-regex
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Counts from Deno's summary line `ok | 3 passed (1 step) | 0 failed`. */
export function parseDeno(text: string): { passed: number; failed: number } | null {
  const m = [
    ...strip(text).matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \([^)]*\))? \| (\d+) failed/gm),
  ].at(-1);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
}

/** Counts from unittest's `Ran N tests` and `FAILED (failures=a, errors=b, skipped=c)`. */
export function parsePython(text: string): { passed: number; failed: number } | null {
  const ran = text.match(/^Ran (\d+) tests?/m);
  if (!ran) return null;
  const total = Number(ran[1]);
  const count = (k: string) => Number(text.match(new RegExp(`${k}=(\\d+)`))?.[1] ?? 0);
  const failed = count("failures") + count("errors") + count("unexpected successes");
  const skipped = count("skipped") + count("expected failures");
  return { passed: total - failed - skipped, failed };
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => a !== "--python");
  const wantPython = Deno.args.length === 0 || Deno.args.includes("--python");
  let passed = 0;
  let failed = 0;
  if (args.length > 0 || Deno.args.length === 0) {
    const r = await run(Deno.execPath(), [
      "test",
      "--allow-all",
      ...(args.length ? args : ["tests/"]),
    ]);
    const counts = parseDeno(r.text);
    if (counts) {
      passed += counts.passed;
      failed += counts.failed;
    }
    if (!counts || (r.code !== 0 && counts.failed === 0)) failed += 1; // the run itself broke
  }
  const pyTests = join(ROOT, "sdk", "python", "tests");
  if (wantPython && existsSync(pyTests)) {
    const r = await run("python3", [
      "-m",
      "unittest",
      "discover",
      "-s",
      pyTests,
      "-t",
      join(ROOT, "sdk", "python"),
      "-v",
    ], {
      AGENTOS_DENO: Deno.execPath(),
      AGENTOS_REPO: ROOT,
      PYTHONPATH: join(ROOT, "sdk", "python"),
      PYTHONDONTWRITEBYTECODE: "1",
    });
    const counts = parsePython(r.text);
    if (counts) {
      passed += counts.passed;
      failed += counts.failed;
    }
    if (!counts || (r.code !== 0 && counts.failed === 0)) failed += 1;
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
  Deno.exit(failed === 0 ? 0 : 1);
}
