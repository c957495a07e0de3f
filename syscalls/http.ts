/**
 * HTTP (0x50): one HTTP(S) request through `fetch`, to hosts the caller's `network` allowlist
 * names. Redirects are followed by hand so that every hop is checked again; link-local and
 * cloud-metadata addresses are refused unless the allowlist names them exactly.
 * @module
 */
import { z } from "zod";
import { MAX_PAYLOAD, Op } from "../kernel/protocol.ts";
import { permissionDenied, SyscallError } from "../kernel/errors.ts";
import {
  explicitlyAllowed,
  forbiddenAddress,
  hostAllowed,
  normalizeHost,
  resolveHost,
} from "../sandbox/domains.ts";
import { defineSyscall, type SyscallContext } from "./registry.ts";
import { base64ToBytes, bytesToBase64, decodeUtf8, fitJsonString, readCapped } from "./fit.ts";

/** Default HTTP timeout, in seconds (the whole exchange, redirects included). */
export const DEFAULT_HTTP_TIMEOUT_S = 30;
/** Most redirects followed. */
export const MAX_REDIRECTS = 10;
/** The only caller headers kept when a redirect leaves the origin. */
const CROSS_ORIGIN_HEADERS: ReadonlySet<string> = new Set([
  "accept",
  "accept-language",
  "user-agent",
  "content-type",
  "content-language",
]);
/** Response headers kept: at most this many bytes of names and values together. */
const MAX_HEADER_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const noCtl = (s: string) => !/[\r\n\0]/.test(s);

/** HTTP's payload. */
export const HttpRequestSchema = z.object({
  /** Absolute http:// or https:// URL. */
  url: z.string().min(1).max(8192),
  /** Method, default GET. */
  method: z.string().max(32).regex(TOKEN, "must be an HTTP method token").optional(),
  /** Request headers. */
  headers: z.record(
    z.string().max(256).regex(TOKEN, "must be a header name"),
    z.string().max(16_384).refine(noCtl, "must not contain CR, LF or NUL"),
  ).refine((h) => Object.keys(h).length <= 100, "at most 100 headers").optional(),
  /** Request body (text, or base64 with `body_encoding: "base64"`). */
  body: z.string().max(MAX_PAYLOAD).optional(),
  /** Encoding of `body`: `utf8` (default) or `base64`. */
  body_encoding: z.enum(["utf8", "base64"]).optional(),
  /** Seconds for the whole exchange, redirects included (default 30). */
  timeout: z.number().positive().max(600).optional(),
}).strict();

/** HTTP's success response. */
export interface HttpResponse {
  /** True for a 2xx final status. */
  success: boolean;
  status_code: number;
  /** Response headers, names in lower case. */
  headers: Record<string, string>;
  /** Response body: UTF-8 text, or base64 when `body_encoding` is `"base64"`. */
  body: string;
  /** `utf8` when the body is valid UTF-8, else `base64`. */
  body_encoding: "utf8" | "base64";
  /** True if the body was cut to fit the response frame. */
  truncated: boolean;
  /** The final URL, after redirects. */
  url: string;
  /** Redirects followed. */
  redirects: number;
}

function fromBase64(s: string): Uint8Array {
  const bytes = base64ToBytes(s);
  if (bytes === null) {
    throw new SyscallError("INVALID_MSG", 'HTTP: field "body" is not valid base64');
  }
  return bytes;
}

/** Check one hop's URL for the caller: scheme, allowlist, resolved addresses. */
export async function checkTarget(
  url: URL,
  allowlist: readonly string[],
  signal: AbortSignal,
  hop: number,
): Promise<void> {
  const where = hop === 0 ? "" : ` (redirect ${hop})`;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SyscallError(
      hop === 0 ? "INVALID_MSG" : "PERMISSION_DENIED",
      `${hop === 0 ? "" : "Permission denied: "}only http and https URLs are allowed, not ${
        url.protocol.slice(0, -1)
      }${where}`,
    );
  }
  if (url.username || url.password) {
    throw new SyscallError("INVALID_MSG", `URLs with credentials are not accepted${where}`);
  }
  const host = normalizeHost(url.hostname);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (!hostAllowed(host, allowlist, port)) {
    throw permissionDenied(
      `host ${host}${where} is not in the network allowlist (${allowlist.join(", ") || "empty"})`,
    );
  }
  let addresses: string[];
  try {
    addresses = await resolveHost(host, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new SyscallError("ERROR", `HTTP: ${(err as Error).message}${where}`);
  }
  for (const ip of addresses) {
    const why = forbiddenAddress(ip);
    if (why && !explicitlyAllowed(host, ip, allowlist)) {
      throw permissionDenied(
        `${host}${where} resolves to ${ip}, ${why}; such addresses are reachable only when the network allowlist names the host or address exactly`,
      );
    }
  }
}

function collectHeaders(headers: Headers): Record<string, string> {
  // No prototype: a header named `constructor` or `__proto__` is a header like any other.
  const out: Record<string, string> = Object.create(null);
  let used = 0;
  for (const [name, value] of headers) {
    const cost = name.length + value.length + 8;
    if (used + cost > MAX_HEADER_BYTES) break;
    used += cost;
    out[name] = Object.hasOwn(out, name) ? `${out[name]}, ${value}` : value;
  }
  return out;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Run HTTP for `ctx.identity`. */
export async function httpRequest(
  input: z.output<typeof HttpRequestSchema>,
  ctx: SyscallContext,
): Promise<HttpResponse> {
  const allowlist = ctx.identity.permissions.network;
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new SyscallError("INVALID_MSG", `HTTP: field "url": not an absolute URL: ${input.url}`);
  }
  const timeoutMs = Math.ceil((input.timeout ?? DEFAULT_HTTP_TIMEOUT_S) * 1000);
  const timer = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timer]);
  let method = (input.method ?? "GET").toUpperCase();
  let body: Uint8Array | undefined = input.body === undefined
    ? undefined
    : input.body_encoding === "base64"
    ? fromBase64(input.body)
    : new TextEncoder().encode(input.body);
  if (body && (method === "GET" || method === "HEAD")) {
    throw new SyscallError("INVALID_MSG", `HTTP: a ${method} request cannot have a body`);
  }
  const headers = new Headers();
  try {
    for (const [k, v] of Object.entries(input.headers ?? {})) headers.set(k, v);
  } catch (err) {
    throw new SyscallError("INVALID_MSG", `HTTP: field "headers": ${(err as Error).message}`);
  }

  try {
    for (let hop = 0;; hop++) {
      await checkTarget(url, allowlist, signal, hop);
      const response = await fetch(url, {
        method,
        headers,
        body: body as BodyInit | undefined,
        redirect: "manual",
        signal,
      });
      const location = response.headers.get("location");
      if (REDIRECTS.has(response.status) && location !== null) {
        await response.body?.cancel().catch(() => {});
        if (hop >= MAX_REDIRECTS) {
          throw new SyscallError("ERROR", `HTTP: more than ${MAX_REDIRECTS} redirects`);
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new SyscallError("ERROR", `HTTP: invalid redirect location ${location}`);
        }
        if (
          response.status === 303 ||
          ((response.status === 301 || response.status === 302) && method === "POST")
        ) {
          if (method !== "HEAD") method = "GET";
          body = undefined;
          headers.delete("content-type");
          headers.delete("content-length");
        }
        if (next.origin !== url.origin) {
          // Headers meant for one origin never travel to another: credentials may hide in any
          // of them (`x-api-key`, custom tokens), so only content-negotiation headers follow.
          for (const name of [...headers.keys()]) {
            if (!CROSS_ORIGIN_HEADERS.has(name)) headers.delete(name);
          }
        }
        url = next;
        continue;
      }
      return await buildResponse(response, url, hop);
    }
  } catch (err) {
    if (err instanceof SyscallError) throw err;
    if (timer.aborted) {
      throw new SyscallError(
        "TIMEOUT",
        `HTTP: no complete answer from ${url.host} within ${timeoutMs} ms`,
      );
    }
    if (ctx.signal.aborted) {
      throw new SyscallError(
        "ERROR",
        "HTTP was cancelled: the connection closed or the kernel is stopping",
      );
    }
    throw new SyscallError(
      "ERROR",
      `HTTP: request to ${url.host} failed: ${(err as Error).message}`,
    );
  }
}

async function buildResponse(
  response: Response,
  url: URL,
  redirects: number,
): Promise<HttpResponse> {
  const read = await readCapped(response.body, MAX_PAYLOAD);
  const base: HttpResponse = {
    success: response.status >= 200 && response.status < 300,
    status_code: response.status,
    headers: collectHeaders(response.headers),
    body: "",
    body_encoding: "utf8",
    truncated: read.truncated,
    url: url.href,
    redirects,
  };
  // What the body may take: the frame, minus everything else, minus room for `truncated: true`.
  const budget = MAX_PAYLOAD - new TextEncoder().encode(JSON.stringify(base)).length - 64;
  const text = decodeUtf8(read.bytes, read.truncated);
  if (text !== null) {
    const fitted = fitJsonString(text, budget);
    return { ...base, body: fitted.text, truncated: read.truncated || fitted.truncated };
  }
  const maxRaw = Math.max(0, Math.floor((budget - 2) / 4) * 3);
  const cut = read.bytes.length > maxRaw;
  return {
    ...base,
    body: bytesToBase64(cut ? read.bytes.subarray(0, maxRaw) : read.bytes),
    body_encoding: "base64",
    truncated: read.truncated || cut,
  };
}

/** HTTP (0x50). */
export const http = defineSyscall({
  op: Op.HTTP,
  name: "HTTP",
  summary: "HTTP(S) request to an allowed host; redirects re-checked; body capped.",
  schema: HttpRequestSchema,
  right: "can_http",
  maxInFlight: { perIdentity: 32, total: 512 },
  emptyResponse: { status_code: 0, headers: {}, body: "", truncated: false },
  handler: (input, ctx: SyscallContext): Promise<HttpResponse> => httpRequest(input, ctx),
});
