// Both transports over the bound services: each method wrapped with the guards its queue-token
// requirement declares, the in-flight and stream bounds, metrics and deadlines, then served by
// grpc-js (with health) and by connect-node (with GET /metrics).

import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { HealthImplementation } from "grpc-health-check";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import type { Config } from "./config.js";
import type { Logger } from "./platform/logger.js";
import type { RedisClient } from "./platform/redis/client.js";
import { createConnectServer, type ConnectServer } from "./platform/rpc/connect-server.js";
import { createGrpcServer, type GrpcServer } from "./platform/rpc/grpc-server.js";
import { createInFlightLimit } from "./platform/rpc/in-flight-limit.js";
import type { BoundService, TokenRequirement } from "./platform/rpc/method-table.js";
import type { RpcMetrics } from "./platform/rpc/metrics.js";
import { wrapService, type CallGuard } from "./platform/rpc/service-wrapper.js";
import { QUEUE_TOKEN_HEADER } from "./queue/admission-context.js";
import { createQueueKeys } from "./queue/queue-keys.js";
import { createQueueTokenGuard } from "./queue/queue-token-guard.js";
import { createWaitingLineGuard } from "./queue/waiting-line-limit.js";
import type { WaitingRoom } from "./queue/waiting-room.js";

export interface TransportDeps {
  config: Config;
  logger: Logger;
  services: readonly BoundService<DescService>[];
  waitingRoom: WaitingRoom;
  redis: RedisClient;
  metrics: RpcMetrics;
  /** Aborted when shutdown begins: open streams end. */
  shutdownSignal: AbortSignal;
}

export interface Transports {
  health: HealthImplementation;
  grpcServer: GrpcServer;
  connectServer: ConnectServer;
}

/** Both servers, not yet listening: app.ts listens on them and owns their shutdown. */
export function createTransports(deps: TransportDeps): Transports {
  const { config, logger, services, waitingRoom, redis, metrics, shutdownSignal } = deps;
  // The guards a method runs, by the queue-token requirement its handler table declares.
  const tokenGuards: Record<TokenRequirement, readonly CallGuard[]> = {
    none: [],
    active: [createQueueTokenGuard(waitingRoom)],
    "active-or-used": [createQueueTokenGuard(waitingRoom, { replayable: true })],
  };
  // MAX_WAITING_USERS, checked in front of JoinQueue before the join itself.
  const joinGuards: readonly CallGuard[] = [
    createWaitingLineGuard({
      redis,
      keys: createQueueKeys(config.redisKeyPrefix),
      maxWaitingUsers: config.maxWaitingUsers,
    }),
  ];
  // One in-flight bound per service, shared by both ports.
  const inFlight = new Map(
    services.map(({ service }) => [service.typeName, createInFlightLimit(service.name, config.maxInFlightCalls)]),
  );

  const onBug = (error: unknown, method: { name: string }) =>
    logger.error({ err: error, method: method.name }, "internal error");
  const served = (transport: "grpc" | "connect") => {
    const streams = { open: 0 };
    return services.map(({ service, impl, tokenOf }) => ({
      service,
      impl: wrapService(
        service,
        impl,
        {
          transport,
          guardsOf: (method) =>
            method === QueueService.method.joinQueue
              ? [...tokenGuards[tokenOf(method)], ...joinGuards]
              : tokenGuards[tokenOf(method)],
          maxOpenStreams: config.maxOpenStreams,
          inFlight: inFlight.get(service.typeName),
          metrics,
          shutdownSignal,
          defaultDeadlineMs: config.defaultDeadlineMs,
          onBug,
        },
        streams,
      ) as ServiceImpl<DescService>,
    }));
  };

  const health = new HealthImplementation({ "": "NOT_SERVING" });
  const grpcServer = createGrpcServer({
    services: served("grpc"),
    health,
    maxRequestBytes: config.maxRequestBytes,
    defaultDeadlineMs: config.defaultDeadlineMs,
  });
  const connectServer = createConnectServer({
    services: served("connect"),
    readMaxBytes: config.maxRequestBytes,
    corsOrigins: config.corsOrigins,
    corsHeaders: [QUEUE_TOKEN_HEADER],
    onCallFailure: (error, rpc) => logger.warn({ err: error, rpc }, "could not answer a call on the Connect port"),
    requestTimeoutMs: config.connectRequestTimeoutMs,
    resetBurst: config.connectResetBurst,
    resetRatePerSecond: config.connectResetRate,
    onConnectionClosed: (reason) => logger.warn({ reason }, "closed a Connect-port connection"),
    extraRoutes(req, res) {
      if (req.method !== "GET" || req.url !== "/metrics") return false;
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(text);
        },
        (error: unknown) => {
          logger.warn({ err: error }, "metrics collection failed");
          res.writeHead(500, { "content-type": "text/plain" });
          res.end("metrics collection failed\n");
        },
      );
      return true;
    },
  });
  return { health, grpcServer, connectServer };
}
