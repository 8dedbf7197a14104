// The PostgreSQL waiting room (Redis down) under READ COMMITTED races: a write that commits while
// a fallback admission waits for the row must be respected, never overwritten. Each race is made
// deterministic with a second connection that holds the row lock until admission is seen waiting
// (one such connection, so the tests run one after the other).

import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import type { MikroORM } from "@mikro-orm/postgresql";
import { closeORM, initORM, migrateUp } from "../../src/platform/db/orm.js";
import { createPgQueue, type PgQueue } from "../../src/queue/pg-queue.js";
import { createQueueDb } from "../../src/queue/queue-db.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { waitFor } from "../helpers/wait.js";

let database: TestDatabase;
let orm: MikroORM;
let queue: PgQueue;
let blocker: pg.Client;

test.before(async () => {
  database = await createTestDatabase("pgqueueraces");
  ({ orm } = await initORM({ databaseUrl: database.url, poolMax: 4 }));
  await migrateUp(orm);
  queue = createPgQueue(await createQueueDb(orm, () => {}), { activeTtlSeconds: 600, waitingTtlSeconds: 600 });
  blocker = new pg.Client({ connectionString: database.url });
  await blocker.connect();
});

test.after.always(async () => {
  await blocker?.end();
  if (orm) await closeORM(orm);
  if (database) await database.drop();
});

const stateOf = async (token: string) => (await blocker.query<{ state: string }>("select state from queue_entry where token = $1", [token])).rows[0]?.state;

/** Runs `admit` while `token`'s row is changed by `change` in an open transaction, committed once admission waits for it. */
async function admitDuring(concertId: string, token: string, change: string) {
  await blocker.query("begin");
  try {
    await blocker.query(change, [token]);
    const admitting = queue.admit(concertId, 1, 0);
    // Admission is blocked on the row lock that the open transaction holds.
    await waitFor(async () => {
      const { rows } = await blocker.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
      );
      return rows[0]!.n > 0;
    }, { message: () => "admission never waited for the row lock" });
    await blocker.query("commit");
    return await admitting;
  } catch (error) {
    await blocker.query("rollback").catch(() => undefined);
    throw error;
  }
}

test.serial("a user who leaves while admission waits for their row stays gone: the next in line is admitted instead", async (t) => {
  const concertId = randomUUID();
  const [first, second] = await queue.joinMany(concertId, [
    { userId: "leaver", freshToken: `leaver-${randomUUID()}` },
    { userId: "next", freshToken: `next-${randomUUID()}` },
  ]);
  // LeaveQueue's statement, committed while the admission step that picked "leaver" waits.
  const step = await admitDuring(concertId, first!.token, "update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'");
  t.deepEqual(step.admitted, [], "the leaver is not admitted");
  t.is(await stateOf(first!.token), "EXPIRED");
  t.is(await stateOf(second!.token), "WAITING");
  // The freed slot goes to the next in line on the following step.
  t.deepEqual((await queue.admit(concertId, 1, 0)).admitted, [second!.token]);
  t.is((await queue.status(first!.token, false))!.state, "EXPIRED");
});

test.serial("a waiting user who polls while admission waits for their row is admitted all the same", async (t) => {
  const concertId = randomUUID();
  const [polling] = await queue.joinMany(concertId, [{ userId: "poller", freshToken: `poller-${randomUUID()}` }]);
  const step = await admitDuring(concertId, polling!.token, "update queue_entry set last_seen_at = now() where token = $1 and state = 'WAITING'");
  t.deepEqual(step.admitted, [polling!.token]);
  t.is(await stateOf(polling!.token), "ACTIVE");
});
