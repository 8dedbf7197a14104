// The grpc-js server: the three services through the adapter, plus grpc.health.v1 and server
// reflection (v1 and v1alpha) from the official grpc-node packages so grpcurl, ghz and buf curl
// can list and call everything.

import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { HealthImplementation } from "grpc-health-check";
import { addServiceToGrpcServer } from "./grpc-adapter.js";
import { addReflectionService } from "./reflection.js";

export const HEALTH_SERVICE = "grpc.health.v1.Health";

export interface GrpcServerOptions {
  services: readonly { service: DescService; impl: ServiceImpl<DescService> }[];
  health: HealthImplementation;
  maxRequestBytes: number;
  defaultDeadlineMs: number;
}

export interface GrpcServer {
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting; resolves when in-flight calls have finished. */
  close(): Promise<void>;
  /** Cancels whatever is still running. */
  destroy(): void;
}

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxRequestBytes,
    "grpc.max_concurrent_streams": 100_000,
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
  });
  for (const { service, impl } of options.services) {
    addServiceToGrpcServer(server, service, impl, { defaultDeadlineMs: options.defaultDeadlineMs });
  }
  // Health.Watch streams never end by themselves and would hold a graceful shutdown for its whole
  // grace period: they are tracked here and ended with UNAVAILABLE, like WatchQueue, on close().
  const healthWatches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  options.health.addToServer({
    addService(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) {
      const watch = impl.watch as grpc.handleServerStreamingCall<unknown, unknown>;
      server.addService(definition, {
        ...impl,
        watch(call: grpc.ServerWritableStream<unknown, unknown>) {
          healthWatches.add(call);
          call.once("cancelled", () => healthWatches.delete(call));
          watch(call);
        },
      });
    },
  });
  const served = [...options.services.map((s) => s.service.typeName), HEALTH_SERVICE];
  addReflectionService(server, served);

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.bindAsync(
          `${host.includes(":") ? `[${host}]` : host}:${port}`,
          grpc.ServerCredentials.createInsecure(),
          (error, bound) => (error ? reject(error) : resolve(bound)),
        );
      });
    },
    close() {
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      for (const call of healthWatches)
        call.emit("error", {
          code: grpc.status.UNAVAILABLE,
          details: "the server is shutting down; reconnect to resume",
        });
      healthWatches.clear();
      return closed;
    },
    destroy() {
      server.forceShutdown();
    },
  };
}
