// The real application for the database-backed measurement: its own PostgreSQL database
// (dropped on stop), its own Redis key prefix (removed on stop), a seeded catalog of 20 concerts.

import { startApp } from "../../src/app.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { createLogger } from "../../src/platform/logger.js";
import { removeRedisKeys } from "../../src/loadtest/redis-cleanup.js";
import { createTestDatabase } from "../../test/helpers/database.js";
import { benchConfig } from "../bench-config.js";

export const BENCH_CONCERTS = 20;

export async function startBenchApp(): Promise<{ ports: Record<string, number>; stop(): Promise<void> }> {
  const database = await createTestDatabase("bench");
  const config = benchConfig(database.url, "bench");
  try {
    const app = await startApp(config, createLogger(config.logLevel, { bench: "app" }));
    await seedCatalog(app.orm.em.fork(), { concerts: BENCH_CONCERTS, schedules: 1, seats: 50 });
    return {
      ports: { grpc: app.grpcPort, connect: app.connectPort },
      async stop() {
        await app.stop();
        await database.drop();
        await removeRedisKeys(config.redisUrl, config.redisKeyPrefix);
      },
    };
  } catch (error) {
    await database.drop();
    await removeRedisKeys(config.redisUrl, config.redisKeyPrefix).catch(() => 0);
    throw error;
  }
}
