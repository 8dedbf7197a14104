// The waiting room's record under READ COMMITTED races: a write that commits while an admission
// step (or a join made on PostgreSQL while Redis failed) waits for the row must be respected, never
// overwritten. Each race is made deterministic with a second connection that holds the row lock
// until the operation is seen waiting (one such connection, so the tests run one after the other).

import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { admissionRule } from "../../src/queue/admission-rule.js";
import { createJoinCommitter, joinRowOf } from "../../src/queue/join-committer.js";
import { admit } from "../../src/queue/pg-admission.js";
import { createPgQueue, type PgQueue } from "../../src/queue/pg-queue.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";
import { waitFor } from "../helpers/wait.js";

const { queue: redisQueue } = redisQueueFixture("pg-queue-races");

let fixture: QueueDbFixture;
let queue: PgQueue;
let blocker: pg.Client;
const CAP_ONE = admissionRule({ maxActiveUsers: 1, activeTtlSeconds: 600, waitingTtlSeconds: 600, intervalMs: 1000 });

test.before(async () => {
  fixture = await openQueueDb("pgqueueraces");
  queue = createPgQueue(fixture.db);
  blocker = new pg.Client({ connectionString: fixture.url });
  await blocker.connect();
});

test.after.always(async () => {
  await blocker?.end();
  await fixture?.stop();
});

const stateOf = async (token: string) =>
  (await blocker.query<{ state: string }>("select state from queue_entry where token = $1", [token])).rows[0]?.state;

/**
 * Runs `op` while an open transaction holds what `change` (run with `params`) wrote, and commits
 * that transaction once `op` is seen waiting for it.
 */
async function whileLocked<T>(change: string, params: unknown[], op: () => Promise<T>): Promise<T> {
  await blocker.query("begin");
  try {
    await blocker.query(change, params);
    const running = op();
    await waitFor(
      async () => {
        const { rows } = await blocker.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        );
        return rows[0]!.n > 0;
      },
      { message: () => "the operation never waited for the open transaction" },
    );
    await blocker.query("commit");
    return await running;
  } catch (error) {
    await blocker.query("rollback").catch(() => undefined);
    throw error;
  }
}

/** One admission step (cap 1) while `token`'s row is changed by `change`, committed once admission waits for it. */
const admitDuring = (concertId: string, token: string, change: string) =>
  whileLocked(change, [token], () => admit(fixture.db, concertId, CAP_ONE, redisQueue));

/** Users joined through Redis, their rows written as JoinQueue writes them; their statuses. */
async function joinThroughRedis(concertId: string, users: string[]) {
  const committer = createJoinCommitter({ db: fixture.db, maxRows: 1, maxDelayMs: 0 });
  const joined = [];
  for (const userId of users) {
    const reply = await redisQueue.join(concertId, userId, randomUUID());
    await committer.commit(joinRowOf(concertId, userId, reply));
    joined.push(reply);
  }
  return joined;
}

test.serial(
  "a user who leaves while admission waits for their row stays gone: the next in line is admitted instead",
  async (t) => {
    const concertId = randomUUID();
    const [first, second] = await joinThroughRedis(concertId, ["leaver", "next"]);
    // LeaveQueue's statement, committed while the admission step that picked "leaver" waits.
    const step = await admitDuring(
      concertId,
      first!.token,
      "update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'",
    );
    t.deepEqual(step.admitted, [], "the leaver is not admitted");
    t.is(await stateOf(first!.token), "EXPIRED");
    t.is(await stateOf(second!.token), "WAITING");
    // The freed slot goes to the next in line on the following step.
    await redisQueue.leave(first!.token);
    t.deepEqual((await admit(fixture.db, concertId, CAP_ONE, redisQueue)).admitted, [second!.token]);
    t.is((await queue.status(first!.token))!.state, "EXPIRED");
  },
);

test.serial("a write that leaves a waiting row waiting, while admission waits for it, keeps no one out", async (t) => {
  const concertId = randomUUID();
  const [waiting] = await joinThroughRedis(concertId, ["waiting"]);
  // Admission rereads the row once the lock is free, and it is still WAITING: admitted.
  const step = await admitDuring(
    concertId,
    waiting!.token,
    "update queue_entry set seq = seq where token = $1 and state = 'WAITING'",
  );
  t.deepEqual(step.admitted, [waiting!.token]);
  t.is(await stateOf(waiting!.token), "ACTIVE");
});

test.serial(
  "a join on PostgreSQL that meets the live row another process's group commit just wrote answers with that row's token",
  async (t) => {
    const concertId = randomUUID();
    const theirs = `redis-${randomUUID()}`;
    // The group commit of a process still on Redis (it does not take the concert lock).
    const joined = await whileLocked(
      "insert into queue_entry (token, concert_id, user_id, seq, state) values ($1, $2, 'twice', 1, 'WAITING')",
      [theirs, concertId],
      () =>
        queue.joinMany([
          { concertId, userId: "twice", freshToken: `mine-${randomUUID()}` },
          { concertId, userId: "other", freshToken: `other-${randomUUID()}` },
        ]),
    );
    t.is(joined[0]!.token, theirs);
    t.is(joined[0]!.state, "WAITING");
    t.is(joined[1]!.userId, "other");
    t.is(joined[1]!.position, 2);
    const { rows } = await blocker.query<{ n: number }>(
      "select count(*)::int as n from queue_entry where concert_id = $1 and user_id = 'twice'",
      [concertId],
    );
    t.is(rows[0]!.n, 1);
  },
);
