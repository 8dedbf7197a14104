// A clock that stands still until the test moves it: a hold's end is reached by a step, not by
// sleeping past it (a busy machine may also sleep past the end the test meant to stay before).

import type { Clock } from "../../src/platform/clock.js";

export interface SteppedClock extends Clock {
  /** Moves the time forward by `ms`. */
  advance(ms: number): void;
}

/** Starts at the real time, so rows it stamps sort with the others of the test database. */
export function steppedClock(start = Date.now()): SteppedClock {
  let nowMs = start;
  return Object.assign(() => new Date(nowMs), {
    advance(ms: number) {
      nowMs += ms;
    },
  });
}
