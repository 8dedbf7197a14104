// One server under test, run as its own process so the runner can pin it to a core and read its
// CPU time and RSS from /proc. Usage: server.ts <bare|adapter|connect|app>. Prints one JSON line
// {"ports":{...}} when listening; exits cleanly on SIGTERM (so --cpu-prof can write its profile).
//
//   bare     @grpc/grpc-js + @grpc/proto-loader over the real .proto files: the baseline
//   adapter  our grpc-js adapter (createGrpcServer) behind wrapService, as src/app.ts wires it
//   connect  our connect-node server (createConnectServer) behind wrapService
//   app      the real application (startApp) with its own seeded database

import type { DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation } from "grpc-health-check";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { createConnectServer } from "../../src/platform/rpc/connect-server.js";
import { createGrpcServer } from "../../src/platform/rpc/grpc-server.js";
import { createMetrics } from "../../src/platform/rpc/metrics.js";
import { wrapService, type PartialServiceImpl } from "../../src/platform/rpc/service-wrapper.js";
import { sleep } from "../../src/loadtest/rpc-call.js";
import { LIST_CONCERTS_RESPONSE, QUEUE_STATUS, parseStreamPlan } from "./noop.js";

export type ServerKind = "bare" | "adapter" | "connect" | "app";

const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));
const MAX_REQUEST_BYTES = 65536;
const DEFAULT_DEADLINE_MS = 30_000;
/** How long the baseline's WatchQueue says WAITING before ACTIVE: the crowd's streams stay open through the burst. */
const JOIN_FLOOR_ACTIVE_MS = 2000;
/** The options createGrpcServer uses, so the baseline differs only in how calls are handled. */
const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
  "grpc.max_concurrent_streams": 100_000,
  "grpc.keepalive_time_ms": 60_000,
  "grpc.keepalive_timeout_ms": 20_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 10_000,
};

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
}

async function startBare(): Promise<{ ports: Record<string, number>; stop(): Promise<void> }> {
  const definition = protoLoader.loadSync(["concert/v1/booking.proto", "concert/v1/queue.proto"], {
    includeDirs: [PROTO_ROOT],
    keepCase: false,
    longs: String,
    enums: Number,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    concert: { v1: Record<"BookingService" | "QueueService", { service: grpc.ServiceDefinition }> };
  };
  const status = { ...QUEUE_STATUS, position: "1234", usersAhead: "1233", totalWaiting: "5000" };
  const server = new grpc.Server(GRPC_SERVER_OPTIONS);
  server.addService(loaded.concert.v1.BookingService.service, {
    listConcerts: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, LIST_CONCERTS_RESPONSE),
  });
  server.addService(loaded.concert.v1.QueueService.service, {
    // The front door's floor (bench/join-burst.ts's baseline): a join answered at once with a
    // fresh token, a stream that says WAITING and then ACTIVE, a leave answered at once.
    joinQueue: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { token: randomBytes(16).toString("hex"), status }),
    leaveQueue: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { status: { ...status, state: 3 } }),
    watchQueue: (call: grpc.ServerWritableStream<{ token: string }, unknown>) => {
      if (/^[0-9a-f]{32}$/.test(call.request.token)) {
        call.write({ status, heartbeat: false });
        const timer = setTimeout(() => {
          call.write({ status: { ...status, state: 2 }, heartbeat: false });
          call.end();
        }, JOIN_FLOOR_ACTIVE_MS);
        call.once("cancelled", () => clearTimeout(timer));
        return;
      }
      const plan = parseStreamPlan(call.request.token);
      if (plan.kind === "idle") {
        call.write({ status, heartbeat: false });
        const timer = setInterval(() => call.write({ status, heartbeat: true }), plan.heartbeatMs);
        call.once("cancelled", () => clearInterval(timer));
        return;
      }
      let sent = 0;
      const writeSome = () => {
        while (sent < plan.messages) {
          sent++;
          if (!call.write({ status, heartbeat: false })) return void call.once("drain", writeSome);
        }
        call.end();
      };
      writeSome();
    },
  });
  const port = await bind(server);
  return { ports: { grpc: port }, stop: () => new Promise((r) => server.tryShutdown(() => r())) };
}

const bookingImpl: PartialServiceImpl<typeof BookingService> = {
  listConcerts: async () => LIST_CONCERTS_RESPONSE,
};

const queueImpl: PartialServiceImpl<typeof QueueService> = {
  async *watchQueue(request, context: HandlerContext) {
    const plan = parseStreamPlan(request.token);
    if (plan.kind === "burst") {
      for (let i = 0; i < plan.messages; i++) yield { status: QUEUE_STATUS, heartbeat: false };
      return;
    }
    yield { status: QUEUE_STATUS, heartbeat: false };
    while (!context.signal.aborted) {
      await sleep(plan.heartbeatMs, context.signal);
      if (!context.signal.aborted) yield { status: QUEUE_STATUS, heartbeat: true };
    }
  },
};

function wrapped(transport: "grpc" | "connect", shutdownSignal: AbortSignal) {
  const metrics = createMetrics();
  const options = {
    transport,
    guardsOf: () => [],
    maxOpenStreams: 20_000,
    metrics,
    shutdownSignal,
    defaultDeadlineMs: 30_000,
    onBug: (error: unknown) => console.error(error),
  };
  const streams = { open: 0 };
  return [
    {
      service: BookingService as DescService,
      impl: wrapService(BookingService, bookingImpl, options, streams) as ServiceImpl<DescService>,
    },
    {
      service: QueueService as DescService,
      impl: wrapService(QueueService, queueImpl, options, streams) as ServiceImpl<DescService>,
    },
  ];
}

async function startAdapter() {
  const shutdown = new AbortController();
  const server = createGrpcServer({
    services: wrapped("grpc", shutdown.signal),
    health: new HealthImplementation({ "": "SERVING" }),
    maxRequestBytes: MAX_REQUEST_BYTES,
    defaultDeadlineMs: DEFAULT_DEADLINE_MS,
  });
  const port = await server.listen(0, "127.0.0.1");
  return {
    ports: { grpc: port },
    stop: async () => {
      shutdown.abort();
      await server.close();
    },
  };
}

async function startConnect() {
  const shutdown = new AbortController();
  const server = createConnectServer({
    services: wrapped("connect", shutdown.signal),
    readMaxBytes: MAX_REQUEST_BYTES,
  });
  const port = await server.listen(0, "127.0.0.1");
  return {
    ports: { grpc: port },
    stop: async () => {
      shutdown.abort();
      server.destroy();
    },
  };
}

async function startRealApp() {
  const { startBenchApp } = await import("./bench-app.js");
  return startBenchApp();
}

const kind = process.argv[2] as ServerKind;
const starters: Record<ServerKind, () => Promise<{ ports: Record<string, number>; stop(): Promise<void> }>> = {
  bare: startBare,
  adapter: startAdapter,
  connect: startConnect,
  app: startRealApp,
};
if (!(kind in starters)) {
  console.error(`usage: server.ts <${Object.keys(starters).join("|")}>`);
  process.exit(2);
}
const running = await starters[kind]();
process.stdout.write(`${JSON.stringify({ ports: running.ports })}\n`);
const stop = () => {
  const forced = setTimeout(() => process.exit(0), 3000);
  running.stop().finally(() => {
    clearTimeout(forced);
    process.exit(0);
  });
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
