// Which store serves the waiting room, as one table: every state, every event, and for each
// transition its cause. queue-mode.ts fires the events and runs the effects of entering a state;
// docs/architecture.md ("Waiting room states") draws this table. An event with no row for the
// current state changes nothing (a second failure while already cut off, say), and after
// shutdown no event changes anything.

export type StoreState =
  /** At start, until Redis is known to hold the waiting room. */
  | "starting"
  /** Redis serves. */
  | "redis"
  /** Redis serves, but admission waits: another process still admits from PostgreSQL. */
  | "holding"
  /** PostgreSQL serves because Redis failed this process; its mark sends every process there. */
  | "cut-off"
  /** PostgreSQL serves because another process is cut off, or until Redis is rebuilt. */
  | "following"
  /** PostgreSQL serves while this process merges every live row into Redis, under a Redis lock. */
  | "rebuilding"
  /** Calls wait while this process merges the rows it wrote on PostgreSQL into Redis. */
  | "switching";

export type StoreEvent =
  | "redisFailed"
  | "redisTimedOut"
  | "redisLost"
  | "otherCutOff"
  | "othersOnPostgres"
  | "othersBack"
  | "holdTooLong"
  | "reachable"
  | "rebuildBusy"
  | "rebuildStarted"
  | "rebuilt"
  | "failed"
  | "merged";

/** Conditions a transition may require, evaluated by queue-mode.ts when the event fires. */
export type StoreGuard =
  /**
   * Commands have kept timing out for 5 s (at least 3 of them) with not a single answer from
   * Redis meanwhile, not even to the PING each timeout sends: a slow command, or a starved event
   * loop that fires timers before it reads the replies waiting, is not an outage.
   */
  | "silentTooLong"
  /** Admission has not already waited its 10 s for the processes now on PostgreSQL. */
  | "holdNotSpent";

export interface Transition {
  from: readonly StoreState[];
  on: StoreEvent;
  guard?: StoreGuard;
  to: StoreState;
  cause: string;
}

const ON_REDIS: readonly StoreState[] = ["redis", "holding"];
const MOVING_BACK: readonly StoreState[] = ["following", "rebuilding", "switching"];

export const TRANSITIONS: readonly Transition[] = [
  {
    from: ["starting"],
    on: "otherCutOff",
    to: "following",
    cause: "another process is cut off: join it on PostgreSQL",
  },
  { from: ["starting"], on: "rebuildBusy", to: "following", cause: "another process is rebuilding Redis" },
  { from: ["starting"], on: "rebuilt", to: "redis", cause: "Redis holds the waiting room (rebuilt first if empty)" },
  {
    from: ON_REDIS,
    on: "redisFailed",
    to: "cut-off",
    cause: "a Redis call failed: connection refused or lost, or Redis not serving",
  },
  {
    from: ON_REDIS,
    on: "redisTimedOut",
    guard: "silentTooLong",
    to: "cut-off",
    cause:
      "Redis silent for 5 s: commands and PINGs timed out, none answered (earlier timeouts fail the call, retryable)",
  },
  { from: ON_REDIS, on: "redisLost", to: "cut-off", cause: "the rebuilt-at marker is gone: Redis restarted empty" },
  { from: ON_REDIS, on: "otherCutOff", to: "following", cause: "another process's fresh cut-off mark" },
  {
    from: ["redis"],
    on: "othersOnPostgres",
    guard: "holdNotSpent",
    to: "holding",
    cause: "another process still admits from PostgreSQL",
  },
  { from: ON_REDIS, on: "othersBack", to: "redis", cause: "no fresh mark left" },
  { from: ["holding"], on: "holdTooLong", to: "redis", cause: "held 10 s: a process stuck on PostgreSQL" },
  { from: ["cut-off"], on: "reachable", to: "following", cause: "Redis answers PING again" },
  { from: MOVING_BACK, on: "redisFailed", to: "cut-off", cause: "PING, rebuild or merge failed on Redis" },
  {
    from: ["following"],
    on: "rebuildStarted",
    to: "rebuilding",
    cause: "nobody cut off, Redis not rebuilt since the outage began; rebuild lock taken",
  },
  {
    from: ["following", "rebuilding"],
    on: "rebuilt",
    to: "switching",
    cause: "nobody cut off, and Redis rebuilt from PostgreSQL since this process left it",
  },
  {
    from: ["rebuilding", "switching"],
    on: "failed",
    to: "following",
    cause: "an unexpected error; next probe retries",
  },
  { from: ["switching"], on: "merged", to: "redis", cause: "own fallback writes merged; mark removed" },
];

/** The transition `event` takes in `state`, or undefined when the table has none (or its guard fails). */
export function nextState(
  state: StoreState,
  event: StoreEvent,
  guard: (name: StoreGuard) => boolean,
): Transition | undefined {
  return TRANSITIONS.find((t) => t.on === event && t.from.includes(state) && (!t.guard || guard(t.guard)));
}

/** States in which Redis serves calls. */
export const servesFromRedis = (state: StoreState) => ON_REDIS.includes(state);

/** The table as a mermaid state diagram, for docs/architecture.md. */
export function mermaidDiagram(): string {
  const lines = ["stateDiagram-v2", "  [*] --> starting"];
  for (const t of TRANSITIONS) {
    for (const from of t.from) lines.push(`  ${from} --> ${t.to}: ${t.on}${t.guard ? ` [${t.guard}]` : ""}`);
  }
  return lines.join("\n").replaceAll("cut-off", "cut_off");
}
