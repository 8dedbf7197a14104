// A per-process bound on the unary calls of one service being served at once, over both ports:
// past it a call is refused at once with RESOURCE_EXHAUSTED (OVERLOADED) and a RetryInfo, before
// it takes a database connection or a Redis round trip, instead of queueing behind the others
// until its deadline and being retried on top of them.

import { OverloadedError } from "../domain-error.js";

export interface InFlightLimit {
  /** Counts the call in and returns true, or returns false when the service is at its limit. */
  tryEnter(): boolean;
  /** The call entered with tryEnter has been answered. */
  leave(): void;
  readonly inFlight: number;
  /** The refusal for a call that could not enter. */
  refusal(): OverloadedError;
}

/** Clients told to come back after this, plus up to as much again at random so they do not all return at once. */
export const IN_FLIGHT_RETRY_MS = 500;

/** `max` calls at once; 0 means no limit. */
export function createInFlightLimit(serviceName: string, max: number): InFlightLimit {
  let inFlight = 0;
  return {
    tryEnter() {
      if (max > 0 && inFlight >= max) return false;
      inFlight++;
      return true;
    },
    leave() {
      inFlight--;
    },
    get inFlight() {
      return inFlight;
    },
    refusal: () =>
      new OverloadedError(
        `this server is answering its limit of ${max} ${serviceName} calls at once; retry after the delay given`,
        IN_FLIGHT_RETRY_MS * (1 + Math.random()),
      ),
  };
}
