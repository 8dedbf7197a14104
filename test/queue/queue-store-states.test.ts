// The waiting room's store table (queue-store-states.ts) read as a specification: every state is
// reachable from start (postgres: Redis not checked yet) and has a way back to Redis, no event is
// ambiguous, only Redis silent too long counts a timeout as an outage, and the diagram in
// docs/architecture.md is the table's own.

import { readFile } from "node:fs/promises";
import test from "ava";
import { mermaidDiagram, nextState, TRANSITIONS, type StoreState } from "../../src/queue/queue-store-states.js";

const STATES = [...new Set(TRANSITIONS.flatMap((t) => [t.from, t.to]))];

function reachable(from: StoreState): Set<StoreState> {
  const seen = new Set<StoreState>([from]);
  for (let grew = true; grew;) {
    grew = false;
    for (const t of TRANSITIONS)
      if (seen.has(t.from) && !seen.has(t.to)) {
        seen.add(t.to);
        grew = true;
      }
  }
  return seen;
}

test("every state is reachable from start, and every state can get back to Redis", (t) => {
  t.deepEqual([...reachable("postgres")].sort(), [...STATES].sort());
  for (const state of STATES) t.true(reachable(state).has("redis"), `${state} never gets back to Redis`);
});

test("in each state an event has at most one unguarded transition, and guards decide", (t) => {
  for (const state of STATES) {
    for (const t1 of TRANSITIONS.filter((t) => t.from === state)) {
      const rivals = TRANSITIONS.filter((t2) => t2 !== t1 && t2.on === t1.on && t2.from === state);
      t.deepEqual(rivals, [], `${state} on ${t1.on}`);
    }
  }
  t.is(
    nextState("redis", "redisTimedOut", () => false),
    undefined,
    "a short run of timeouts changes nothing",
  );
  t.is(nextState("redis", "redisTimedOut", () => true)?.to, "postgres");
  t.is(
    nextState("postgres", "redisFailed", () => true),
    undefined,
    "a second failure changes nothing",
  );
});

test("docs/architecture.md draws this table", async (t) => {
  const doc = await readFile(new URL("../../docs/architecture.md", import.meta.url), "utf8");
  t.true(doc.includes(mermaidDiagram()), "regenerate the diagram with mermaidDiagram()");
});
