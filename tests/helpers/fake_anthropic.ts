/**
 * Test helper: a fake Anthropic Messages API served with hono on a loopback port. It records
 * every request it gets (method, path, headers, JSON body, arrival time) and answers with
 * scripted responses — messages, errors with status codes and `retry-after`, delays — or, when
 * the script is empty, with a default message that echoes the prompt.
 * @module
 */
import { Hono } from "hono";

/** One request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** The parsed JSON body (null if it was not JSON). */
  body: Record<string, unknown> | null;
  /** Arrival time (ms since epoch). */
  at: number;
}

/** What the fake answers to one request. */
export interface ScriptedResponse {
  /** HTTP status (default 200). */
  status?: number;
  /** JSON body; default a message built from the request. */
  body?: unknown;
  /** Extra response headers (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
}

/** A response, or a function of the request giving one. */
export type Script = ScriptedResponse | ((req: RecordedRequest) => ScriptedResponse);

/** Options of {@link startFakeAnthropic}. */
export interface FakeOptions {
  /** Delay of every default answer. */
  delayMs?: number;
  /** Usage reported by default answers. */
  usage?: { input_tokens: number; output_tokens: number };
}

/** A running fake API. */
export interface FakeAnthropic {
  /** `http://127.0.0.1:PORT`, for `ANTHROPIC_BASE_URL`. */
  url: string;
  /** Every request received, in arrival order. */
  requests: RecordedRequest[];
  /** Requests to `POST /v1/messages` whose first text block is `prompt`. */
  requestsFor(prompt: string): RecordedRequest[];
  /** Queue responses, used one per request in order before the default. */
  script(...responses: Script[]): void;
  /** Most requests the fake was answering at one time. */
  maxInFlight(): number;
  /** Change the delay of default answers. */
  setDelay(ms: number): void;
  /** Stop serving. */
  close(): Promise<void>;
}

/** The text of the first text block of the first message of a recorded request. */
export function promptOf(req: RecordedRequest): string | undefined {
  const messages = req.body?.messages as { content: unknown }[] | undefined;
  const content = messages?.[0]?.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return undefined;
  const text = content.find((b) => (b as { type?: string }).type === "text") as
    | { text: string }
    | undefined;
  return text?.text;
}

let messageSeq = 0;

/** A Messages API `Message` answering `req`. */
export function fakeMessage(
  req: RecordedRequest,
  usage = { input_tokens: 11, output_tokens: 7 },
  content: unknown[] = [{ type: "text", text: `echo: ${promptOf(req) ?? ""}`, citations: null }],
): Record<string, unknown> {
  return {
    id: `msg_fake_${++messageSeq}`,
    type: "message",
    role: "assistant",
    model: (req.body?.model as string | undefined) ?? "unknown",
    content,
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { ...usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

/** An Anthropic-style error body. */
export function fakeError(type: string, message: string): Record<string, unknown> {
  return { type: "error", error: { type, message } };
}

/** Start the fake on 127.0.0.1 with a free port. */
export function startFakeAnthropic(options: FakeOptions = {}): Promise<FakeAnthropic> {
  const requests: RecordedRequest[] = [];
  const queue: Script[] = [];
  let delayMs = options.delayMs ?? 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const app = new Hono();
  app.all("*", async (c) => {
    let body: Record<string, unknown> | null = null;
    try {
      body = await c.req.json();
    } catch {
      body = null;
    }
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => headers[k.toLowerCase()] = v);
    const req: RecordedRequest = {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      headers,
      body,
      at: Date.now(),
    };
    requests.push(req);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return await answer(req);
    } finally {
      inFlight--;
    }
  });
  const answer = async (req: RecordedRequest): Promise<Response> => {
    const next = queue.shift();
    const scripted = typeof next === "function" ? next(req) : next;
    const wait = scripted ? scripted.delayMs ?? 0 : delayMs;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const status = scripted?.status ?? 200;
    const responseBody = scripted?.body ?? fakeMessage(req, options.usage);
    return new Response(JSON.stringify(responseBody), {
      status,
      headers: { "content-type": "application/json", ...scripted?.headers },
    });
  };
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => {
        resolve({
          url: `http://127.0.0.1:${port}`,
          requests,
          requestsFor: (prompt) =>
            requests.filter((r) => r.path === "/v1/messages" && promptOf(r) === prompt),
          script: (...responses) => queue.push(...responses),
          maxInFlight: () => maxInFlight,
          setDelay: (ms) => delayMs = ms,
          close: () => server.shutdown(),
        });
      },
    }, app.fetch);
  });
}
