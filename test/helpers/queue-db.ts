// The waiting room's PostgreSQL side without a server, for tests of the queue stores: a private
// migrated database, its ORM and the queue's statement runner, and a stop that removes them.

import type { MikroORM } from "@mikro-orm/postgresql";
import { Registry } from "prom-client";
import { closeORM, initORM } from "../../src/platform/db/orm.js";
import { createLogger } from "../../src/platform/logger.js";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createQueueDb, type QueueDb } from "../../src/queue/queue-db.js";
import { QueueEntry } from "../../src/queue/queue-entry.entity.js";
import { createQueueMode } from "../../src/queue/queue-mode.js";
import { createTestDatabase } from "./database.js";

export interface QueueDbFixture {
  orm: MikroORM;
  db: QueueDb;
  url: string;
  stop(): Promise<void>;
}

export async function openQueueDb(label: string, options: { poolMax?: number } = {}): Promise<QueueDbFixture> {
  const database = await createTestDatabase(label, { migrated: true });
  let orm: MikroORM | undefined;
  try {
    ({ orm } = await initORM({ databaseUrl: database.url, entities: [QueueEntry], poolMax: options.poolMax ?? 4 }));
    const db = await createQueueDb(orm, () => {});
    const opened = orm;
    return {
      orm: opened,
      db,
      url: database.url,
      async stop() {
        await closeORM(opened);
        await database.drop();
      },
    };
  } catch (error) {
    if (orm) await closeORM(orm);
    await database.drop();
    throw error;
  }
}

/** A rule for tests that step admission by hand: ten slots, nothing runs out during a test, no prior. */
export const HAND_STEPPED_RULE: AdmissionRule = {
  cap: 10,
  activeTtlMs: 600_000,
  waitingTtlMs: 600_000,
  intervalMs: 1000,
  stepLimit: 100,
  expectedSessionMs: 0,
};

/** One process's store mode over a test's Redis and database, silent, filling Redis at once when behind. */
export function quietQueueMode(deps: Pick<Parameters<typeof createQueueMode>[0], "redis" | "redisQueue" | "db">) {
  return createQueueMode({ ...deps, logger: createLogger("silent"), registry: new Registry(), rebuildDelayMs: 0 });
}
