// How this process uses Redis, PostgreSQL's index, as one table (queue-mode.ts fires the events,
// docs/architecture.md draws it; an event with no row changes nothing). `redis`: serves, admits.
// `rebuilding`: Redis misses writes or lost its data; calls wait while it is filled. `postgres`:
// Redis fails this process (or is unchecked); PostgreSQL serves, nobody is admitted here.
// Guard silentTooLong: checks timed out for 5 s in a row (at least 3 of them).

export type StoreState = "redis" | "rebuilding" | "postgres";
export type StoreEvent = "indexCurrent" | "indexBehind" | "rebuilt" | "redisFailed" | "redisTimedOut";

const FAILED = "a Redis call or check failed (refused, lost, not serving)";
const BEHIND = "Redis misses writes (noted in queue_missed) or lost its data (marker or a concert's keys gone)";
const CURRENT = "a check found Redis answering and missing nothing";
type Transition = { from: StoreState; on: StoreEvent; guard?: "silentTooLong"; to: StoreState; cause: string };
export const TRANSITIONS: readonly Transition[] = [
  { from: "postgres", on: "indexCurrent", to: "redis", cause: CURRENT },
  { from: "postgres", on: "indexBehind", to: "rebuilding", cause: BEHIND },
  { from: "redis", on: "indexBehind", to: "rebuilding", cause: BEHIND },
  { from: "redis", on: "redisFailed", to: "postgres", cause: FAILED },
  { from: "redis", on: "redisTimedOut", guard: "silentTooLong", to: "postgres", cause: "Redis silent for 5 s" },
  { from: "rebuilding", on: "rebuilt", to: "redis", cause: "the missed rows were merged into Redis" },
  { from: "rebuilding", on: "indexCurrent", to: "redis", cause: CURRENT },
  { from: "rebuilding", on: "redisFailed", to: "postgres", cause: FAILED },
];

/** The transition `event` takes in `state`, or undefined when the table has none (or its guard fails). */
export const nextState = (state: StoreState, event: StoreEvent, silentTooLong: () => boolean) =>
  TRANSITIONS.find((t) => t.on === event && t.from === state && (!t.guard || silentTooLong()));

/** The table as a mermaid state diagram, for docs/architecture.md. */
export const mermaidDiagram = () =>
  ["stateDiagram-v2", "  [*] --> postgres"]
    .concat(TRANSITIONS.map((t) => `  ${t.from} --> ${t.to}: ${t.on}${t.guard ? ` [${t.guard}]` : ""}`))
    .join("\n");
