// A call's queue admission as the booking and wallet commands see it. An ACTIVE token admits one
// user to one concert, so whatever a call touches (a user's reservation, a schedule's seats) must
// be that user's and belong to that concert. The commands apply the rule; the handlers build the
// admission from the call's context, where the queue-token guard put the token.

import type { HandlerContext } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { requireAdmitted, type AdmittedToken } from "../queue/admission-context.js";
import { createConcertOfSchedule } from "./catalog.js";

export interface Admission {
  /** The ACTIVE token that let the call in. */
  readonly token: AdmittedToken;
  /** QUEUE_TOKEN_MISMATCH unless the token is this user's. */
  requireUser(userId: string): void;
  /** QUEUE_TOKEN_MISMATCH unless the token admits to this concert. */
  requireConcert(concertId: string): void;
  /**
   * SCHEDULE_NOT_FOUND, or QUEUE_TOKEN_MISMATCH unless the token admits to the schedule's concert.
   * Inside a transaction pass its `em`, so a cache miss needs no second connection.
   */
  requireSchedule(scheduleId: string, em?: EntityManager): Promise<void>;
  /** Whether the token admits to the schedule's concert. */
  coversSchedule(scheduleId: string, em?: EntityManager): Promise<boolean>;
}

/**
 * Reads a call's admission from its context: QUEUE_TOKEN_INVALID when no ACTIVE token is there,
 * which only happens if a method that needs one did not declare it.
 */
export function createAdmissionReader(orm: { em: EntityManager }): (context: HandlerContext) => Admission {
  // One lookup per schedule and process: a schedule never moves to another concert.
  const concertOf = createConcertOfSchedule(orm);
  return (context) => {
    const token = requireAdmitted(context, {});
    return {
      token,
      requireUser: (userId) => void requireAdmitted(context, { userId }),
      requireConcert: (concertId) => void requireAdmitted(context, { concertId }),
      requireSchedule: async (scheduleId, em) =>
        void requireAdmitted(context, { concertId: await concertOf(scheduleId, em) }),
      coversSchedule: async (scheduleId, em) => (await concertOf(scheduleId, em)) === token.concertId,
    };
  };
}
