// Which store serves the waiting room in this process, as one table: every state, every event,
// and for each transition its cause. queue-mode.ts fires the events and runs the effects of
// entering a state; docs/architecture.md ("Waiting room states") draws this table. An event with
// no row for the current state changes nothing (a second failure while on PostgreSQL, say), and
// after shutdown no event changes anything.

export type StoreState =
  /** At start, until Redis is known to hold the record (or the store row says PostgreSQL serves). */
  | "starting"
  /** Redis serves; PostgreSQL admits and records. */
  | "redis"
  /** PostgreSQL serves everyone, as the store row says; Redis is filled from it on the way back. */
  | "postgres";

export type StoreEvent = "redisFailed" | "redisTimedOut" | "redisLost" | "postgresServes" | "redisServes";

/**
 * The one guard, evaluated by queue-mode.ts when the event fires: commands have kept timing out
 * for 5 s (at least 3 of them) with not a single answer from Redis meanwhile, not even to the PING
 * each timeout sends. A slow command, or a starved event loop that fires timers before it reads
 * the replies waiting, is not an outage.
 */
export type StoreGuard = "silentTooLong";

export interface Transition {
  from: StoreState;
  on: StoreEvent;
  guard?: StoreGuard;
  to: StoreState;
  cause: string;
}

const row = (from: StoreState, on: StoreEvent, to: StoreState, cause: string, guard?: StoreGuard): Transition => ({
  from,
  on,
  to,
  cause,
  ...(guard && { guard }),
});

export const TRANSITIONS: readonly Transition[] = [
  row("starting", "postgresServes", "postgres", "the store row says PostgreSQL"),
  row("starting", "redisServes", "redis", "Redis holds the record (filled from PostgreSQL if its marker was gone)"),
  row("redis", "redisFailed", "postgres", "a Redis call failed (refused, lost, not serving): cut off"),
  row(
    "redis",
    "redisTimedOut",
    "postgres",
    "Redis silent for 5 s: calls and PINGs timed out: cut off",
    "silentTooLong",
  ),
  row("redis", "redisLost", "postgres", "Redis lost its data (marker or a concert's keys gone)"),
  row("redis", "postgresServes", "postgres", "the store row says PostgreSQL: another process left Redis"),
  row("postgres", "redisServes", "redis", "the store row says Redis again: a probe restored it here or elsewhere"),
];

/** The transition `event` takes in `state`, or undefined when the table has none (or its guard fails). */
export function nextState(
  state: StoreState,
  event: StoreEvent,
  guard: (name: StoreGuard) => boolean,
): Transition | undefined {
  return TRANSITIONS.find((t) => t.on === event && t.from === state && (!t.guard || guard(t.guard)));
}

/** The table as a mermaid state diagram, for docs/architecture.md. */
export function mermaidDiagram(): string {
  const lines = ["stateDiagram-v2", "  [*] --> starting"];
  for (const t of TRANSITIONS) lines.push(`  ${t.from} --> ${t.to}: ${t.on}${t.guard ? ` [${t.guard}]` : ""}`);
  return lines.join("\n");
}
