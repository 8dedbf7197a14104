// The live progress line on stderr: rewritten in place every second on a terminal, one plain
// line every few seconds otherwise (CI logs, pipes).

import type { StageCounts, TimePoint } from "./run-stats.js";

export interface ProgressLine {
  update(counts: Readonly<StageCounts>, point: TimePoint): void;
  /** Ends the in-place line so later output starts on a fresh one. */
  finish(): void;
}

export function formatProgress(counts: Readonly<StageCounts>, point: TimePoint): string {
  return (
    `[${point.t.toFixed(0).padStart(3)}s] joined ${counts.joined} waiting ${counts.waiting} active ${counts.active} ` +
    `paid ${counts.paid} lost ${counts.lost} failed ${counts.failed} | ` +
    `joins ${point.joins}/s admissions ${point.admissions}/s holds ${point.holds}/s payments ${point.payments}/s`
  );
}

export function createProgressLine(stream: NodeJS.WriteStream, plainEveryMs = 5000): ProgressLine {
  const tty = stream.isTTY === true;
  let lastPlain = 0;
  let dirty = false;
  return {
    update(counts, point) {
      const text = formatProgress(counts, point);
      if (tty) {
        stream.write(`\r\x1b[2K${text.slice(0, Math.max(20, (stream.columns ?? 200) - 1))}`);
        dirty = true;
      } else if (point.t * 1000 - lastPlain >= plainEveryMs) {
        lastPlain = point.t * 1000;
        stream.write(`${text}\n`);
      }
    },
    finish() {
      if (dirty) stream.write("\n");
      dirty = false;
    },
  };
}
