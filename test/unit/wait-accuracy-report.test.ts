import test from "ava";
import { formatWaitAccuracy } from "../../src/loadtest/report-text.js";
import type { ErrorSummary, WaitAccuracy } from "../../src/loadtest/wait-accuracy.js";

const summary: ErrorSummary = { answers: 10, unknown: 0, median: 0.2, p90: 0.4, medianSigned: -0.1 };

/** The report's tenth labels for a run whose users took `wallS` seconds. */
function tenthLabels(wallS: number): string[] {
  const accuracy: WaitAccuracy = {
    users: 10,
    minWaitMs: 2000,
    atJoin: summary,
    firstKnown: summary,
    allUpdates: summary,
    tenths: Array.from({ length: 10 }, (_, i) => ({
      ...summary,
      fromS: Math.round((i * wallS * 1000) / 10) / 1000,
      toS: Math.round(((i + 1) * wallS * 1000) / 10) / 1000,
    })),
  };
  return formatWaitAccuracy(accuracy)
    .map((line) => /^\s+(\S+ s)\s/.exec(line)?.[1])
    .filter((label): label is string => label !== undefined);
}

test("each tenth of the run has its own label, short runs in tenths of a second", (t) => {
  t.deepEqual(tenthLabels(22.3).slice(0, 3), ["0–2 s", "2–4 s", "4–7 s"]);
  t.deepEqual(tenthLabels(4.4).slice(0, 3), ["0.0–0.4 s", "0.4–0.9 s", "0.9–1.3 s"]);
  t.deepEqual(tenthLabels(1.5).slice(0, 2), ["0.00–0.15 s", "0.15–0.30 s"]);
  for (const wallS of [0.9, 4.4, 9.5, 19, 22.3, 300]) {
    const labels = tenthLabels(wallS);
    t.is(labels.length, 10, String(wallS));
    t.is(new Set(labels).size, 10, `${wallS} s: ${labels.join(", ")}`);
  }
});
