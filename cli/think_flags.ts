/**
 * The THINK flags of `agentos kernel`: parsing and validation into kernel configuration.
 * @module
 */
import { intFlag, UsageError } from "./command.ts";
import type { KernelConfig } from "../kernel/config.ts";
import { MODEL_NAME_RE } from "../kernel/llm_request.ts";

/** The raw flag values (strings as `parseArgs` gives them). */
export interface ThinkFlags {
  /** `--model`: the default THINK model. */
  model?: string;
  /** `--llm-concurrency`: THINK calls in flight at once, kernel-wide. */
  "llm-concurrency"?: string;
  /** `--llm-queue-timeout`: seconds a call may wait for a slot. */
  "llm-queue-timeout"?: string;
  /** `--llm-timeout`: seconds one Messages API request may take. */
  "llm-timeout"?: string;
  /** `--llm-max-attempts`: attempts per THINK on retryable errors. */
  "llm-max-attempts"?: string;
  /** `--client-llm-max-calls`: THINK call quota of each main-socket client. */
  "client-llm-max-calls"?: string;
  /** `--client-llm-max-tokens`: THINK token quota of each main-socket client. */
  "client-llm-max-tokens"?: string;
}

function integer(flag: string, text: string, min: number, max?: number): number {
  return intFlag(flag, text, { min, max });
}

function seconds(flag: string, text: string, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) <= 0 || Number(text) > max) {
    throw new UsageError(`--${flag} must be a number of seconds above 0 and at most ${max}`);
  }
  return Math.round(Number(text) * 1000);
}

/** Turn the THINK flags into the config fields they set (unset flags are left out). */
export function thinkConfigFromFlags(values: ThinkFlags): Partial<KernelConfig> {
  const config: Partial<KernelConfig> = {};
  if (values.model !== undefined) {
    if (!MODEL_NAME_RE.test(values.model)) {
      throw new UsageError(
        "--model must be a model name: letters, digits and . _ - : @ /, at most 128 characters",
      );
    }
    config.llmModel = values.model;
  }
  const v = values;
  if (v["llm-concurrency"] !== undefined) {
    config.llmConcurrency = integer("llm-concurrency", v["llm-concurrency"], 1, 1024);
  }
  if (v["llm-queue-timeout"] !== undefined) {
    config.llmQueueTimeoutMs = seconds("llm-queue-timeout", v["llm-queue-timeout"], 86_400);
  }
  if (v["llm-timeout"] !== undefined) {
    config.llmRequestTimeoutMs = seconds("llm-timeout", v["llm-timeout"], 86_400);
  }
  if (v["llm-max-attempts"] !== undefined) {
    config.llmMaxAttempts = integer("llm-max-attempts", v["llm-max-attempts"], 1, 20);
  }
  if (v["client-llm-max-calls"] !== undefined) {
    config.clientLlmMaxCalls = integer("client-llm-max-calls", v["client-llm-max-calls"], 0);
  }
  if (v["client-llm-max-tokens"] !== undefined) {
    config.clientLlmMaxTokens = integer("client-llm-max-tokens", v["client-llm-max-tokens"], 0);
  }
  return config;
}
