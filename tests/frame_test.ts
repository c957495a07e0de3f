import assert from "node:assert/strict";
import { concatBytes, encodeFrame, type Frame, FrameDecoder, readHeader } from "../kernel/frame.ts";
import { HEADER_LEN, MAGIC, MAX_PAYLOAD } from "../kernel/protocol.ts";

function collect(maxPayload?: number) {
  const frames: Frame[] = [];
  const errors: string[] = [];
  const d = new FrameDecoder(
    (f) => frames.push({ ...f, payload: f.payload.slice() }),
    (e) => errors.push(e.reason),
    maxPayload,
  );
  return { d, frames, errors };
}

Deno.test("header is little-endian with the AGNT magic", () => {
  const f = encodeFrame(0x12, 0x01020304, new Uint8Array([9, 9]));
  assert.deepEqual([...f.subarray(0, 4)], [0x54, 0x4e, 0x47, 0x41]);
  assert.deepEqual([...f.subarray(4, 8)], [4, 3, 2, 1]);
  assert.equal(f[8], 0x12);
  assert.deepEqual([...f.subarray(9, 17)], [2, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(f.length, HEADER_LEN + 2);
  assert.deepEqual(readHeader(f, 0), { magic: MAGIC, agentId: 0x01020304, op: 0x12, length: 2 });
});

Deno.test("decoder: frames split at every byte", () => {
  const { d, frames } = collect();
  const payloads = ["", "a", "hello world", "x".repeat(1000)];
  const bytes = payloads.map((p, i) => encodeFrame(i, 7, new TextEncoder().encode(p)));
  for (const frame of bytes) {
    for (let i = 0; i < frame.length; i++) d.push(frame.subarray(i, i + 1));
  }
  assert.deepEqual(frames.map((f) => new TextDecoder().decode(f.payload)), payloads);
  assert.deepEqual(frames.map((f) => f.op), [0, 1, 2, 3]);
  assert.equal(d.partial, false);
});

Deno.test("decoder: a thousand frames in one chunk, and random chunking", () => {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    parts.push(encodeFrame(0, 0, new TextEncoder().encode(`frame-${i}`)));
  }
  const all = concatBytes(parts);
  const one = collect();
  one.d.push(all);
  assert.equal(one.frames.length, 1000);
  assert.equal(new TextDecoder().decode(one.frames[999].payload), "frame-999");
  const rnd = collect();
  let pos = 0;
  let seed = 42;
  while (pos < all.length) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (seed % 97);
    rnd.d.push(all.subarray(pos, pos + n));
    pos += n;
  }
  assert.deepEqual(rnd.frames.map((f) => [...f.payload]), one.frames.map((f) => [...f.payload]));
});

Deno.test("decoder: the chunk buffer may be reused after push", () => {
  const { d, frames } = collect();
  const frame = encodeFrame(0, 0, new Uint8Array(100).fill(5));
  const buf = new Uint8Array(60);
  buf.set(frame.subarray(0, 60));
  d.push(buf);
  buf.fill(0);
  buf.set(frame.subarray(60, 117));
  d.push(buf.subarray(0, 57));
  assert.equal(frames.length, 1);
  assert.ok(frames[0].payload.every((b) => b === 5));
});

Deno.test("decoder: maximum payload accepted, one byte more refused without allocating", () => {
  const ok = collect();
  ok.d.push(encodeFrame(0, 0, new Uint8Array(MAX_PAYLOAD)));
  assert.equal(ok.frames[0].payload.length, MAX_PAYLOAD);
  const over = collect();
  const header = new Uint8Array(HEADER_LEN);
  new DataView(header.buffer).setUint32(0, MAGIC, true);
  new DataView(header.buffer).setBigUint64(9, 2n ** 40n, true);
  over.d.push(header);
  over.d.push(new Uint8Array(64));
  assert.deepEqual(over.errors, ["too_large"]);
  assert.equal(over.frames.length, 0);
  assert.equal(over.d.failed, true);
});

Deno.test("decoder: bad magic fails once and ignores the rest", () => {
  const { d, frames, errors } = collect();
  const bad = encodeFrame(0, 0, new Uint8Array(4));
  bad[0] = 0xde;
  d.push(bad);
  d.push(encodeFrame(0, 0, new Uint8Array(4)));
  assert.deepEqual(errors, ["bad_magic"]);
  assert.equal(frames.length, 0);
});
