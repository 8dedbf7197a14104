// The admission statement's cost follows the head it admits, not the line behind it. In a burst
// the planner's statistics are from before it (read while nobody of the concert waited, and
// autovacuum has not run since), and the statement used to join the head with every waiting row of the concert in
// a nested loop: 10,000 waiting × 2,000 admitted, 72 million rows touched here (2 s for a step of
// 1,687 in the 10,000-user burst).

import { randomUUID } from "node:crypto";
import test from "ava";
import { ADMIT } from "../../src/queue/pg-admission.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";

const WAITING = 10_000;
const HEAD = 2_000;
let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("admission_plan", { poolMax: 2 });
  // The statistics stay those of the empty table, as during a burst before autovacuum has run.
  await fixture.db.query("alter table queue_entry set (autovacuum_enabled = off)");
});

test.after.always(async () => {
  await fixture?.stop();
});

interface PlanNode {
  "Actual Rows": number;
  "Actual Loops": number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Join Filter"?: number;
  Plans?: PlanNode[];
}

/** Rows every node of the plan produced or threw away, over all its loops. */
function rowsTouched(node: PlanNode): number {
  const own =
    (node["Actual Rows"] + (node["Rows Removed by Filter"] ?? 0) + (node["Rows Removed by Join Filter"] ?? 0)) *
    node["Actual Loops"];
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsTouched(child), 0);
}

test("a step admitting 2,000 of 10,000 waiting touches rows in proportion to the 2,000", async (t) => {
  const concertId = randomUUID();
  const tokens = Array.from({ length: WAITING }, (_, i) => `plan-${i}`);
  // Statistics read while nobody of this concert was waiting yet (here: before its line formed,
  // its rows ended), then the line as a burst leaves it.
  await fixture.db.query(
    `insert into queue_entry (token, concert_id, user_id, seq, state)
     select token, $1, 'user-' || ord, ord, 'EXPIRED' from unnest($2::text[]) with ordinality as i(token, ord)`,
    [concertId, tokens],
  );
  await fixture.db.query("analyze queue_entry");
  await fixture.db.query("update queue_entry set state = 'WAITING' where concert_id = $1", [concertId]);
  const head = tokens.slice(0, HEAD);
  const params = [concertId, 600, HEAD, head, head.map(() => true)];
  const plan = await fixture.db
    .transaction(async (query) => {
      const [row] = await query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
        `explain (analyze, format json) ${ADMIT}`,
        params,
      );
      throw Object.assign(new Error("rolled back"), { plan: row!["QUERY PLAN"][0].Plan });
    })
    .catch((error: { plan?: PlanNode }) => error.plan);
  t.truthy(plan);
  // Tens of rows per admitted user (head, key lookups, the update); the old plan: 72 million.
  t.log(`rows touched: ${rowsTouched(plan!)}`);
  t.true(rowsTouched(plan!) < 100 * HEAD, `rows touched: ${rowsTouched(plan!)}`);
  // And it admits exactly the head.
  const admitted = await fixture.db.query<{ token: string }>(ADMIT, params);
  t.deepEqual(admitted.map((row) => row.token).toSorted(), head.toSorted());
  // A token Redis holds whose row has not landed yet (a join committing) stops the step there; one
  // Redis does not hold (passed over) does not.
  const admitWith = async (ghostHeld: boolean) => {
    const next = tokens.slice(HEAD + (ghostHeld ? 0 : 500), HEAD + (ghostHeld ? 1000 : 1500));
    const line = [...next.slice(0, 250), `ghost-${ghostHeld}`, ...next.slice(250)];
    const held = line.map((token) => token !== "ghost-false");
    const rows = await fixture.db.query<{ token: string }>(ADMIT, [concertId, 600, line.length, line, held]);
    return { next, admitted: rows.map((row) => row.token).toSorted() };
  };
  const stopped = await admitWith(true);
  t.deepEqual(stopped.admitted, stopped.next.slice(0, 250).toSorted());
  const passed = await admitWith(false);
  t.deepEqual(passed.admitted, passed.next.toSorted());
});
