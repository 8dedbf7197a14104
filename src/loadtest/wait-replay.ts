// "Estimated vs actual wait" of a traced run, recomputed with another estimator: the server's
// trace (wait-estimate-trace.ts) gives what each estimate was computed from, the users' recorded
// answers when each arrived and when ACTIVE came. Each answer is paired with the server's
// estimate for that token in order (the same wait told: an estimate computed for a stream that
// then closed never arrived), and summarized exactly as the live report is.

import { join } from "node:path";
import { estimateWait, type WaitEstimate } from "../queue/wait-estimate.js";
import { replayEstimates, type EstimateTraceRecord, type Estimator } from "../queue/wait-estimate-trace.js";
import { createWaitAccuracyBook, type RecordedWaits, type ToldWait, type WaitAccuracy } from "./wait-accuracy.js";

export interface ReplayedAccuracy {
  accuracy: WaitAccuracy;
  /** Answers paired with a server estimate, and those that found none (a trace cut short). */
  paired: number;
  unpaired: number;
}

/** Where `--trace-estimates DIR` writes the two halves of a trace. */
export function estimateTracePaths(dir: string): { serverFile: string; usersFile: string } {
  return { serverFile: join(dir, "server.jsonl"), usersFile: join(dir, "users.json") };
}

const waitOf = (estimate: WaitEstimate) => (estimate.known ? estimate.waitMs : undefined);

export function replayWaitAccuracy(
  trace: Iterable<EstimateTraceRecord>,
  recorded: RecordedWaits,
  estimator: Estimator = estimateWait,
): ReplayedAccuracy {
  const byToken = replayEstimates(trace, estimator);
  const book = createWaitAccuracyBook();
  book.markStart(recorded.originMs);
  let [paired, unpaired] = [0, 0];
  for (const user of recorded.users) {
    const estimates = byToken.get(user.token) ?? [];
    let next = 0;
    const told: ToldWait[] = user.told.map((answer) => {
      const toldMs = answer.waitMs === undefined ? null : Math.round(answer.waitMs);
      while (next < estimates.length && estimates[next]!.toldMs !== toldMs) next++;
      const match = estimates[next++];
      if (match) paired++;
      else unpaired++;
      return { atMs: answer.atMs, waitMs: match ? waitOf(match.replayed) : undefined };
    });
    book.record(told, user.activeAtMs);
  }
  return { accuracy: book.summary(recorded.wallMs), paired, unpaired };
}
