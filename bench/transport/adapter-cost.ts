// In-process cost of one unary call through the grpc-js adapter, wrapService (metrics, error
// mapping) and protobuf (de)serialisation, without grpc-js's HTTP/2 work: a fake grpc-js call
// object drives the handler that addServiceToGrpcServer registers. Far less sensitive to a noisy
// machine than h2load; use it to compare adapter changes (run it pinned, before and after).
//
//   taskset -c 1 node --import tsx bench/transport/adapter-cost.ts [calls-per-run]

import { create, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { BookingService, ListConcertsRequestSchema } from "../../gen/concert/v1/booking_pb.js";
import { addServiceToGrpcServer } from "../../src/platform/rpc/grpc-adapter.js";
import { createMetrics } from "../../src/platform/rpc/metrics.js";
import { wrapService } from "../../src/platform/rpc/service-wrapper.js";
import { median } from "../stats.js";
import { LIST_CONCERTS_REQUEST, LIST_CONCERTS_RESPONSE } from "./noop.js";

/** What the adapter reads of a grpc-js ServerUnaryCall. */
class FakeUnaryCall extends EventEmitter {
  cancelled = false;
  readonly metadata = { getMap: () => ({}) };
  constructor(readonly request: unknown) {
    super();
  }
  getDeadline(): number {
    return Infinity;
  }
  sendMetadata(): void {}
}

const callsPerRun = Number(process.argv[2] ?? 100_000);
const impl = wrapService(
  BookingService,
  { listConcerts: async () => LIST_CONCERTS_RESPONSE },
  {
    transport: "grpc",
    guardsOf: () => [],
    defaultDeadlineMs: 30_000,
    maxOpenStreams: 1,
    metrics: createMetrics({ defaultMetrics: false }),
    shutdownSignal: new AbortController().signal,
    onBug: (error) => console.error(error),
  },
);
let definition: grpc.ServiceDefinition | undefined;
let handlers: grpc.UntypedServiceImplementation | undefined;
const capture = {
  addService: (d: grpc.ServiceDefinition, h: grpc.UntypedServiceImplementation) => ((definition = d), (handlers = h)),
};
addServiceToGrpcServer(capture as unknown as grpc.Server, BookingService, impl, { defaultDeadlineMs: 30_000 });
const method = definition!.listConcerts!;
const handle = handlers!.listConcerts as grpc.handleUnaryCall<unknown, unknown>;
const requestBytes = Buffer.from(
  toBinary(ListConcertsRequestSchema, create(ListConcertsRequestSchema, LIST_CONCERTS_REQUEST)),
);

function oneCall(): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = new FakeUnaryCall(method.requestDeserialize(requestBytes));
    handle(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, (error, value) => {
      if (error) return reject(error instanceof Error ? error : new Error(String(error.details)));
      method.responseSerialize(value);
      resolve();
    });
  });
}

async function nsPerCall(calls: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await oneCall();
  return Number(process.hrtime.bigint() - started) / calls;
}

await nsPerCall(callsPerRun / 2);
const runs: number[] = [];
for (let i = 0; i < 7; i++) runs.push(await nsPerCall(callsPerRun));
console.log(
  `adapter unary call, in process: ${Math.min(...runs).toFixed(0)} ns min, ${median(runs).toFixed(0)} ns median of 7 runs × ${callsPerRun} calls`,
);
process.exit(0);
