// A process that dies between a join's Redis JOIN and its PostgreSQL commit leaves a place with no
// row. Admission keeps the line's order for such a place only UNCOMMITTED_JOIN_HOLD_MS (its join may
// still be committing), then admits the users behind it; a row that lands later is admitted first.
// Real PostgreSQL and Redis: the dead process's half is the JOIN script run through a Redis client
// of its own (what a process does before its commit), and its commit is never made. Real time
// passes (the places' times are Redis's clock); only lower bounds on it are relied on.

import test from "ava";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createRedis } from "../../src/platform/redis/client.js";
import { newQueueToken } from "../../src/queue/queue-token.js";
import { createRedisQueue, UNCOMMITTED_JOIN_HOLD_MS } from "../../src/queue/redis-queue.js";
import { testAppFixture } from "../helpers/app.js";

const CAP = 3;
// More dead places than a step asks Redis for: admission has to look past all of them.
const DEAD_JOINS = 20;

// Only the test's own steps admit: the app's loop would first tick after an hour.
const fixture = testAppFixture("join_crash", {
  maxActiveUsers: CAP,
  admissionIntervalMs: 3_600_000,
  waitingTokenTtlSeconds: 600,
});

test("places whose process died before the commit hold the line only for the bound", async (t) => {
  t.timeout(60_000);
  const { app, concertId } = fixture;
  const deadProcess = createRedis({ url: app.config.redisUrl, name: "join-crash-dead-process" });
  await deadProcess.connect();
  t.teardown(() => deadProcess.disconnect());
  const deadQueue = createRedisQueue(deadProcess, app.config.redisKeyPrefix);
  const dead = await Promise.all(
    Array.from({ length: DEAD_JOINS }, (_, i) => deadQueue.join(concertId, `dead-${i}`, newQueueToken())),
  );
  const deadAtMs = Date.now();
  const queue = app.grpc(QueueService);
  const behind = [];
  for (const userId of ["a", "b", "c", "d", "e"]) behind.push(await queue.joinQueue({ concertId, userId }));
  const stateOf = async (token: string) => (await queue.getQueueStatus({ token })).status?.state;
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();

  await step();
  // Within the bound the dead places may still be joins committing: the line keeps its order.
  if (Date.now() - deadAtMs < UNCOMMITTED_JOIN_HOLD_MS / 2) t.is(await stateOf(behind[0]!.token), QueueState.WAITING);
  else t.log("the machine was too slow to check the line's hold before the bound");

  await new Promise((resolve) => setTimeout(resolve, deadAtMs + UNCOMMITTED_JOIN_HOLD_MS + 1000 - Date.now()));
  await step();
  const states = await Promise.all(behind.map((joined) => stateOf(joined.token)));
  t.deepEqual(states, [
    QueueState.ACTIVE,
    QueueState.ACTIVE,
    QueueState.ACTIVE,
    QueueState.WAITING,
    QueueState.WAITING,
  ]);

  // The first dead join's user tries again: the same place, now recorded, is first in line.
  const retried = await queue.joinQueue({ concertId, userId: "dead-0" });
  t.is(retried.token, dead[0]!.token);
  t.is(retried.status?.position, 1n);
  await queue.leaveQueue({ token: behind[0]!.token });
  await step();
  t.is(await stateOf(retried.token), QueueState.ACTIVE);
  t.is(await stateOf(behind[3]!.token), QueueState.WAITING);
});
