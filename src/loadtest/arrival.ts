// How the virtual users arrive. closed: `--concurrency` users in flight, the next starting as one
// finishes (a steady crowd). burst: every user starts at once, whatever the concurrency (a sale
// opening). ramp:<seconds>: users start evenly over that time.

export type Arrival = { kind: "closed" } | { kind: "burst" } | { kind: "ramp"; rampMs: number };

/** Parses closed, burst or ramp:<seconds>; undefined when the text is none of them. */
export function parseArrival(text: string): Arrival | undefined {
  if (text === "closed" || text === "burst") return { kind: text };
  const ramp = /^ramp:(\d+(?:\.\d+)?)$/.exec(text);
  if (!ramp || Number(ramp[1]) <= 0) return undefined;
  return { kind: "ramp", rampMs: Math.round(Number(ramp[1]) * 1000) };
}

export function formatArrival(arrival: Arrival | undefined): string {
  if (!arrival || arrival.kind === "closed") return "closed";
  return arrival.kind === "burst" ? "burst" : `ramp:${arrival.rampMs / 1000}`;
}
