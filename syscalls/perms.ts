/**
 * GET_PERMS (0x40) and SET_PERMS (0x41): reading and changing permission records under the
 * no-escalation rules of DESIGN section 3.
 *
 * Who may change whose record:
 * - anyone may change its own record, to something at or below what it holds (lowering);
 * - an `unrestricted` caller may change anyone's record, at or below its own;
 * - a caller with `can_spawn` may change its own descendants' records, at or below its own;
 * - nobody else. Refusals are `PERMISSION_DENIED` (and a `syscall.blocked` event).
 * @module
 */
import { z } from "zod";
import { Op } from "../kernel/protocol.ts";
import { permissionDenied, SyscallError } from "../kernel/errors.ts";
import type { Identity } from "../kernel/identity.ts";
import type { Kernel } from "../kernel/kernel.ts";
import {
  applyPatch,
  boundViolations,
  clonePermissions,
  defaultPermissions,
  levelRank,
  LevelSchema,
  meetPermissions,
  type Permissions,
  type PermissionsPatch,
  PermissionsPatchSchema,
  usageCounterChanges,
  withOwnWorkspace,
} from "../sandbox/permissions.ts";
import { canonicalRoot } from "../sandbox/paths.ts";
import { defineSyscall } from "./registry.ts";

const agentId = z.number().int().min(1).max(0xffff_ffff);

/** Response of GET_PERMS. */
export interface GetPermsResponse {
  success: true;
  /** Whose record this is. */
  agent_id: number;
  permissions: Permissions;
}

/** How a SET_PERMS change is enforced. */
export type Enforcement = "kernel-checks" | "kernel-checks-only until restart";

/** Response of SET_PERMS. */
export interface SetPermsResponse {
  success: true;
  /** Whose record changed. */
  agent_id: number;
  /** The record now in force for the kernel's checks. */
  permissions: Permissions;
  /**
   * `kernel-checks`: the kernel's syscall checks use the new record from now on (a client has
   * no OS sandbox of its own). `kernel-checks-only until restart`: the target is a running
   * agent; the kernel's checks use the new record now, but the Deno flags of the running
   * process are not changed until it restarts.
   */
  enforcement: Enforcement;
  /** The same, as a sentence. */
  note: string;
  /**
   * Descendants of the target whose records were narrowed so that none stays above its
   * spawner's (no escalation, ever): their ids.
   */
  narrowed: number[];
}

/** Find `id`, or throw NOT_FOUND. */
function lookup(kernel: Kernel, id: number): Identity {
  const identity = kernel.identities.get(id);
  if (!identity) {
    throw new SyscallError("NOT_FOUND", `no live identity with id ${id}; see \`agentos list\``);
  }
  return identity;
}

/** GET_PERMS: the caller's own record, or (for unrestricted callers and ancestors) another's. */
export const getPerms = defineSyscall({
  op: Op.GET_PERMS,
  name: "GET_PERMS",
  summary: "Read the caller's permission record, or a descendant's (`agent_id`).",
  schema: z.object({ agent_id: agentId.optional() }).strict(),
  right: null,
  emptyResponse: { agent_id: 0, permissions: null },
  handler: (input, ctx): GetPermsResponse => {
    const caller = ctx.identity;
    const targetId = input.agent_id ?? caller.id;
    if (targetId !== caller.id) {
      const mayRead = caller.permissions.level === "unrestricted" ||
        ctx.kernel.identities.isDescendant(targetId, caller.id);
      if (!mayRead) {
        throw permissionDenied(
          `only an unrestricted caller or an ancestor may read identity ${targetId}'s permissions`,
        );
      }
    }
    const target = lookup(ctx.kernel, targetId);
    return {
      success: true,
      agent_id: target.id,
      permissions: clonePermissions(target.permissions),
    };
  },
});

const setPermsSchema = z.object({
  agent_id: agentId.optional(),
  level: LevelSchema.optional(),
  permissions: PermissionsPatchSchema.optional(),
}).strict().refine(
  (v) => v.level !== undefined || v.permissions !== undefined,
  "give level or permissions (or both)",
).refine(
  (v) =>
    v.level === undefined || v.permissions?.level === undefined || v.level === v.permissions.level,
  "level and permissions.level disagree",
);

/** The SET_PERMS request. */
export type SetPermsRequest = z.input<typeof setPermsSchema>;

/** Decide whether `caller` may change `target`'s record at all (bounds are checked apart). */
function authorize(kernel: Kernel, caller: Identity, targetId: number): void {
  if (targetId === caller.id) return;
  if (caller.permissions.level === "unrestricted") return;
  if (!caller.permissions.can_spawn) {
    throw permissionDenied(
      `changing identity ${targetId}'s permissions needs can_spawn, which level ${caller.permissions.level} does not grant`,
    );
  }
  if (!kernel.identities.isDescendant(targetId, caller.id)) {
    throw permissionDenied(
      `identity ${targetId} is not a descendant of identity ${caller.id}; only its ancestors or an unrestricted caller may change its permissions`,
    );
  }
}

/**
 * Compute the record SET_PERMS would produce for `target`, bounded by `caller`'s own. A
 * `level` resets the record to that level's defaults narrowed to the caller's own grants
 * (keeping LLM limits and usage); `permissions` fields then override, and must themselves stay
 * within the caller's bounds.
 */
export function proposedRecord(
  kernel: Kernel,
  caller: Identity,
  target: Identity,
  level: Permissions["level"] | undefined,
  patch: PermissionsPatch | undefined,
): Permissions {
  const bound = boundFor(caller, target);
  const newLevel = level ?? patch?.level;
  let base = target.permissions;
  if (newLevel !== undefined) {
    if (levelRank(newLevel) > levelRank(bound.level)) {
      throw permissionDenied(
        `level ${newLevel} is above the caller's own level ${bound.level}; permissions can only be set at or below one's own`,
      );
    }
    const defaults = defaultPermissions(newLevel, {
      workspace: target.workspace,
      blocked: [...new Set([...kernel.blockedPaths(), ...target.permissions.filesystem.blocked])],
    });
    defaults.llm = { ...target.permissions.llm };
    base = meetPermissions(defaults, bound);
    base.llm.max_tokens = minNullable(base.llm.max_tokens, target.permissions.llm.max_tokens);
    base.llm.max_calls = minNullable(base.llm.max_calls, target.permissions.llm.max_calls);
  }
  const record = patch ? applyPatch(base, patch) : clonePermissions(base);
  record.llm.tokens_used = target.permissions.llm.tokens_used;
  record.llm.calls_made = target.permissions.llm.calls_made;
  return record;
}

/**
 * What `caller` may grant `target`: its own record, plus (for another identity) the target's
 * own workspace (see {@link withOwnWorkspace}).
 */
function boundFor(caller: Identity, target: Identity): Permissions {
  return caller.id === target.id
    ? caller.permissions
    : withOwnWorkspace(caller.permissions, target.workspace);
}

function minNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/**
 * After `top`'s record changed, narrow every descendant whose record is no longer within its
 * parent's (top-down, so each is narrowed against its already-narrowed parent). Returns the
 * ids of the identities changed.
 */
export function narrowDescendants(kernel: Kernel, top: Identity): number[] {
  const changed: number[] = [];
  const children = new Map<number, Identity[]>();
  for (const identity of kernel.identities.all()) {
    if (identity.parentId === null) continue;
    const list = children.get(identity.parentId) ?? [];
    list.push(identity);
    children.set(identity.parentId, list);
  }
  const queue: Identity[] = [top];
  const seen = new Set<number>([top.id]);
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const child of children.get(parent.id) ?? []) {
      if (seen.has(child.id)) continue;
      seen.add(child.id);
      const bound = withOwnWorkspace(parent.permissions, child.workspace);
      if (boundViolations(child.permissions, bound).length > 0) {
        const next = meetPermissions(child.permissions, bound);
        if (levelRank(next.level) > levelRank(parent.permissions.level)) {
          next.level = parent.permissions.level;
        }
        next.llm.tokens_used = child.permissions.llm.tokens_used;
        next.llm.calls_made = child.permissions.llm.calls_made;
        child.permissions = next;
        changed.push(child.id);
      }
      queue.push(child);
    }
  }
  return changed;
}

/** `patch` with its filesystem read/write roots canonical (see {@link canonicalRoot}). */
async function canonicalPatch(patch: PermissionsPatch): Promise<PermissionsPatch> {
  if (!patch.filesystem) return patch;
  const roots = async (list: string[] | undefined) =>
    list && [...new Set(await Promise.all(list.map(canonicalRoot)))];
  const [read, write] = await Promise.all([
    roots(patch.filesystem.read),
    roots(patch.filesystem.write),
  ]);
  const filesystem = { ...patch.filesystem };
  if (read) filesystem.read = read;
  if (write) filesystem.write = write;
  return { ...patch, filesystem };
}

/** SET_PERMS: change a record, never above the caller's own. */
export const setPerms = defineSyscall({
  op: Op.SET_PERMS,
  name: "SET_PERMS",
  summary:
    "Change the caller's or a descendant's permissions (`level` and/or `permissions`), never above the caller's own.",
  schema: setPermsSchema,
  right: null,
  emptyResponse: { agent_id: 0, permissions: null },
  handler: async (input, ctx): Promise<SetPermsResponse> => {
    const caller = ctx.identity;
    const targetId = input.agent_id ?? caller.id;
    authorize(ctx.kernel, caller, targetId);
    lookup(ctx.kernel, targetId);
    // Roots are recorded (and bound-checked) as what they really name: `ws/link/etc` with
    // `link -> /` is `/etc`. Done first: everything after it is synchronous, so nothing can
    // change the records between the check and the assignment.
    const patch = input.permissions && await canonicalPatch(input.permissions);
    authorize(ctx.kernel, caller, targetId);
    const target = lookup(ctx.kernel, targetId);
    if (patch) {
      const counters = usageCounterChanges(target.permissions, patch);
      if (counters.length > 0) {
        throw permissionDenied(
          `${counters.join(" and ")} ${
            counters.length > 1 ? "are usage counters" : "is a usage counter"
          } kept by the kernel; SET_PERMS cannot change ${counters.length > 1 ? "them" : "it"}`,
        );
      }
    }
    const record = proposedRecord(ctx.kernel, caller, target, input.level, patch);
    const violations = boundViolations(record, boundFor(caller, target));
    if (violations.length > 0) {
      throw permissionDenied(
        `the new permissions would exceed the caller's own: ${violations.slice(0, 5).join("; ")}${
          violations.length > 5 ? `; and ${violations.length - 5} more` : ""
        }`,
      );
    }
    // Usage may have moved while we computed (THINK in flight elsewhere): keep the live counters.
    record.llm.tokens_used = target.permissions.llm.tokens_used;
    record.llm.calls_made = target.permissions.llm.calls_made;
    target.permissions = record;
    const narrowed = narrowDescendants(ctx.kernel, target);
    const agent = target.kind === "agent";
    ctx.kernel.log.info("permissions changed", {
      by: caller.id,
      identity: target.id,
      level: record.level,
    });
    return {
      success: true,
      agent_id: target.id,
      permissions: clonePermissions(record),
      narrowed,
      enforcement: agent ? "kernel-checks-only until restart" : "kernel-checks",
      note: agent
        ? "The kernel checks every syscall of this agent against the new record from now on. The Deno flags of the running process are not changed: until it restarts, what the agent does directly (not through syscalls) is governed by the flags it was started with."
        : "The kernel checks every syscall of this identity against the new record from now on.",
    };
  },
});
