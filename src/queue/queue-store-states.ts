// Which store serves the waiting room in this process, as one table: every state, every event,
// and for each transition its cause. queue-mode.ts fires the events and runs the effects of
// entering a state; docs/architecture.md ("Waiting room states") draws this table. An event with
// no row for the current state changes nothing (a second failure while already cut off, say), and
// after shutdown no event changes anything.

export type StoreState =
  /** At start, until Redis is known to hold the record (or the store row says PostgreSQL serves). */
  | "starting"
  /** Redis serves; PostgreSQL admits and records. */
  | "redis"
  /** PostgreSQL serves because Redis failed this process; it keeps the store row on PostgreSQL. */
  | "cut-off"
  /** PostgreSQL serves because the store row says so; Redis answers this process. */
  | "following"
  /** PostgreSQL serves while this process fills Redis from it under the store row's lock. */
  | "restoring";

export type StoreEvent =
  | "redisFailed"
  | "redisTimedOut"
  | "redisLost"
  | "postgresServes"
  | "reachable"
  | "restoreStarted"
  | "restored"
  | "redisServes"
  | "failed";

/**
 * The one guard, evaluated by queue-mode.ts when the event fires: commands have kept timing out
 * for 5 s (at least 3 of them) with not a single answer from Redis meanwhile, not even to the PING
 * each timeout sends. A slow command, or a starved event loop that fires timers before it reads
 * the replies waiting, is not an outage.
 */
export type StoreGuard = "silentTooLong";

export interface Transition {
  from: readonly StoreState[];
  on: StoreEvent;
  guard?: StoreGuard;
  to: StoreState;
  cause: string;
}

const row = (from: StoreState[], on: StoreEvent, to: StoreState, cause: string, guard?: StoreGuard): Transition => ({
  from,
  on,
  to,
  cause,
  ...(guard && { guard }),
});

export const TRANSITIONS: readonly Transition[] = [
  row(["starting"], "postgresServes", "following", "the store row says PostgreSQL: a process is cut off from Redis"),
  row(["starting", "restoring"], "restored", "redis", "Redis holds the record (filled from it if its marker was gone)"),
  row(["redis"], "redisFailed", "cut-off", "a Redis call failed: connection refused or lost, or Redis not serving"),
  row(
    ["redis"],
    "redisTimedOut",
    "cut-off",
    "Redis silent for 5 s: calls and PINGs timed out, none answered",
    "silentTooLong",
  ),
  row(["redis"], "redisLost", "cut-off", "the restored-at marker is gone: Redis restarted empty"),
  row(["redis"], "postgresServes", "following", "the store row says PostgreSQL: another process is cut off"),
  row(["cut-off"], "reachable", "following", "Redis answers PING again"),
  row(["following", "restoring"], "redisFailed", "cut-off", "PING or the restore failed on Redis"),
  row(["following"], "restoreStarted", "restoring", "Redis answers and no other process is cut off"),
  row(["following"], "redisServes", "redis", "the store row says Redis: another process restored it"),
  row(["restoring"], "failed", "following", "another process is cut off, or an error: the next probe retries"),
];

/** The transition `event` takes in `state`, or undefined when the table has none (or its guard fails). */
export function nextState(
  state: StoreState,
  event: StoreEvent,
  guard: (name: StoreGuard) => boolean,
): Transition | undefined {
  return TRANSITIONS.find((t) => t.on === event && t.from.includes(state) && (!t.guard || guard(t.guard)));
}

/** The table as a mermaid state diagram, for docs/architecture.md. */
export function mermaidDiagram(): string {
  const lines = ["stateDiagram-v2", "  [*] --> starting"];
  for (const t of TRANSITIONS) {
    for (const from of t.from) lines.push(`  ${from} --> ${t.to}: ${t.on}${t.guard ? ` [${t.guard}]` : ""}`);
  }
  return lines.join("\n").replaceAll("cut-off", "cut_off");
}
