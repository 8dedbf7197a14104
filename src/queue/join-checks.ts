// What a join is refused for before it reaches a store: a concert that does not exist, or whose
// waiting room AdminService closed.

import { DomainError } from "../platform/domain-error.js";
import type { AdmissionSettings } from "./admission-settings.js";

const KNOWN_CONCERTS = 10_000;

export function createJoinChecks(deps: {
  query: (sql: string, params: unknown[]) => Promise<unknown[]>;
  settings: Pick<AdmissionSettings, "of">;
}): { check(concertId: string): Promise<void> } {
  /**
   * A concert's lookup, kept once it found the concert. Joins that arrive while it is under way
   * share it: a sale's first crowd would otherwise send one query each, queued for the pool.
   */
  const lookups = new Map<string, Promise<void>>();
  async function lookUp(concertId: string): Promise<void> {
    const rows = await deps.query("select 1 from concert where id = $1", [concertId]);
    if (rows.length === 0)
      throw new DomainError("CONCERT_NOT_FOUND", `concert ${concertId} does not exist`, [], { concert_id: concertId });
  }
  function requireConcert(concertId: string): Promise<void> {
    let lookup = lookups.get(concertId);
    if (lookup) return lookup;
    if (lookups.size >= KNOWN_CONCERTS) lookups.clear();
    lookup = lookUp(concertId);
    lookups.set(concertId, lookup);
    // Not found (yet) or not answered: the next join asks again.
    lookup.catch(() => {
      if (lookups.get(concertId) === lookup) lookups.delete(concertId);
    });
    return lookup;
  }

  /** A CLOSED waiting room (AdminService) takes no new joins; those in line are still admitted. */
  function refuseIfClosed(concertId: string): void {
    const { state, reason } = deps.settings.of(concertId);
    if (state !== "CLOSED") return;
    const why = reason ? `: ${reason}` : "";
    throw new DomainError("QUEUE_CLOSED", `the waiting room of concert ${concertId} is closed${why}`, [], {
      concert_id: concertId,
    });
  }

  return {
    async check(concertId) {
      await requireConcert(concertId);
      refuseIfClosed(concertId);
    },
  };
}
