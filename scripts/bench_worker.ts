/**
 * Benchmark worker: runs `connections` sequential NOOP loops until `until` (epoch ms) and posts
 * the number of completed calls.
 * @module
 */
import { encodeFrame } from "../kernel/frame.ts";
import { Op } from "../kernel/protocol.ts";
import { BenchConn } from "./bench_client.ts";

interface Job {
  socket: string;
  connections: number;
  start: number;
  until: number;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(m: unknown): void;
};

self.onmessage = async (e: MessageEvent<Job>) => {
  const { socket, connections, start, until } = e.data;
  const conns = await Promise.all(
    Array.from({ length: connections }, () => BenchConn.open(socket)),
  );
  self.postMessage({ ready: true });
  while (Date.now() < start) await new Promise((r) => setTimeout(r, 1));
  const frame = encodeFrame(Op.NOOP, 0, new TextEncoder().encode("0123456789abcdef"));
  const counts = await Promise.all(conns.map(async (c) => {
    let n = 0;
    while (Date.now() < until) {
      await c.roundTrip(frame);
      n++;
    }
    c.close();
    return n;
  }));
  self.postMessage({ calls: counts.reduce((a, b) => a + b, 0) });
};
