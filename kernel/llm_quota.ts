/**
 * THINK quotas from the permission record (`permissions.llm`): `max_calls` and `max_tokens`
 * (null means unlimited), with the counters `calls_made` and `tokens_used` that GET_PERMS shows.
 * @module
 */
import type { Permissions } from "../sandbox/permissions.ts";

/** The `llm` part of a permission record. */
export type LlmQuota = Permissions["llm"];

/**
 * Why a new call must be refused, or null if it may go ahead. `inFlight` counts this
 * identity's calls already admitted but not yet recorded, so concurrent calls cannot
 * overrun `max_calls` together.
 */
export function quotaRefusal(llm: LlmQuota, inFlight = 0): string | null {
  if (llm.max_calls !== null && llm.calls_made + inFlight >= llm.max_calls) {
    return `THINK quota exceeded: ${llm.calls_made} of ${llm.max_calls} calls used` +
      (inFlight > 0 ? ` and ${inFlight} in progress` : "") +
      " (permissions.llm.max_calls); ask whoever set the quota for a higher one";
  }
  if (llm.max_tokens !== null && llm.tokens_used >= llm.max_tokens) {
    return `THINK quota exceeded: ${llm.tokens_used} of ${llm.max_tokens} tokens used` +
      " (permissions.llm.max_tokens); ask whoever set the quota for a higher one";
  }
  return null;
}

/** Count one call that was sent to the API. */
export function recordCall(llm: LlmQuota): void {
  llm.calls_made += 1;
}

/** Add the tokens (input plus output) an answered call used. */
export function recordTokens(llm: LlmQuota, inputTokens: number, outputTokens: number): void {
  const add = Math.max(0, Math.floor(inputTokens)) + Math.max(0, Math.floor(outputTokens));
  if (Number.isFinite(add)) llm.tokens_used += add;
}
