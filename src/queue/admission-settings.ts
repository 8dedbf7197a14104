// Per-concert admission settings, asked by the admission loop per concert per tick. AdminService
// stores them; app.ts wires its source in. Without a source every concert runs on the rule the
// environment gives (MAX_ACTIVE_USERS, ACTIVE_TOKEN_TTL, ...).

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
  /** Reloads the stored settings; the loop calls it at the start of every tick, so a change applies at the next. */
  refresh(): Promise<void>;
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
  return { refresh: async () => undefined, of: () => open, mayAdmit: async () => true };
}

/**
 * The rule a tick applies: a PAUSED concert, or one whose step another process took, admits
 * nobody, while active slots still end on time and the abandoned still leave.
 */
export function tickRule({ rule, state }: ConcertAdmission, mayAdmit: boolean): AdmissionRule {
  return state === "PAUSED" || !mayAdmit ? { ...rule, cap: 0 } : rule;
}
