// Starts the real server (both ports, real PostgreSQL and Redis) for one test file: its own
// database and its own Redis key prefix, so test files run in parallel without sharing state.

import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { startApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { createLogger } from "../../src/platform/logger.js";
import { createGrpcClient, type GrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { removeRedisKeys } from "../../src/loadtest/redis-cleanup.js";
import { createTestDatabase } from "./database.js";
import { startPrivateRedis, testKeyPrefix, type PrivateRedis } from "./redis-server.js";

export interface TestApp {
  app: App;
  config: Config;
  grpcAddress: string;
  connectUrl: string;
  /** A grpc-js client on the gRPC port; closed by stop(). */
  grpc<S extends DescService>(service: S): GrpcClient<S>;
  /** A connect-node client on the Connect port (Connect protocol over HTTP/2, or gRPC-Web). */
  connect<S extends DescService>(service: S, protocol?: "connect" | "grpc-web"): Client<S>;
  stop(): Promise<void>;
}

export async function startTestApp(
  label: string,
  overrides: Partial<Config> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const database = await createTestDatabase(label, { migrated: true });
  const config: Config = {
    ...loadConfig({}),
    databaseUrl: database.url,
    databasePoolMax: 8,
    host: "127.0.0.1",
    port: 0,
    connectPort: 0,
    redisKeyPrefix: testKeyPrefix(label),
    seedDemoData: false,
    logLevel: (process.env.TEST_LOG_LEVEL as Config["logLevel"] | undefined) ?? "silent",
    shutdownGraceMs: 5000,
    ...overrides,
  };
  let app: App;
  try {
    app = await startApp(config, createLogger(config.logLevel, { test: label }), options);
  } catch (error) {
    await database.drop();
    throw error;
  }
  const grpcAddress = `127.0.0.1:${app.grpcPort}`;
  const connectUrl = `http://127.0.0.1:${app.connectPort}`;
  const clients: { close(): void }[] = [];
  return {
    app,
    config,
    grpcAddress,
    connectUrl,
    grpc(service) {
      const client = createGrpcClient(service, grpcAddress);
      clients.push(client);
      return client;
    },
    connect(service, protocol = "connect") {
      const transport =
        protocol === "connect"
          ? createConnectTransport({ baseUrl: connectUrl, httpVersion: "2" })
          : createGrpcWebTransport({ baseUrl: connectUrl, httpVersion: "1.1" });
      return createClient(service, transport);
    },
    async stop() {
      for (const client of clients) client.close();
      await app.stop();
      await database.drop();
      // The app's keys (its queue, event stream, markers) go too; a Redis the test stopped has none to remove.
      await removeRedisKeys(config.redisUrl, config.redisKeyPrefix, config.redisClusterNodes).catch(() => undefined);
    },
  };
}

/** Seeds a small catalog into the app's database and returns nothing; ids are deterministic. */
export async function seedSmallCatalog(testApp: TestApp, seats = 20): Promise<void> {
  await seedCatalog(testApp.app.orm.em.fork(), { concerts: 1, schedules: 2, seats });
}

/**
 * One test app for a test file's tests, with a small catalog of `seats` seats per schedule:
 * started before them, stopped after them. Call it at the top of a test file; `app` and
 * `concertId` (the catalog's concert) are there once the tests run.
 */
export function testAppFixture(label: string, overrides: Partial<Config> = {}, seats = 20) {
  let app: TestApp | undefined;
  let concertId: string | undefined;
  test.before(async () => {
    app = await startTestApp(label, overrides);
    await seedSmallCatalog(app, seats);
    concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  });
  test.after.always(async () => {
    await app?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error(`the ${label} test app has not started`);
    return value;
  };
  return {
    get app() {
      return started(app);
    },
    get concertId() {
      return started(concertId);
    },
  };
}

/**
 * A test app on a redis-server of its own (which the test may stop and start), with a small
 * catalog. `stop()` ends both, whatever state the Redis is in.
 */
export async function startTestAppOnPrivateRedis(
  label: string,
  overrides: Partial<Config> = {},
  seats = 4,
  options: AppOptions = {},
): Promise<{ app: TestApp; redis: PrivateRedis; stop(): Promise<void> }> {
  const redis = await startPrivateRedis();
  let app: TestApp | undefined;
  try {
    app = await startTestApp(label, { redisUrl: redis.url, ...overrides }, options);
    await seedSmallCatalog(app, seats);
  } catch (error) {
    await app?.stop();
    await redis.kill().catch(() => undefined);
    throw error;
  }
  const started = app;
  return {
    app: started,
    redis,
    async stop() {
      await started.stop();
      await redis.kill().catch(() => undefined);
    },
  };
}
