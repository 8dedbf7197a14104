// The existence check in front of JoinQueue (join-checks.ts): a crowd's first joins of a concert
// share one lookup, and a concert that was not found is looked up again on the next join.

import test from "ava";
import { randomUUID } from "node:crypto";
import { fixedAdmissionSettings } from "../../src/queue/admission-settings.js";
import { admissionRule } from "../../src/queue/admission-rule.js";
import { createJoinChecks } from "../../src/queue/join-checks.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";

let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("join-checks");
});

test.after.always(async () => {
  await fixture?.stop();
});

const settings = fixedAdmissionSettings(
  admissionRule({
    maxActiveUsers: 10,
    activeTtlSeconds: 60,
    waitingTtlSeconds: 60,
    intervalMs: 100,
    expectedSessionSeconds: 10,
  }),
);

/** The checks on the fixture's PostgreSQL, counting the statements they send. */
function countedChecks() {
  const sent = { statements: 0 };
  const checks = createJoinChecks({
    query: (sql, params) => {
      sent.statements++;
      return fixture.db.query(sql, params);
    },
    settings,
  });
  return { checks, sent };
}

async function insertConcert(id: string): Promise<void> {
  await fixture.db.query(`insert into concert (id, title, artist, venue) values ($1, 'Crowd', 'Band', 'Hall')`, [id]);
}

test("200 concurrent joins of a concert not seen before share one lookup", async (t) => {
  const concertId = randomUUID();
  await insertConcert(concertId);
  const { checks, sent } = countedChecks();
  await Promise.all(Array.from({ length: 200 }, () => checks.check(concertId)));
  await checks.check(concertId);
  t.is(sent.statements, 1);
});

test("a concert not found is looked up again, and found once it exists", async (t) => {
  const concertId = randomUUID();
  const { checks, sent } = countedChecks();
  const refusals = await Promise.allSettled(Array.from({ length: 20 }, () => checks.check(concertId)));
  t.true(
    refusals.every((r) => r.status === "rejected" && (r.reason as { reason?: string }).reason === "CONCERT_NOT_FOUND"),
  );
  t.is(sent.statements, 1);
  await insertConcert(concertId);
  await t.notThrowsAsync(checks.check(concertId));
  t.is(sent.statements, 2);
});
