/**
 * THINK (0x01): ask the kernel's Claude model, through the kernel's API key, fair scheduler
 * and quotas (see kernel/llm.ts and docs/think.md).
 * @module
 */
import { z } from "zod";
import { MAX_PAYLOAD, Op } from "../kernel/protocol.ts";
import {
  IMAGE_MIME_TYPES,
  imageProblem,
  MAX_MAX_TOKENS,
  MODEL_NAME_RE,
  THINKING_LEVELS,
} from "../kernel/llm_request.ts";
import type { ThinkResponse } from "../kernel/llm.ts";
import { defineSyscall } from "./registry.ts";

export type { ThinkResponse };

/** The THINK payload. */
export const ThinkSchema = z.object({
  /** The user message. */
  prompt: z.string().min(1, "must not be empty").max(MAX_PAYLOAD),
  /** One image sent before the prompt: base64 bytes and their type. */
  image: z.object({
    data: z.string().max(MAX_PAYLOAD),
    mime_type: z.enum(IMAGE_MIME_TYPES),
  }).strict().superRefine((image, ctx) => {
    const problem = imageProblem(image.data, image.mime_type);
    if (problem) ctx.addIssue({ code: "custom", path: ["data"], message: `image ${problem}` });
  }).optional(),
  /** Sent as the request's `system` prompt. */
  system_instruction: z.string().max(MAX_PAYLOAD).optional(),
  /** Extended thinking with a budget of 2,048 / 8,192 / 24,576 tokens. */
  thinking_level: z.enum(THINKING_LEVELS).optional(),
  /** Sampling temperature, 0 to 1 (not with thinking_level, which runs at 1). */
  temperature: z.number().min(0).max(1).optional(),
  /** Model name; default the kernel's `--model`. */
  model: z.string().regex(
    MODEL_NAME_RE,
    "must be a model name: letters, digits and . _ - : @ /, at most 128 characters",
  ).optional(),
  /** Most tokens to generate (thinking included); default 4,096, or budget + 4,096. */
  max_tokens: z.number().int().min(1).max(MAX_MAX_TOKENS).optional(),
}).strict();

/** THINK (0x01): one message to the model; the answer's text, token counts and stop reason. */
export const think = defineSyscall({
  op: Op.THINK,
  name: "THINK",
  summary: "Ask the kernel's Claude model (key, quotas and fair queueing held by the kernel).",
  schema: ThinkSchema,
  right: "can_think",
  emptyResponse: {
    content: "",
    tokens: 0,
    model: "",
    stop_reason: null,
    usage: { input_tokens: 0, output_tokens: 0 },
  },
  handler: (input, ctx): Promise<ThinkResponse> =>
    ctx.kernel.llm.think(ctx.identity, input, ctx.signal),
});
