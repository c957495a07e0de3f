/**
 * Turning a THINK payload into a Messages API request: the image content block, `system`,
 * extended thinking with the documented budgets, temperature, model and `max_tokens`.
 * Pure functions, so the mapping is testable without a network.
 * @module
 */
import type Anthropic from "@anthropic-ai/sdk";

/** Thinking levels THINK accepts. */
export const THINKING_LEVELS = ["low", "medium", "high"] as const;
/** One thinking level. */
export type ThinkingLevel = typeof THINKING_LEVELS[number];

/** `budget_tokens` of extended thinking per level (the API's minimum is 1,024). */
export const THINKING_BUDGETS: Readonly<Record<ThinkingLevel, number>> = {
  low: 2_048,
  medium: 8_192,
  high: 24_576,
};

/** `max_tokens` when the caller gives none and thinking is off. */
export const DEFAULT_MAX_TOKENS = 4_096;
/** Tokens left for the answer on top of the thinking budget when `max_tokens` is not given. */
export const ANSWER_TOKENS_WITH_THINKING = 4_096;
/** Largest `max_tokens` a caller may ask for. */
export const MAX_MAX_TOKENS = 128_000;

/** Image types the Messages API takes as base64 image blocks. */
export const IMAGE_MIME_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"] as const;
/** One accepted image type. */
export type ImageMimeType = typeof IMAGE_MIME_TYPES[number];
/** Largest decoded image (the API's own limit for a base64 image is 5 MB). */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

/** Shape of a model name: letters, digits and `.`, `_`, `-`, `:`, `@`, `/`; at most 128. */
export const MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

/** A validated THINK payload. */
export interface ThinkInput {
  prompt: string;
  image?: { data: string; mime_type: ImageMimeType };
  system_instruction?: string;
  thinking_level?: ThinkingLevel;
  temperature?: number;
  model?: string;
  max_tokens?: number;
}

/**
 * The non-streaming request sent to `messages.create`. `temperature` is not in the SDK's
 * types: API version 2026-10-21 (the SDK's default) removed sampling parameters, so a request
 * with a temperature is sent with {@link LEGACY_SAMPLING_API_VERSION} (see {@link apiHeaders}).
 */
export type MessageParams = Anthropic.MessageCreateParamsNonStreaming & { temperature?: number };

/** The last API version that accepts `temperature`; used only for requests that carry one. */
export const LEGACY_SAMPLING_API_VERSION = "2023-06-01";

/** A payload the API would refuse for sure, explained (the kernel answers INVALID_MSG). */
export class ThinkRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ThinkRequestError";
  }
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decoded size of a canonical base64 string. */
export function base64DecodedSize(data: string): number {
  const pad = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  return (data.length / 4) * 3 - pad;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

/** The image type its first bytes say, or null if none of the accepted ones. */
export function sniffImageType(head: Uint8Array): ImageMimeType | null {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (startsWith(head, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (startsWith(head, [0x47, 0x49, 0x46, 0x38])) return "image/gif"; // "GIF8"
  if (
    startsWith(head, [0x52, 0x49, 0x46, 0x46]) && startsWith(head, [0x57, 0x45, 0x42, 0x50], 8)
  ) return "image/webp"; // "RIFF" .... "WEBP"
  return null;
}

/**
 * What is wrong with a base64 image, or null: it must be canonical base64 (no whitespace or
 * data: prefix), at most {@link MAX_IMAGE_BYTES} decoded, and its bytes must be the type
 * `mime_type` claims.
 */
export function imageProblem(data: string, mimeType: ImageMimeType): string | null {
  if (data.length === 0) return "is empty";
  if (data.length % 4 !== 0 || !BASE64_RE.test(data)) {
    return "is not base64 (standard alphabet, padded, without whitespace or a data: prefix)";
  }
  const size = base64DecodedSize(data);
  if (size > MAX_IMAGE_BYTES) {
    return `is ${size} bytes decoded, over the ${MAX_IMAGE_BYTES}-byte limit`;
  }
  let head: Uint8Array;
  try {
    head = Uint8Array.from(atob(data.slice(0, 16)), (c) => c.charCodeAt(0));
  } catch {
    return "is not base64";
  }
  const actual = sniffImageType(head);
  if (actual === null) return `is not a JPEG, PNG, GIF or WebP image`;
  if (actual !== mimeType) return `holds an ${actual} image, but mime_type says ${mimeType}`;
  return null;
}

/**
 * Build the Messages API request for `input`, with `defaultModel` when it names none.
 * Throws {@link ThinkRequestError} for combinations the API refuses: `max_tokens` not above
 * the thinking budget, and a temperature other than 1 together with thinking.
 */
export function buildMessageParams(input: ThinkInput, defaultModel: string): MessageParams {
  const budget = input.thinking_level ? THINKING_BUDGETS[input.thinking_level] : null;
  const maxTokens = input.max_tokens ??
    (budget === null ? DEFAULT_MAX_TOKENS : budget + ANSWER_TOKENS_WITH_THINKING);
  if (budget !== null && maxTokens <= budget) {
    throw new ThinkRequestError(
      `max_tokens (${maxTokens}) must be greater than the thinking budget of thinking_level ` +
        `"${input.thinking_level}" (${budget} tokens); raise max_tokens or lower thinking_level`,
    );
  }
  if (budget !== null && input.temperature !== undefined && input.temperature !== 1) {
    throw new ThinkRequestError(
      `temperature cannot be combined with thinking_level: the API runs extended thinking at ` +
        `temperature 1 only; drop temperature (or set it to 1) or drop thinking_level`,
    );
  }
  const content: Anthropic.ContentBlockParam[] = [];
  if (input.image) {
    content.push({
      type: "image",
      source: { type: "base64", media_type: input.image.mime_type, data: input.image.data },
    });
  }
  content.push({ type: "text", text: input.prompt });
  const params: MessageParams = {
    model: input.model ?? defaultModel,
    max_tokens: maxTokens,
    messages: [{ role: "user", content }],
  };
  if (input.system_instruction !== undefined) params.system = input.system_instruction;
  if (budget !== null) params.thinking = { type: "enabled", budget_tokens: budget };
  if (input.temperature !== undefined) params.temperature = input.temperature;
  return params;
}

/** Extra request headers for `params`: the API version that accepts its fields. */
export function apiHeaders(params: MessageParams): Record<string, string> {
  return params.temperature !== undefined
    ? { "anthropic-version": LEGACY_SAMPLING_API_VERSION }
    : {};
}

/** The answer's text: every text block, joined in order (thinking blocks are left out). */
export function answerText(message: Anthropic.Message): string {
  return message.content
    .filter((b): b is Anthropic.TextBlock => b.type === "text")
    .map((b) => b.text)
    .join("");
}
