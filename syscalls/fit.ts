/**
 * Fitting text into a response frame: how many bytes a string takes once JSON-encoded, and
 * cutting strings so that a response stays under the 1 MiB frame limit.
 * @module
 */

/** Bytes `JSON.stringify` produces for code unit(s) starting at `s[i]`, and how many it used. */
function encodedAt(s: string, i: number): [bytes: number, units: number] {
  const c = s.charCodeAt(i);
  if (c === 0x22 || c === 0x5c) return [2, 1]; // \" \\
  if (c < 0x20) {
    // \b \t \n \f \r are two bytes, every other control character is \u00XX
    return [c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6, 1];
  }
  if (c < 0x80) return [1, 1];
  if (c < 0x800) return [2, 1];
  if (c >= 0xd800 && c <= 0xdbff) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return [4, 2];
    return [6, 1]; // lone surrogate: \udXXX
  }
  if (c >= 0xdc00 && c <= 0xdfff) return [6, 1];
  return [3, 1];
}

/** Bytes of `JSON.stringify(s)` in UTF-8, quotes included. */
export function jsonStringBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length;) {
    const [bytes, units] = encodedAt(s, i);
    n += bytes;
    i += units;
  }
  return n;
}

/**
 * The longest prefix of `s` whose JSON encoding (quotes included) takes at most `maxBytes`,
 * never splitting a surrogate pair.
 */
export function fitJsonString(s: string, maxBytes: number): { text: string; truncated: boolean } {
  let n = 2;
  let i = 0;
  while (i < s.length) {
    const [bytes, units] = encodedAt(s, i);
    if (n + bytes > maxBytes) return { text: s.slice(0, i), truncated: true };
    n += bytes;
    i += units;
  }
  return { text: s, truncated: false };
}

/**
 * Cut two strings so that both JSON encodings together take at most `budget` bytes. Each gets
 * half; what one does not need goes to the other.
 */
export function fitPair(
  a: string,
  b: string,
  budget: number,
): { a: string; b: string; truncated: boolean } {
  const needA = jsonStringBytes(a);
  const needB = jsonStringBytes(b);
  if (needA + needB <= budget) return { a, b, truncated: false };
  const half = Math.floor(budget / 2);
  let budgetA: number;
  if (needA <= half) budgetA = needA;
  else if (needB <= half) budgetA = budget - needB;
  else budgetA = half;
  const fa = fitJsonString(a, budgetA);
  const fb = fitJsonString(b, budget - jsonStringBytes(fa.text));
  return { a: fa.text, b: fb.text, truncated: fa.truncated || fb.truncated };
}

// ignoreBOM: a byte-order mark is content, kept like any other character.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decode bytes as UTF-8 if they are valid UTF-8 (allowing a sequence cut at the end when
 * `cut` is true, which is dropped); null if they are not text.
 */
export function decodeUtf8(bytes: Uint8Array, cut = false): string | null {
  try {
    return strict.decode(bytes);
  } catch {
    if (!cut) return null;
  }
  for (let drop = 1; drop <= 3 && drop <= bytes.length; drop++) {
    try {
      return strict.decode(bytes.subarray(0, bytes.length - drop));
    } catch {
      // try dropping one more byte
    }
  }
  return null;
}

/** Base64 of `bytes` (the runtime's own encoder). */
export function bytesToBase64(bytes: Uint8Array): string {
  return (bytes as unknown as { toBase64(): string }).toBase64();
}

/** The bytes of strict base64 `text` (padding bits must be zero), or null if it is not base64. */
export function base64ToBytes(text: string): Uint8Array | null {
  const from = (Uint8Array as unknown as {
    fromBase64(s: string, o: { lastChunkHandling: string }): Uint8Array;
  }).fromBase64;
  try {
    return from(text, { lastChunkHandling: "strict" });
  } catch {
    return null;
  }
}

/** Options of {@link readCapped}. */
export interface ReadCappedOptions {
  /**
   * Past the cap, go on reading and dropping until the stream ends (a child process must not
   * block on a full pipe); otherwise stop at the cap and cancel the stream. Default false.
   */
  drain?: boolean;
  /** Stop reading (and cancel the stream) when this settles. */
  stop?: Promise<void>;
}

/**
 * Read `stream` keeping at most `max` bytes; `truncated` is true if it had more. Errors of the
 * stream end the reading and keep what was read.
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array> | null,
  max: number,
  options: ReadCappedOptions = {},
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (!stream) return { bytes: new Uint8Array(0), truncated: false };
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let truncated = false;
  const reader = stream.getReader();
  let stopped = false;
  options.stop?.then(() => {
    stopped = true;
    reader.cancel().catch(() => {});
  });
  try {
    while (!stopped) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = value.subarray(0, Math.max(0, max - kept));
      if (take.length > 0) chunks.push(take);
      kept += take.length;
      if (take.length < value.length) truncated = true;
      if (kept < max || options.drain) continue;
      // At the cap: is there more? Then stop reading.
      if (!truncated) {
        const next = await reader.read();
        truncated = !next.done && next.value.length > 0;
      }
      break;
    }
  } catch {
    // cancelled or broken: keep what we have
  } finally {
    if (!options.drain || stopped) reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  const bytes = new Uint8Array(kept);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, truncated };
}
