// Transport suite: the bare grpc-js server (baseline), our grpc-js adapter and connect-node, on
// the same no-op contract, measured in one run. Servers run pinned to core 0, the load generators
// (h2load, the grpc-js client) to core 1. Each figure is the median of `rounds` runs, interleaved
// (round-robin over transports, starting order rotated every round) so that a noisy neighbour
// hits every transport alike.

import { availableParallelism } from "node:os";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { formatNumber, formatRuns, type BenchTable, type SuiteOptions } from "../report.js";
import { median } from "../stats.js";
import { BENCH_CONCERTS } from "./bench-app.js";
import { pinSelf, startServer, type ServerProcess } from "./child.js";
import {
  grpcUnaryLatency,
  h2loadShape,
  h2loadUnary,
  idleStreams,
  listConcertsBody,
  LIST_CONCERTS_PATH,
  streamBurst,
  type LatencyResult,
} from "./load.js";
import { LIST_CONCERTS_REQUEST } from "./noop.js";
import { profileAdapter } from "./profile.js";
import type { ServerKind } from "./server.js";

export interface TransportOptions extends SuiteOptions {
  rounds: number;
  /** Open server streams in the idle-stream measurement. */
  idleStreams: number;
  /** Also profile the adapter under h2load load and list its top self-time frames. */
  profile: boolean;
}

const SERVER_CORE = 0;
const LOAD_CORE = 1;
const STREAM_MESSAGES = 1000;
const HEARTBEAT_MS = 5000;
const TRANSPORTS = ["bare", "adapter", "connect"] as const satisfies readonly ServerKind[];
type Transport = (typeof TRANSPORTS)[number];
const LABEL: Record<Transport, string> = {
  bare: "grpc-js + proto-loader (baseline)",
  adapter: "grpc-js adapter (ours)",
  connect: "connect-node (ours)",
};

/** Runs `measure` for every transport, `rounds` times, rotating the starting transport. */
async function interleaved<K extends string, T>(
  keys: readonly K[],
  rounds: number,
  measure: (key: K, round: number) => Promise<T>,
): Promise<Record<K, T[]>> {
  const results = Object.fromEntries(keys.map((k) => [k, [] as T[]])) as Record<K, T[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(i + round) % keys.length]!;
      results[key].push(await measure(key, round));
    }
  }
  return results;
}

/** The server answers the no-op correctly over gRPC (h2load cannot tell a gRPC error from success). */
async function checkNoop(address: string, expectedConcerts: number, streams: boolean): Promise<void> {
  const booking = createGrpcClient(BookingService, address);
  const queue = createGrpcClient(QueueService, address);
  try {
    const page = await booking.listConcerts(LIST_CONCERTS_REQUEST);
    if (page.concerts.length !== expectedConcerts)
      throw new Error(
        `ListConcerts at ${address} returned ${page.concerts.length} concerts, expected ${expectedConcerts}`,
      );
    if (streams) {
      let n = 0;
      for await (const _ of queue.watchQueue({ token: "burst:3" })) n++;
      if (n !== 3) throw new Error(`WatchQueue at ${address} sent ${n} messages, expected 3`);
    }
  } finally {
    booking.close();
    queue.close();
  }
}

function latencyCells(runs: LatencyResult[]): string[] {
  return [
    formatRuns(runs.map((r) => r.reqPerSec)),
    formatRuns(
      runs.map((r) => r.p50Ms),
      2,
    ),
    formatRuns(
      runs.map((r) => r.p99Ms),
      2,
    ),
    String(runs.reduce((sum, r) => sum + r.errors, 0)),
  ];
}

export async function runTransportBench(options: TransportOptions): Promise<BenchTable[]> {
  const { durationSec, concurrency, rounds, log } = options;
  if (!(await pinSelf(String(LOAD_CORE))))
    log("transport: could not pin the load generator to core 1 (taskset missing?)");
  const body = listConcertsBody();
  const shape = h2loadShape(concurrency);
  const h2loadCommand = `taskset -c ${LOAD_CORE} h2load -t 1 -c ${shape.clients} -m ${shape.streams} -D ${durationSec} -H 'content-type: application/grpc' -H 'te: trailers' -d <ListConcertsRequest frame> http://127.0.0.1:PORT${LIST_CONCERTS_PATH}`;
  const tables: BenchTable[] = [];

  log(`transport: starting ${TRANSPORTS.join(", ")} on core ${SERVER_CORE}`);
  const servers = {} as Record<Transport, ServerProcess>;
  for (const kind of TRANSPORTS) servers[kind] = await startServer(kind, { core: SERVER_CORE });
  const address = (kind: Transport) => `127.0.0.1:${servers[kind].ports.grpc}`;
  try {
    for (const kind of TRANSPORTS) await checkNoop(address(kind), 1, true);

    const unary = await interleaved(TRANSPORTS, rounds, async (kind, round) => {
      log(`transport: unary h2load ${kind} round ${round + 1}/${rounds}`);
      return h2loadUnary(servers[kind], {
        url: `http://${address(kind)}${LIST_CONCERTS_PATH}`,
        bodyFile: body,
        durationSec,
        concurrency,
        core: LOAD_CORE,
      });
    });
    const latency = await interleaved(TRANSPORTS, rounds, async (kind, round) => {
      log(`transport: unary grpc-js latency ${kind} round ${round + 1}/${rounds}`);
      return grpcUnaryLatency({ address: address(kind), durationSec, concurrency });
    });
    const bare = median(unary.bare.map((r) => r.reqPerSec));
    tables.push({
      title: "Unary no-op: ListConcerts with a constant answer",
      note:
        `h2load (after a 1 s warm-up run): \`${h2loadCommand}\`; server CPU per call = server user+system time during the run / requests done. grpc-js client: ${concurrency} calls in flight on one channel, ${durationSec} s after 1 s warm-up. ` +
        `Median of ${rounds} interleaved runs (min–max). Server on core ${SERVER_CORE}, load generator on core ${LOAD_CORE}.`,
      columns: [
        "transport",
        "h2load req/s",
        "vs baseline",
        "server CPU µs/call",
        "grpc-js client req/s",
        "p50 ms",
        "p99 ms",
        "errors (h2load + client)",
      ],
      rows: TRANSPORTS.map((kind) => {
        const rps = median(unary[kind].map((r) => r.reqPerSec));
        const cells = latencyCells(latency[kind]);
        const h2Errors = unary[kind].reduce((sum, r) => sum + r.failed, 0);
        return [
          LABEL[kind],
          formatRuns(unary[kind].map((r) => r.reqPerSec)),
          `${formatNumber((rps / bare) * 100)} %`,
          formatRuns(
            unary[kind].map((r) => r.serverCpuUsPerCall),
            1,
          ),
          cells[0]!,
          cells[1]!,
          cells[2]!,
          String(h2Errors + Number(cells[3])),
        ];
      }),
    });

    const stream = await interleaved(TRANSPORTS, rounds, async (kind, round) => {
      log(`transport: ${STREAM_MESSAGES}-message streams ${kind} round ${round + 1}/${rounds}`);
      return streamBurst({ address: address(kind), durationSec, parallel: 4, messages: STREAM_MESSAGES });
    });
    tables.push({
      title: `Server stream: WatchQueue sending ${formatNumber(STREAM_MESSAGES)} messages`,
      note: `grpc-js client, 4 streams at a time, back to back for ${durationSec} s. Median of ${rounds} interleaved runs (min–max).`,
      columns: ["transport", "msgs/s", "one stream, p50 ms"],
      rows: TRANSPORTS.map((kind) => [
        LABEL[kind],
        formatRuns(stream[kind].map((r) => r.msgsPerSec)),
        formatRuns(
          stream[kind].map((r) => r.streamMs),
          1,
        ),
      ]),
    });
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  }

  const idle = await interleaved(TRANSPORTS, rounds, async (kind, round) => {
    log(`transport: ${options.idleStreams} idle streams ${kind} round ${round + 1}/${rounds}`);
    const server = await startServer(kind, { core: SERVER_CORE });
    try {
      return await idleStreams(server, {
        address: `127.0.0.1:${server.ports.grpc}`,
        count: options.idleStreams,
        heartbeatMs: HEARTBEAT_MS,
        windowSec: Math.max(10, durationSec),
      });
    } finally {
      await server.stop();
    }
  });
  tables.push({
    title: `${formatNumber(options.idleStreams)} open WatchQueue streams, heartbeat every ${HEARTBEAT_MS / 1000} s`,
    note:
      `Fresh server per run; grpc-js client over ${Math.ceil(options.idleStreams / 500)} connections. RSS of the server process from /proc before and with the streams open; ` +
      `CPU = server user+system time over a ${Math.max(10, durationSec)} s window, 2 s after the last stream opened. Median of ${rounds} interleaved runs (min–max).`,
    columns: ["transport", "RSS at rest MB", "RSS with streams MB", "CPU %", "time to open s"],
    rows: TRANSPORTS.map((kind) => [
      LABEL[kind],
      formatRuns(idle[kind].map((r) => r.rssAtRestMb)),
      formatRuns(idle[kind].map((r) => r.rssMb)),
      formatRuns(
        idle[kind].map((r) => r.cpuPercent),
        1,
      ),
      formatRuns(
        idle[kind].map((r) => r.openSec),
        1,
      ),
    ]),
  });

  tables.push(await databaseTable(options, body, h2loadCommand));
  if (options.profile)
    tables.push(
      await profileAdapter({ durationSec, concurrency, body, serverCore: SERVER_CORE, loadCore: LOAD_CORE, log }),
    );
  await pinSelf(`0-${availableParallelism() - 1}`);
  return tables;
}

/** ListConcerts through the real application (PostgreSQL, MikroORM) on both of its ports. */
async function databaseTable(options: TransportOptions, body: string, h2loadCommand: string): Promise<BenchTable> {
  const { durationSec, concurrency, rounds, log } = options;
  log("transport: starting the real app with its own database");
  const app = await startServer("app", { core: SERVER_CORE });
  const ports = ["grpc", "connect"] as const;
  const address = (port: (typeof ports)[number]) => `127.0.0.1:${app.ports[port]}`;
  try {
    for (const port of ports) await checkNoop(address(port), BENCH_CONCERTS, false);
    const unary = await interleaved(ports, rounds, async (port, round) => {
      log(`transport: ListConcerts (PostgreSQL) h2load ${port} round ${round + 1}/${rounds}`);
      return h2loadUnary(app, {
        url: `http://${address(port)}${LIST_CONCERTS_PATH}`,
        bodyFile: body,
        durationSec,
        concurrency,
        core: LOAD_CORE,
      });
    });
    const latency = await interleaved(ports, rounds, async (port, round) => {
      log(`transport: ListConcerts (PostgreSQL) latency ${port} round ${round + 1}/${rounds}`);
      return grpcUnaryLatency({ address: address(port), durationSec, concurrency });
    });
    return {
      title: `ListConcerts against PostgreSQL: the real app (startApp, ${BENCH_CONCERTS} concerts)`,
      note:
        `Same load as the no-op table (${h2loadCommand.replace("PORT", "<grpc|connect port>")}). The app runs on core ${SERVER_CORE}; PostgreSQL is not pinned and shares both cores. ` +
        `Median of ${rounds} interleaved runs (min–max).`,
      columns: [
        "port",
        "h2load req/s",
        "server CPU µs/call",
        "grpc-js client req/s",
        "p50 ms",
        "p99 ms",
        "errors (h2load + client)",
      ],
      rows: ports.map((port) => {
        const cells = latencyCells(latency[port]);
        const h2Errors = unary[port].reduce((sum, r) => sum + r.failed, 0);
        return [
          port === "grpc" ? "gRPC port: grpc-js adapter" : "Connect port: connect-node (gRPC protocol)",
          formatRuns(unary[port].map((r) => r.reqPerSec)),
          formatRuns(
            unary[port].map((r) => r.serverCpuUsPerCall),
            1,
          ),
          cells[0]!,
          cells[1]!,
          cells[2]!,
          String(h2Errors + Number(cells[3])),
        ];
      }),
    };
  } finally {
    await app.stop();
  }
}
