// Per-concert admission settings, asked by the admission loop per concert per tick. AdminService
// stores them; app.ts wires its source in. Without a source every concert runs on the rule the
// environment gives (MAX_ACTIVE_USERS, ACTIVE_TOKEN_TTL, ...). A tick must not stall on the
// settings' store (PostgreSQL under load): it runs on the last known ones, and a change made
// through AdminService is announced (a counter in Redis), which makes the next tick of every
// process reload before it admits.

import type { AdmissionRule } from "./admission-rule.js";

/** OPEN admits; PAUSED admits nobody and keeps every place; CLOSED refuses new joins. */
export type AdmissionState = "OPEN" | "PAUSED" | "CLOSED";

export interface ConcertAdmission {
  rule: AdmissionRule;
  state: AdmissionState;
  /** Why, when not OPEN (for waiting users). */
  reason: string;
}

export interface AdmissionSettings {
  /**
   * Called at the start of every tick: brings the settings up to date without making the tick
   * wait on their store, except after a change was announced, which the tick waits for (at most
   * `boundMs`) so that it applies at every process's next tick.
   */
  refresh(boundMs: number): Promise<void>;
  /** Tells every process that stored settings changed: each applies them at its next tick. */
  announceChange(): Promise<void>;
  /** One concert's settings as of the last refresh. */
  of(concertId: string): ConcertAdmission;
  /**
   * Whether this process's tick may admit into the concert now. A concert paced by its own
   * admission interval admits at one process per interval, whichever ticks first; the others
   * only sweep.
   */
  mayAdmit(concertId: string): Promise<boolean>;
}

export function fixedAdmissionSettings(rule: AdmissionRule): AdmissionSettings {
  const open: ConcertAdmission = { rule, state: "OPEN", reason: "" };
  return {
    refresh: async () => undefined,
    announceChange: async () => undefined,
    of: () => open,
    mayAdmit: async () => true,
  };
}

/**
 * The rule a tick applies: a PAUSED concert, or one whose step another process took, admits
 * nobody, while active slots still end on time and the abandoned still leave.
 */
export function tickRule({ rule, state }: ConcertAdmission, mayAdmit: boolean): AdmissionRule {
  return state === "PAUSED" || !mayAdmit ? { ...rule, cap: 0 } : rule;
}
