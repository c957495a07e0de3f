import assert from "node:assert/strict";
import { reservedEnvName } from "../kernel/agents.ts";

Deno.test("SPAWN env: loader, proxy and runtime variables are reserved; ordinary names pass", () => {
  for (
    const name of [
      "LD_PRELOAD",
      "ld_library_path",
      "GCONV_PATH",
      "GETCONF_DIR",
      "NIS_PATH",
      "GLIBC_TUNABLES",
      "MALLOC_ARENA_MAX",
      "HTTPS_PROXY",
      "DENO_DIR",
      "AGENTOS_SOCKET",
      "PATH",
      "HOME",
    ]
  ) assert.equal(reservedEnvName(name), true, name);
  for (const name of ["MY_SETTING", "TASK_ID", "LANG", "COLUMNS"]) {
    assert.equal(reservedEnvName(name), false, name);
  }
});
