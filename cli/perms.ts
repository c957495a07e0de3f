/**
 * `agentos perms`: show or change a permission record (GET_PERMS / SET_PERMS).
 * @module
 */
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  type Command,
  connectClient,
  parseFlags,
  printResult,
  UsageError,
} from "./command.ts";
import { type Level, LEVELS, type Permissions } from "../sandbox/permissions.ts";
import type { RequestFor } from "../sdk/mod.ts";

/** Render a permission record for people. */
export function formatPermissions(agentId: number, p: Permissions): string {
  const list = (xs: readonly string[]) => xs.length === 0 ? "(none)" : xs.join(", ");
  const limit = (n: number | null) => n === null ? "unlimited" : String(n);
  const rights =
    (["can_exec", "can_read", "can_write", "can_think", "can_spawn", "can_http"] as const)
      .map((r) => `${r.slice(4)}=${p[r] ? "yes" : "no"}`).join(" ");
  return [
    `identity:         ${agentId}`,
    `level:            ${p.level}`,
    `rights:           ${rights}`,
    `read:             ${list(p.filesystem.read)}`,
    `write:            ${list(p.filesystem.write)}`,
    `blocked:          ${list(p.filesystem.blocked)}`,
    `exec:             ${list(p.exec)}`,
    `blocked commands: ${list(p.blocked_commands)}`,
    `network:          ${list(p.network)}`,
    `llm:              max_tokens=${limit(p.llm.max_tokens)} max_calls=${
      limit(p.llm.max_calls)
    } used: ${p.llm.tokens_used} tokens, ${p.llm.calls_made} calls`,
    `max exec time:    ${p.max_exec_time_ms} ms`,
  ].join("\n");
}

/** `agentos perms [--level L] [--agent ID] [--permissions JSON]`. */
export const permsCommand: Command = {
  name: "perms",
  summary: "show or change permissions (GET_PERMS / SET_PERMS)",
  help: `agentos perms — show or change a permission record

Usage: agentos perms [--agent ID] [--level LEVEL] [--permissions JSON] [options]

Without --level or --permissions, shows the record (your own connection's, or --agent's).
With them, changes it (SET_PERMS): never above your own permissions; another identity only if
you are unrestricted, or have can_spawn and it is your descendant. For a running agent the
kernel's checks change at once, but the Deno flags of its process stay as they were until it
restarts; the output says so.

Options:
  --agent ID          the identity to show or change (default: this connection)
  --level LEVEL       set the level: ${LEVELS.join(", ")}
  --permissions JSON  set single fields, e.g. '{"can_http": false, "network": ["*.example.com"]}'
${CLIENT_OPTIONS_HELP}

Exit code 1 if the kernel refuses.`,
  async run(args) {
    const { values } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      agent: { type: "string" },
      level: { type: "string" },
      permissions: { type: "string" },
    }, false);
    let agentId: number | undefined;
    if (values.agent !== undefined) {
      if (
        !/^\d{1,10}$/.test(values.agent) || Number(values.agent) < 1 ||
        Number(values.agent) > 0xffff_ffff
      ) {
        throw new UsageError(
          `--agent must be a numeric identity id from 1 to 4294967295, got "${values.agent}"`,
        );
      }
      agentId = Number(values.agent);
    }
    const level = values.level;
    if (level !== undefined && !(LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(`--level must be one of ${LEVELS.join(", ")}`);
    }
    // The kernel validates the fields (its errors name them); here it only has to be an object.
    let permissions: RequestFor<"SET_PERMS">["permissions"];
    if (values.permissions !== undefined) {
      try {
        permissions = JSON.parse(values.permissions);
      } catch (err) {
        throw new UsageError(`--permissions is not valid JSON: ${(err as Error).message}`);
      }
      if (typeof permissions !== "object" || permissions === null || Array.isArray(permissions)) {
        throw new UsageError("--permissions must be a JSON object");
      }
    }
    await using client = await connectClient(values.socket);
    if (level === undefined && permissions === undefined) {
      return printResult(
        await client.getPermissions(agentId),
        values.json,
        (r) => formatPermissions(r.agent_id, r.permissions),
      );
    }
    const r = await client.setPermissions({
      agentId,
      level: level as Level | undefined,
      permissions,
    });
    return printResult(
      r,
      values.json,
      (r) =>
        `${
          formatPermissions(r.agent_id, r.permissions)
        }\nenforcement:      ${r.enforcement}\n${r.note}`,
    );
  },
};
