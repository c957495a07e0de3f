/**
 * Test helpers for agents: waiting for states, reading agent logs, checking pids.
 * @module
 */
import { join } from "node:path";
import type { AgentOSClient } from "../../sdk/mod.ts";
import { isKernelError } from "../../sdk/mod.ts";
import type { AgentInfo } from "../../kernel/agents.ts";

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 20_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** LIST, throwing on a kernel error. */
export async function listAgents(client: AgentOSClient): Promise<AgentInfo[]> {
  const r = await client.listAgents();
  if (isKernelError(r)) throw new Error(r.error);
  return r;
}

/** Wait until agent `id` is in one of `states`; returns its LIST row. */
export function waitState(
  client: AgentOSClient,
  id: number,
  states: string[],
  timeoutMs = 30_000,
): Promise<AgentInfo> {
  return waitFor(
    async () => {
      const a = (await listAgents(client)).find((x) => x.id === id);
      return a && states.includes(a.state) ? a : undefined;
    },
    timeoutMs,
    `agent ${id} to reach ${states.join("/")}`,
  );
}

/** The text of agent `name`'s log file. */
export async function readLog(stateDir: string, name: string): Promise<string> {
  try {
    return await Deno.readTextFile(join(stateDir, "logs", `${name}.log`));
  } catch {
    return "";
  }
}

/** True if process `pid` exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Spawn through `client`, throwing on a kernel error. */
export async function spawnOk(
  client: AgentOSClient,
  options: Parameters<AgentOSClient["spawn"]>[0],
) {
  const r = await client.spawn(options);
  if (isKernelError(r)) throw new Error(`SPAWN failed: ${r.error}`);
  return r;
}
