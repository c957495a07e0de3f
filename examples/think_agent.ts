/**
 * An agent that thinks: asks the kernel's model a question through THINK and prints the answer.
 *
 * The kernel holds the API key (`ANTHROPIC_API_KEY` in the kernel's environment); the agent
 * never sees it. Run it as a spawned, sandboxed agent or directly against a kernel:
 *
 * ```sh
 * ANTHROPIC_API_KEY=sk-ant-... deno task start &
 * deno run -A main.ts run examples/think_agent.ts -- "Why is the sky blue?"   # as an agent
 * deno run -A examples/think_agent.ts "Why is the sky blue?"                  # as a client
 * ```
 * @module
 */
import { connect, isKernelError } from "agentos";

const question = Deno.args.join(" ").trim() ||
  "In one sentence: what does an operating system kernel do?";

await using os = await connect();
const r = await os.think(question, {
  system_instruction: "You are a concise assistant. Answer in at most three sentences.",
});
if (isKernelError(r)) {
  console.error(`THINK failed (${r.code}): ${r.error}`);
  Deno.exit(1);
}
console.log(r.content);
console.error(`[${r.model}: ${r.tokens} tokens, stop: ${r.stop_reason}]`);
