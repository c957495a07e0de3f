/**
 * Building response frames: success bodies, error bodies and the size cap.
 * @module
 */
import { encodeFrame } from "./frame.ts";
import { type ErrorCodeName, MAX_PAYLOAD } from "./protocol.ts";

const encoder = new TextEncoder();

/** Encode a JSON value as a response frame, or an `ERROR` frame if it would exceed the cap. */
export function jsonFrame(
  op: number,
  agentId: number,
  value: unknown,
  emptyResponse: Record<string, unknown> = {},
): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(value));
  if (bytes.length > MAX_PAYLOAD) {
    return errorFrame(
      op,
      agentId,
      "ERROR",
      `the response would be ${bytes.length} bytes, over the ${MAX_PAYLOAD}-byte limit; ask for less (a smaller length, max or page)`,
      emptyResponse,
    );
  }
  return encodeFrame(op, agentId, bytes);
}

/** Encode `{"success": false, "error", "code", ...emptyResponse}` as a response frame. */
export function errorFrame(
  op: number,
  agentId: number,
  code: ErrorCodeName,
  message: string,
  emptyResponse: Record<string, unknown> = {},
): Uint8Array {
  const body = { ...emptyResponse, success: false, error: message, code };
  return encodeFrame(op, agentId, encoder.encode(JSON.stringify(body)));
}
