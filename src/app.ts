// The single place where things are wired together: stores, domain services (app-services.ts),
// both transports (app-transports.ts), health, metrics, background work and the shutdown order.

import type { DescService } from "@bufbuild/protobuf";
import { createStoredAdmissionSettings } from "./admin/queue-settings-store.js";
import { servedServices } from "./app-services.js";
import { createTransports } from "./app-transports.js";
import { startHoldSweeper } from "./booking/hold-sweeper.js";
import type { Config } from "./config.js";
import { ENTITIES } from "./entities.js";
import { createSideConnection } from "./platform/db/side-connection.js";
import type { Clock } from "./platform/clock.js";
import { explainDatabaseConnectFailure } from "./platform/db/connect-failure.js";
import { closeORM, initORM, migrateUp, type ORM } from "./platform/db/orm.js";
import { startOutboxRelay } from "./platform/db/outbox-relay.js";
import { isCatalogEmpty, seedCatalog } from "./platform/db/seed.js";
import type { Logger } from "./platform/logger.js";
import type { PeriodicTask } from "./platform/periodic-task.js";
import { connectRedis, createRedisClient, describeRedis, type RedisClient } from "./platform/redis/client.js";
import { eventStreamKey } from "./platform/redis/event-stream.js";
import { explainListenFailure } from "./platform/rpc/listen-failure.js";
import { startHealthMonitor } from "./platform/rpc/health-monitor.js";
import type { BoundService } from "./platform/rpc/method-table.js";
import { createMetrics } from "./platform/rpc/metrics.js";
import { createWaitingRoom, type WaitingRoom } from "./queue/waiting-room.js";
import type { EstimateTrace } from "./queue/wait-estimate-trace.js";

export interface App {
  grpcPort: number;
  connectPort: number;
  orm: ORM;
  redis: RedisClient;
  waitingRoom: WaitingRoom;
  /** Graceful stop: refuse new calls, end streams, let in-flight calls finish, close stores. */
  stop(): Promise<void>;
}

/** A start-up failure a user can fix; main prints its message as one line without a stack. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** Listens, or fails with one line naming the setting to change. */
async function listenOn(variable: string, port: number, host: string, listen: () => Promise<number>): Promise<number> {
  try {
    return await listen();
  } catch (error) {
    throw new StartupError(explainListenFailure({ variable, port }, host, error), { cause: error });
  }
}

const DEMO_CATALOG = { concerts: 2, schedules: 3, seats: 1000 };
/** The relay runs at once after each local payment; polling only picks up rows other processes or a crash left. */
const OUTBOX_POLL_MS = 1000;
const OUTBOX_BATCH = 500;
/**
 * A payment's event reaches the stream at most this long after its commit (plus the batch's own
 * time): the payments committed meanwhile go in the same batch, one relay transaction for all of
 * them rather than one per payment.
 */
const OUTBOX_NUDGE_DELAY_MS = 20;
const HOLD_SWEEP_BATCH = 500;

async function openDatabase(config: Config, logger: Logger): Promise<ORM> {
  let orm: ORM | undefined;
  try {
    ({ orm } = await initORM({
      databaseUrl: config.databaseUrl,
      entities: ENTITIES,
      poolMax: config.databasePoolMax,
    }));
    await orm.em.getConnection().execute("select 1");
  } catch (error) {
    if (orm) await closeORM(orm).catch(() => undefined);
    throw new StartupError(explainDatabaseConnectFailure(error, config.databaseUrl), { cause: error });
  }
  try {
    const applied = await migrateUp(orm);
    if (applied.length > 0) logger.info({ applied }, "migrations applied");
    if (config.seedDemoData && (await isCatalogEmpty(orm.em.fork()))) {
      await seedCatalog(orm.em.fork(), { ...DEMO_CATALOG, onProgress: () => {} });
      const { concerts, schedules, seats } = DEMO_CATALOG;
      logger.info({ concerts, schedulesPerConcert: schedules, seatsPerSchedule: seats }, "demo catalog created");
    }
  } catch (error) {
    await closeORM(orm).catch(() => undefined);
    throw error;
  }
  return orm;
}

export interface AppOptions {
  /** The time holds and payments are taken at and sales open at (the prequeue); tests step it (the default is the system clock). */
  clock?: Clock;
  /** Records what every wait estimate is computed from (wait-estimate-trace.ts; the load test's --trace-estimates). */
  estimateTrace?: EstimateTrace;
}

export async function startApp(config: Config, logger: Logger, options: AppOptions = {}): Promise<App> {
  // Redis first: a start that fails on it has not migrated or seeded anything (nor logged it).
  const redis = createRedisClient({
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes,
    name: `concert-booking:${process.pid}`,
  });
  try {
    await connectRedis(redis, describeRedis(config.redisUrl, config.redisClusterNodes));
  } catch (error) {
    throw new StartupError((error as Error).message, { cause: error });
  }
  let orm: ORM;
  try {
    orm = await openDatabase(config, logger);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  redis.on("error", (error: Error) => logger.debug({ err: error.message }, "redis connection error"));

  // Assigned once the servers listen; the wallet handlers only nudge it after a commit.
  let outboxRelay: PeriodicTask | undefined;
  const holdPolicy = { holdSeconds: config.seatHoldSeconds, maxSeatsPerUser: config.maxSeatsPerUser };
  const metrics = createMetrics();
  let waitingRoom: WaitingRoom;
  try {
    waitingRoom = await createWaitingRoom({
      orm,
      redis,
      config,
      logger,
      registry: metrics.registry,
      admissionSettings: createStoredAdmissionSettings(orm, logger, redis, config.redisKeyPrefix),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.estimateTrace ? { estimateTrace: options.estimateTrace } : {}),
    });
  } catch (error) {
    await closeORM(orm).catch(() => undefined);
    redis.disconnect();
    throw error;
  }
  let services: BoundService<DescService>[];
  try {
    services = servedServices(config, {
      orm,
      logger,
      waitingRoom,
      holdPolicy,
      onPaymentCommitted: () => outboxRelay?.nudge(),
      clock: options.clock,
    });
  } catch (error) {
    await waitingRoom.stop();
    await closeORM(orm);
    redis.disconnect();
    throw error;
  }

  const shutdown = new AbortController();
  const { health, grpcServer, connectServer } = createTransports({
    config,
    logger,
    services,
    waitingRoom,
    redis,
    metrics,
    shutdownSignal: shutdown.signal,
  });
  let grpcPort: number;
  let connectPort: number;
  try {
    grpcPort = await listenOn("PORT", config.port, config.host, () => grpcServer.listen(config.port, config.host));
    connectPort = await listenOn("CONNECT_PORT", config.connectPort, config.host, () =>
      connectServer.listen(config.connectPort, config.host),
    );
  } catch (error) {
    // Nothing was served yet: release what start-up opened, so the process can end by itself.
    grpcServer.destroy();
    await connectServer.close();
    await waitingRoom.stop();
    await closeORM(orm);
    redis.disconnect();
    throw error;
  }
  // Health and the scrape-time gauges each on a connection of their own (not the pool, not each other's).
  const databasePing = createSideConnection(config.databaseUrl, 2000);
  const metricsConnection = createSideConnection(config.databaseUrl, 2000);
  const monitor = startHealthMonitor({
    health,
    serviceNames: services.map((s) => s.service.typeName),
    ping: async () => void (await databasePing.query("select 1")),
    intervalMs: 2000,
    logger,
  });
  // Holds are swept where they are made; events are relayed wherever they are written (payments, refunds).
  const servesBooking = config.services.includes("booking");
  if (servesBooking || config.services.includes("wallet")) {
    outboxRelay = startOutboxRelay({
      orm,
      redis,
      streamKey: eventStreamKey(config.redisKeyPrefix),
      maxLen: config.eventStreamMaxLen,
      batchSize: OUTBOX_BATCH,
      intervalMs: OUTBOX_POLL_MS,
      nudgeDelayMs: OUTBOX_NUDGE_DELAY_MS,
      logger,
      registry: metrics.registry,
      metricsConnection,
    });
  }
  const holdSweeper = servesBooking
    ? startHoldSweeper({
        orm,
        intervalMs: config.holdSweepIntervalMs,
        batchSize: HOLD_SWEEP_BATCH,
        logger,
        registry: metrics.registry,
      })
    : undefined;
  waitingRoom.start({ admit: config.services.includes("queue") });
  logger.info({ grpcPort, connectPort, services: config.services }, "listening");

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    monitor.stop();
    shutdown.abort();
    const drained = Promise.all([grpcServer.close(), connectServer.close()]);
    const graceOver = Symbol("grace");
    let graceTimer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      drained,
      new Promise((r) => (graceTimer = setTimeout(r, config.shutdownGraceMs, graceOver))),
    ]);
    clearTimeout(graceTimer);
    if (outcome === graceOver) {
      logger.warn({ graceMs: config.shutdownGraceMs }, "shutdown grace period over; cancelling remaining calls");
      grpcServer.destroy();
      connectServer.destroy();
    }
    // After the calls (a payment may still nudge the relay), before the stores close.
    await Promise.all([outboxRelay?.stop(), holdSweeper?.stop(), waitingRoom.stop()]);
    await Promise.all([databasePing.close(), metricsConnection.close()]);
    await closeORM(orm);
    await redis.quit().catch(() => redis.disconnect());
    logger.info("stopped");
  };
  return {
    grpcPort,
    connectPort,
    orm,
    redis,
    waitingRoom,
    stop: () => (stopping ??= stop()),
  };
}
