/**
 * `agentos think "<prompt>"`: one THINK call from the command line.
 * @module
 */
import { extname } from "node:path";
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  type Command,
  CommandError,
  connectClient,
  intFlag,
  parseFlags,
  printResult,
  UsageError,
} from "./command.ts";
import { bytesToBase64, type RequestFor } from "../sdk/mod.ts";
import {
  IMAGE_MIME_TYPES,
  type ImageMimeType,
  MAX_MAX_TOKENS,
  THINKING_BUDGETS,
  THINKING_LEVELS,
  type ThinkingLevel,
} from "../kernel/llm_request.ts";

const IMAGE_TYPES: Record<string, ImageMimeType> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
};

const HELP = `agentos think — ask the kernel's Claude model (THINK)

Usage: agentos think "<prompt>" [options]

Prints the answer's text. The kernel holds the API key, applies your quotas and queues the
call fairly with everyone else's.

Options:
  --model M          model name (default: the kernel's --model)
  --system S         system instruction
  --thinking LEVEL   extended thinking: ${
  THINKING_LEVELS.map((l) => `${l} (${THINKING_BUDGETS[l]} tokens)`).join(", ")
}
  --max-tokens N     most tokens to generate, thinking included
  --temperature T    sampling temperature 0..1 (not with --thinking)
  --image FILE       send an image (${Object.keys(IMAGE_TYPES).join(", ")}) before the prompt
${CLIENT_OPTIONS_HELP}

With --json the whole response is printed. Exit code 1 if THINK answered an error.`;

/** `agentos think`: send one THINK and print the answer. */
export const thinkCommand: Command = {
  name: "think",
  summary: "ask the kernel's Claude model a question (THINK)",
  help: HELP,
  async run(args) {
    const { values, positionals } = parseFlags(args, {
      ...CLIENT_OPTIONS,
      model: { type: "string" },
      system: { type: "string" },
      thinking: { type: "string" },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
      image: { type: "string" },
    });
    if (positionals.length !== 1 || positionals[0] === "") {
      throw new UsageError('expected one prompt: agentos think "<prompt>"');
    }
    const request: RequestFor<"THINK"> = { prompt: positionals[0] };
    if (values.model !== undefined) request.model = values.model;
    if (values.system !== undefined) request.system_instruction = values.system;
    if (values.thinking !== undefined) {
      if (!(THINKING_LEVELS as readonly string[]).includes(values.thinking)) {
        throw new UsageError(`--thinking must be one of ${THINKING_LEVELS.join(", ")}`);
      }
      request.thinking_level = values.thinking as ThinkingLevel;
    }
    if (values["max-tokens"] !== undefined) {
      request.max_tokens = intFlag("max-tokens", values["max-tokens"], {
        min: 1,
        max: MAX_MAX_TOKENS,
      });
    }
    if (values.temperature !== undefined) {
      const t = Number(values.temperature);
      if (values.temperature.trim() === "" || !Number.isFinite(t) || t < 0 || t > 1) {
        throw new UsageError("--temperature must be a number from 0 to 1");
      }
      request.temperature = t;
    }
    if (values.image !== undefined) {
      const mime = IMAGE_TYPES[extname(values.image).toLowerCase()];
      if (!mime || !(IMAGE_MIME_TYPES as readonly string[]).includes(mime)) {
        throw new UsageError(`--image must be a ${Object.keys(IMAGE_TYPES).join(", ")} file`);
      }
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(values.image);
      } catch (err) {
        throw new CommandError(`cannot read ${values.image}: ${(err as Error).message}`);
      }
      request.image = { data: bytesToBase64(bytes), mime_type: mime };
    }
    await using client = await connectClient(values.socket);
    const r = await client.request("THINK", request);
    return printResult(r, values.json, (v) => v.content);
  },
};
