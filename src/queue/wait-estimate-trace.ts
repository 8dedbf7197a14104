// A record of everything the wait estimate was computed from, in the order it happened: each
// tick and hearing the line meter was fed, and each estimate asked for. Replaying it through
// another estimator gives the estimates that one would have told the same users at the same
// moments, so two estimators compare on one run instead of across noisy runs
// (`npm run loadtest -- --trace-estimates DIR`, then `npm run replay-estimates -- --trace DIR`).

import type { AdmissionRule } from "./admission-rule.js";
import {
  createLineMeter,
  estimateWait,
  type LineMeasures,
  type PlaceInLine,
  type TickSample,
  type WaitEstimate,
} from "./wait-estimate.js";

export type EstimateTraceRecord =
  | { kind: "tick"; concertId: string; sample: TickSample }
  | { kind: "heard"; concertId: string; decisionMs: number; heardAtMs: number; users: number }
  | {
      kind: "estimate";
      token: string;
      concertId: string;
      place: PlaceInLine;
      /** null: none was computed (admission PAUSED). */
      rule: AdmissionRule | null;
      /** What was told (ms); null: unknown. */
      waitMs: number | null;
    };

/** Called synchronously where each record happens; must not throw. */
export type EstimateTrace = (record: EstimateTraceRecord) => void;

export type Estimator = (place: PlaceInLine, rule: AdmissionRule, measured: LineMeasures) => WaitEstimate;

export interface ReplayedEstimate {
  /** What the traced run told. */
  toldMs: number | null;
  /** What `estimator` tells instead. */
  replayed: WaitEstimate;
}

/** Each token's estimates in the order they were asked for, recomputed by `estimator` on a fresh line meter. */
export function replayEstimates(
  records: Iterable<EstimateTraceRecord>,
  estimator: Estimator = estimateWait,
): Map<string, ReplayedEstimate[]> {
  const meter = createLineMeter();
  const byToken = new Map<string, ReplayedEstimate[]>();
  for (const record of records) {
    if (record.kind === "tick") meter.observe(record.concertId, record.sample);
    else if (record.kind === "heard") meter.heard(record.concertId, record.decisionMs, record.heardAtMs, record.users);
    else {
      const replayed: WaitEstimate = record.rule
        ? estimator(record.place, record.rule, meter.measures(record.concertId))
        : { known: false };
      const list = byToken.get(record.token) ?? [];
      list.push({ toldMs: record.waitMs, replayed });
      byToken.set(record.token, list);
    }
  }
  return byToken;
}
