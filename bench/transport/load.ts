// Load generators, run from the bench process (pinned to the other core): h2load for raw unary
// throughput, a grpc-js client for latency percentiles and for streams.

import { create, toBinary } from "@bufbuild/protobuf";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BookingService, ListConcertsRequestSchema } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { closedLoop } from "../closed-loop.js";
import { percentile } from "../stats.js";
import type { ServerProcess } from "./child.js";
import { LIST_CONCERTS_REQUEST } from "./noop.js";

export const LIST_CONCERTS_PATH = "/concert.v1.BookingService/ListConcerts";

/** A file holding one gRPC frame: flag byte, 4-byte big-endian length, the protobuf message. */
export function grpcFrameFile(bytes: Uint8Array): string {
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  const file = join(mkdtempSync(join(tmpdir(), "bench-")), "request.bin");
  writeFileSync(file, frame);
  return file;
}

export const listConcertsBody = () =>
  grpcFrameFile(toBinary(ListConcertsRequestSchema, create(ListConcertsRequestSchema, LIST_CONCERTS_REQUEST)));

export interface H2loadResult {
  reqPerSec: number;
  succeeded: number;
  failed: number;
  /** Server CPU time (user + system) per request; least sensitive to a noisy neighbour. */
  serverCpuUsPerCall: number;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} exited with ${code}:\n${out}`)),
    );
  });
}

/** Splits `concurrency` in-flight requests over a few HTTP/2 connections, as gRPC clients do. */
export function h2loadShape(concurrency: number): { clients: number; streams: number } {
  const clients = Math.min(4, concurrency);
  return { clients, streams: Math.max(1, Math.round(concurrency / clients)) };
}

export function h2loadArgs(options: {
  url: string;
  bodyFile: string;
  durationSec: number;
  concurrency: number;
  core: number;
}): string[] {
  const { clients, streams } = h2loadShape(options.concurrency);
  return [
    "-c",
    String(options.core),
    "h2load",
    "-t",
    "1",
    "-c",
    String(clients),
    "-m",
    String(streams),
    "-D",
    String(options.durationSec),
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    "-d",
    options.bodyFile,
    options.url,
  ];
}

/**
 * Unary throughput with h2load (after a 1 s warm-up run): POSTs the same gRPC frame as fast as
 * the server answers, and reads the server's CPU time around the measured run. h2load only sees
 * HTTP status 200, not grpc-status, so callers check the answer first.
 */
export async function h2loadUnary(
  server: ServerProcess,
  options: { url: string; bodyFile: string; durationSec: number; concurrency: number; core: number },
): Promise<H2loadResult> {
  await run("taskset", h2loadArgs({ ...options, durationSec: 1 }));
  const cpu0 = server.cpuSeconds();
  const output = await run("taskset", h2loadArgs(options));
  const cpuSeconds = server.cpuSeconds() - cpu0;
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(output);
  const counts = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    output,
  );
  if (!rate || !counts) throw new Error(`cannot read h2load output:\n${output}`);
  return {
    reqPerSec: Number(rate[1]),
    succeeded: Number(counts[2]),
    failed: Number(counts[3]) + Number(counts[4]),
    serverCpuUsPerCall: (cpuSeconds * 1e6) / Math.max(1, Number(counts[1])),
  };
}

export interface LatencyResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** Closed loop: `concurrency` grpc-js calls in flight on one channel; 1 s warm-up not counted. */
export async function grpcUnaryLatency(options: {
  address: string;
  durationSec: number;
  concurrency: number;
}): Promise<LatencyResult> {
  const client = createGrpcClient(BookingService, options.address);
  try {
    const op = () => client.listConcerts(LIST_CONCERTS_REQUEST);
    await closedLoop({ concurrency: options.concurrency, durationMs: 1000, op });
    const { okPerSec, p50Ms, p99Ms, errors } = await closedLoop({
      concurrency: options.concurrency,
      durationMs: options.durationSec * 1000,
      op,
    });
    return { reqPerSec: okPerSec, p50Ms, p99Ms, errors };
  } finally {
    client.close();
  }
}

/** Server-streaming throughput: `parallel` streams of `messages` each, back to back. */
export async function streamBurst(options: {
  address: string;
  durationSec: number;
  parallel: number;
  messages: number;
}): Promise<{ msgsPerSec: number; streamMs: number }> {
  const client = createGrpcClient(QueueService, options.address);
  try {
    const token = `burst:${options.messages}`;
    const oneStream = async () => {
      let received = 0;
      for await (const _ of client.watchQueue({ token })) received++;
      if (received !== options.messages)
        throw new Error(`stream ended after ${received} of ${options.messages} messages`);
    };
    await oneStream();
    const durations: number[] = [];
    const started = performance.now();
    const end = started + options.durationSec * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await oneStream();
        durations.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: options.parallel }, worker));
    const elapsedSec = (performance.now() - started) / 1000;
    durations.sort((a, b) => a - b);
    return { msgsPerSec: (durations.length * options.messages) / elapsedSec, streamMs: percentile(durations, 50) };
  } finally {
    client.close();
  }
}

export interface IdleStreamsResult {
  rssAtRestMb: number;
  rssMb: number;
  cpuPercent: number;
  openSec: number;
}

/**
 * Opens `count` WatchQueue streams that heartbeat every `heartbeatMs`, waits until each has its
 * first message, lets them settle, then reads the server's RSS and CPU over `windowSec`.
 */
export async function idleStreams(
  server: ServerProcess,
  options: { address: string; count: number; heartbeatMs: number; windowSec: number },
): Promise<IdleStreamsResult> {
  const rssAtRestMb = server.rssMb();
  // One channel per 500 streams, each with its own connection (no shared subchannel pool).
  const clients = Array.from({ length: Math.ceil(options.count / 500) }, (_, i) =>
    createGrpcClient(QueueService, options.address, {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.primary_user_agent": `bench-${i}`,
    }),
  );
  const abort = new AbortController();
  const token = `idle:${options.heartbeatMs}`;
  const opened: Promise<void>[] = [];
  const finished: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < options.count; i++) {
    let first!: () => void;
    opened.push(new Promise((resolve) => (first = resolve)));
    const client = clients[i % clients.length]!;
    finished.push(
      (async () => {
        try {
          for await (const _ of client.watchQueue({ token }, { signal: abort.signal })) first();
        } catch (error) {
          if (!abort.signal.aborted) throw error;
        }
      })(),
    );
  }
  try {
    await Promise.race([
      Promise.all(opened),
      Promise.all(finished).then(() => Promise.reject(new Error("streams ended early"))),
    ]);
    const openSec = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const cpu0 = server.cpuSeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, options.windowSec * 1000));
    const cpuPercent = ((server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    return { rssAtRestMb, rssMb: server.rssMb(), cpuPercent, openSec };
  } finally {
    abort.abort();
    await Promise.allSettled(finished);
    for (const client of clients) client.close();
  }
}
