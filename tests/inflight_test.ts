import assert from "node:assert/strict";
import { InFlightLimiter } from "../kernel/inflight.ts";
import { startKernel } from "./helpers/kernel.ts";
import { isKernelError } from "../sdk/mod.ts";

Deno.test("InFlightLimiter: per-identity and total bounds, release once", () => {
  const l = new InFlightLimiter();
  const bound = { perIdentity: 2, total: 3 };
  const a1 = l.acquire(1, 10, bound);
  const a2 = l.acquire(1, 10, bound);
  assert.equal(typeof a1, "function");
  assert.equal(typeof a2, "function");
  assert.match(String(l.acquire(1, 10, bound)), /already running for this identity/);
  const b1 = l.acquire(1, 11, bound);
  assert.equal(typeof b1, "function");
  assert.match(String(l.acquire(1, 12, bound)), /already running in the kernel/);
  assert.equal(typeof l.acquire(2, 12, bound), "function", "other ops are counted apart");
  (a1 as () => void)();
  (a1 as () => void)(); // a second release changes nothing
  assert.equal(l.running(1), 2);
  assert.equal(typeof l.acquire(1, 12, bound), "function");
  assert.match(String(l.acquire(1, 13, bound)), /in the kernel/);
});

Deno.test("EXEC: calls beyond the in-flight bound are refused with QUOTA_EXCEEDED, others unaffected", async () => {
  const k = await startKernel();
  try {
    const a = await k.client();
    const b = await k.client();
    const calls = Array.from({ length: 20 }, () => a.exec("sleep 1", { timeout: 10 }));
    const results = await Promise.all(calls);
    const refused = results.filter((r) => isKernelError(r) && r.code === "QUOTA_EXCEEDED");
    const ran = results.filter((r) => !isKernelError(r));
    assert.equal(ran.length, 16);
    assert.equal(refused.length, 4);
    assert.match((refused[0] as { error: string }).error, /EXEC: 16 calls/);
    // Another identity still gets its own slots, and the first gets its slots back.
    const other = await b.exec("echo ok");
    assert.ok(!isKernelError(other) && other.stdout === "ok\n");
    const again = await a.exec("echo again");
    assert.ok(!isKernelError(again) && again.stdout === "again\n");
  } finally {
    await k.stop();
  }
});
