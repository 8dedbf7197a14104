// What a join is refused for before it reaches a store: a concert that does not exist, or whose
// waiting room AdminService closed.

import { DomainError } from "../platform/domain-error.js";
import type { AdmissionSettings } from "./admission-settings.js";

const KNOWN_CONCERTS = 10_000;

export function createJoinChecks(deps: {
  query: (sql: string, params: unknown[]) => Promise<unknown[]>;
  settings: Pick<AdmissionSettings, "of">;
}): { check(concertId: string): Promise<void> } {
  const knownConcerts = new Set<string>();
  async function requireConcert(concertId: string): Promise<void> {
    if (knownConcerts.has(concertId)) return;
    const rows = await deps.query("select 1 from concert where id = $1", [concertId]);
    if (rows.length === 0)
      throw new DomainError("CONCERT_NOT_FOUND", `concert ${concertId} does not exist`, [], { concert_id: concertId });
    if (knownConcerts.size >= KNOWN_CONCERTS) knownConcerts.clear();
    knownConcerts.add(concertId);
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
