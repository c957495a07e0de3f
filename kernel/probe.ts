/**
 * Asking a socket whether a live kernel answers on it.
 * @module
 */
import { encodeFrame } from "./frame.ts";
import { HEADER_LEN, MAGIC, Op } from "./protocol.ts";

/** True if a kernel answers a NOOP on `path` within `timeoutMs`. */
export async function probeSocket(path: string, timeoutMs = 1000): Promise<boolean> {
  let conn: Deno.UnixConn | undefined;
  const timer = setTimeout(() => {
    try {
      conn?.close();
    } catch { /* ignore */ }
  }, timeoutMs);
  try {
    conn = await Deno.connect({ transport: "unix", path });
    await conn.write(encodeFrame(Op.NOOP, 0, new Uint8Array([112, 105, 110, 103])));
    const buf = new Uint8Array(HEADER_LEN + 4);
    let got = 0;
    while (got < buf.length) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) return false;
      got += n;
    }
    return new DataView(buf.buffer).getUint32(0, true) === MAGIC;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* ignore */ }
  }
}
