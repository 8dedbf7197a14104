import test from "ava";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createRedis } from "../../src/platform/redis/client.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { testAppFixture } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const CAP = 150;
const USERS = 2000;

// Slots free after 1 s, so 2,000 users pass in about 14 waves of at most 150.
const fixture = testAppFixture(
  "queue_admission",
  { maxActiveUsers: CAP, admissionIntervalMs: 100, activeTokenTtlSeconds: 1, waitingTokenTtlSeconds: 600 },
  4,
);

test("2,000 concurrent joins are admitted in FIFO batches, never above the cap", async (t) => {
  t.timeout(90_000);
  const { app, concertId } = fixture;
  const keys = createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
  // A patient connection: the machine may be busy, and a missed observation is only a retry.
  const observer = createRedis({ url: app.config.redisUrl, name: "admission-observer", commandTimeoutMs: 10_000 });
  await observer.connect();

  // Admission time of each token, taken from its active-set score (all of one batch share it).
  const admittedAt = new Map<string, number>();
  let maxActive = 0;
  let observing = true;
  const observed = (async () => {
    while (observing) {
      const flat = await observer.zrange(keys.active, "0", "-1", "WITHSCORES");
      maxActive = Math.max(maxActive, flat.length / 2);
      for (let i = 0; i < flat.length; i += 2) {
        const previous = admittedAt.get(flat[i]!);
        if (previous !== undefined && previous !== Number(flat[i + 1])) t.fail(`token ${flat[i]} admitted twice`);
        admittedAt.set(flat[i]!, Number(flat[i + 1]));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const clients = Array.from({ length: 4 }, () => app.grpc(QueueService));
  const joins = await Promise.all(
    Array.from({ length: USERS }, (_, i) => clients[i % 4]!.joinQueue({ concertId, userId: `crowd-${i}` })),
  );
  t.is(new Set(joins.map((j) => j.token)).size, USERS);

  const seqRows = await app.app.orm.em
    .getConnection()
    .execute<{ token: string; seq: string }[]>("select token, seq::text as seq from queue_entry where concert_id = ?", [
      concertId,
    ]);
  t.is(seqRows.length, USERS, "every acknowledged join is in PostgreSQL");
  const seqOf = new Map(seqRows.map((r) => [r.token, BigInt(r.seq)]));
  t.is(new Set(seqRows.map((r) => r.seq)).size, USERS, "sequence numbers are unique");

  await waitFor(() => admittedAt.size === USERS, {
    timeoutMs: 60_000,
    message: () => `admitted ${admittedAt.size} of ${USERS}`,
  });
  observing = false;
  await observed;
  observer.disconnect();

  t.true(maxActive <= CAP, `at most ${CAP} active at once, saw ${maxActive}`);
  const batches = new Map<number, bigint[]>();
  for (const [token, at] of admittedAt) batches.set(at, [...(batches.get(at) ?? []), seqOf.get(token)!]);
  const ordered = [...batches.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, seqs]) => seqs.sort((a, b) => (a < b ? -1 : 1)));
  t.true(ordered.length >= Math.ceil(USERS / CAP), `${ordered.length} batches`);
  for (let i = 1; i < ordered.length; i++) {
    t.true(ordered[i]![0]! > ordered[i - 1]!.at(-1)!, "every batch comes after the previous one in line");
  }
  for (const seqs of ordered) t.true(seqs.length <= CAP);

  const last = joins.at(-1)!;
  await waitFor(
    async () => (await clients[0]!.getQueueStatus({ token: last.token })).status!.state === QueueState.EXPIRED,
    { timeoutMs: 10_000 },
  );
  let recorded = 0;
  await waitFor(
    async () => {
      const [row] = await app.app.orm.em
        .getConnection()
        .execute<{ n: string }[]>(
          "select count(*) as n from queue_entry where concert_id = ? and admitted_at is not null",
          [concertId],
        );
      recorded = Number(row!.n);
      return recorded === USERS;
    },
    { timeoutMs: 20_000, message: () => `admissions recorded in PostgreSQL: ${recorded} of ${USERS}` },
  );
});
