import assert from "node:assert/strict";
import { DOCS_PATH, renderSyscallDocs } from "../scripts/docs.ts";
import { allSyscalls } from "../syscalls/mod.ts";

Deno.test("docs/syscalls.md matches the registry (regenerate with scripts/docs.ts)", async () => {
  const text = renderSyscallDocs();
  for (const s of allSyscalls) assert.match(text, new RegExp(`\\| ${s.name} \\|`));
  assert.equal(await Deno.readTextFile(DOCS_PATH), text);
});
