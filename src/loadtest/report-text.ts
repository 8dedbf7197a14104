// The human-readable report printed to stdout at the end of a run.

import type { FaultRecord } from "./faults.js";
import type { LoadTestReport } from "./report.js";
import type { ErrorSummary, WaitAccuracy } from "./wait-accuracy.js";

const int = (value: number) => value.toLocaleString("en-US");
const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const seconds = (value: number) => `${(value / 1000).toFixed(1)} s`;
const share = (part: number, whole: number) => (whole === 0 ? "–" : `${((part / whole) * 100).toFixed(1)}%`);
const money = (minor: string) => BigInt(minor).toLocaleString("en-US");

function table(rows: string[][], align: ("l" | "r")[]): string[] {
  const widths = align.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map(
    (row) =>
      `  ${row
        .map((cell, i) => (align[i] === "r" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd()}`,
  );
}

function formatFault(fault: FaultRecord): string[] {
  const users = fault.usersAtInjection;
  const when = [
    fault.injectedAtS === undefined
      ? "not injected"
      : `injected at ${fault.injectedAtS.toFixed(1)} s` +
        (users ? ` (${int(users.waiting)} waiting, ${int(users.active)} active, ${int(users.finished)} finished)` : ""),
    ...(fault.recoveredAtS === undefined
      ? []
      : [
          `ended at ${fault.recoveredAtS.toFixed(1)} s (${int(fault.usersUnfinishedAtRecovery ?? 0)} users not finished yet)`,
        ]),
  ];
  return [
    `  ${fault.complete ? "" : "INCOMPLETE "}${fault.spec}: ${when.join(", ")}`,
    ...fault.notes.map((note) => `        ${note}`),
  ];
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(0)}%`;

function errorRow(label: string, e: ErrorSummary): string[] {
  const known = e.answers - e.unknown;
  return [
    label,
    int(e.answers),
    `${int(e.unknown)} (${share(e.unknown, e.answers)})`,
    known === 0 ? "–" : percent(e.median),
    known === 0 ? "–" : percent(e.p90),
    known === 0 ? "–" : `${e.medianSigned >= 0 ? "+" : ""}${percent(e.medianSigned)}`,
  ];
}

/** Decimals that keep a short run's tenths apart (a 9 s run's tenths read 0–1, 1–2, 1–2… in whole seconds). */
function tenthDigits(tenths: WaitAccuracy["tenths"]): number {
  const widthS = tenths[0] ? tenths[0].toS - tenths[0].fromS : Infinity;
  return widthS >= 2 ? 0 : widthS >= 0.2 ? 1 : 2;
}

export function formatWaitAccuracy(w: WaitAccuracy): string[] {
  if (w.users === 0) return ["  no user waited " + seconds(w.minWaitMs) + " or more"];
  const digits = tenthDigits(w.tenths);
  return [
    `  ${int(w.users)} users who waited ${seconds(w.minWaitMs)} or more; error = |estimate − actual| / actual, ` +
      "actual = from the answer to ACTIVE; unknown = the server said it has no estimate yet",
    ...table(
      [
        ["answers", "count", "unknown", "median", "p90", "median signed"],
        errorRow("at join", w.atJoin),
        errorRow("first known estimate", w.firstKnown),
        errorRow("all updates", w.allUpdates),
        ...w.tenths.map((t) => errorRow(`  ${t.fromS.toFixed(digits)}–${t.toS.toFixed(digits)} s`, t)),
      ],
      ["l", "r", "r", "r", "r", "r"],
    ),
  ];
}

export function formatReport(report: LoadTestReport): string {
  const { settings: s, outcome: o } = report;
  const lines: string[] = [];
  lines.push(
    `LoadTest5 run ${report.runId}: ${int(s.users)} users against ${report.target} (cap ${int(s.cap)}, ${s.arrival === "closed" ? `concurrency ${int(s.concurrency)}` : `arrival ${s.arrival}`}, ` +
      `${s.connections} connections, seat pick ${s.seatPick}${s.seatPick === "random-once" ? "" : ` with ${s.seatRetries} retries`}` +
      `${s.warmUpUsers > 0 ? `, after a warm-up of ${int(s.warmUpUsers)} users on another concert` : ""})`,
    `concert ${s.concertId}, schedule ${s.scheduleId}: ${int(s.seatsAvailable)} of ${int(s.totalSeats)} seats available; top-up ${money(s.topUpMinor)} per user`,
    "",
    "Outcome",
    ...table(
      [
        ["tokens issued", int(o.tokensIssued), `of ${int(s.users)} users`, share(o.tokensIssued, s.users)],
        [
          "tokens activated",
          int(o.tokensActivated),
          `of ${int(o.tokensIssued)} issued`,
          share(o.tokensActivated, o.tokensIssued),
        ],
        ["topped up", int(o.toppedUp), `for ${money(o.toppedUpMinor)} in total`, ""],
        ["holds won", int(o.holdsWon), `of ${int(o.tokensActivated)} admitted`, share(o.holdsWon, o.tokensActivated)],
        [
          "lost to collision",
          int(o.lostToCollision),
          `${int(o.collisions)} SEAT_UNAVAILABLE answers`,
          share(o.lostToCollision, o.tokensActivated),
        ],
        [
          "payments ok",
          int(o.paymentsOk),
          `of ${int(o.holdsWon)} holds, ${money(o.paidMinor)} paid` +
            (o.paymentsConfirmedPerLedger > 0
              ? ` (${int(o.paymentsConfirmedPerLedger)} found in the ledger after a lost answer)`
              : ""),
          share(o.paymentsOk, o.holdsWon),
        ],
        ["payments failed", int(o.paymentsFailed), "", ""],
        [
          "users failed",
          int(o.usersFailed),
          Object.entries(o.failuresByStage)
            .map(([stage, n]) => `${stage}: ${n}`)
            .join(", "),
          "",
        ],
        [
          "stream resumes",
          int(o.streamResumes),
          `rejoins ${int(o.rejoins)}, retried calls ${int(o.retries)} (${int(o.retriesHeldByBudget)} held by the retry budget), unknown outcomes ${int(o.ambiguousMutations)}`,
          "",
        ],
        [
          "wall time",
          seconds(report.usersWallMs),
          `users; ${seconds(report.totalMs)} with discovery and audit; load generator event loop ${share(report.generatorLoopUtilization, 1)} busy`,
          report.timedOut ? "TIMED OUT" : "",
        ],
      ],
      ["l", "r", "l", "r"],
    ),
  );

  if (report.faults) lines.push("", "Faults", ...report.faults.flatMap(formatFault));

  lines.push("", "Errors by RPC, code and reason");
  const errors = Object.entries(report.errors);
  const firstMessage = (key: string) => (report.errorMessages[key] ?? "").slice(0, 100);
  lines.push(
    ...(errors.length === 0
      ? ["  none"]
      : table(
          errors.map(([key, n]) => [key, int(n), firstMessage(key)]),
          ["l", "r", "l"],
        )),
  );

  lines.push("", "Latency (ms)");
  lines.push(
    ...table(
      [
        ["call", "count", "p50", "p95", "p99", "max", "mean"],
        ...Object.entries(report.latency).map(([name, l]) => [
          name,
          int(l.count),
          ms(l.p50Ms),
          ms(l.p95Ms),
          ms(l.p99Ms),
          ms(l.maxMs),
          ms(l.meanMs),
        ]),
      ],
      ["l", "r", "r", "r", "r", "r", "r"],
    ),
  );
  if (report.serverMaxActiveSampled !== undefined) {
    lines.push(
      `  (largest active set sampled in Redis during the run: ${int(report.serverMaxActiveSampled)} of cap ${int(s.cap)})`,
    );
  }

  lines.push("", "Estimated vs actual wait", ...formatWaitAccuracy(report.waitAccuracy));

  lines.push("", "Integrity audit (read back from PostgreSQL and the Redis event stream)");
  if (!report.audit) {
    lines.push("  skipped");
  } else {
    for (const check of report.audit.checks) {
      const mark = check.status === "pass" ? "PASS" : check.status === "fail" ? "FAIL" : "N/V ";
      lines.push(`  ${mark}  ${check.name}`, `        ${check.detail}`);
    }
  }
  const notVerifiable = report.audit?.checks.filter((c) => c.status === "not verifiable").length ?? 0;
  const caveats = [
    ...(notVerifiable > 0 ? [`${notVerifiable} check(s) not verifiable`] : []),
    ...(report.audit ? [] : ["no audit"]),
    ...(o.usersFailed > 0 ? [`but ${int(o.usersFailed)} users failed`] : []),
    ...(report.timedOut ? ["the run timed out"] : []),
    ...(report.faults ?? []).filter((f) => !f.complete).map((f) => `fault ${f.spec} did not happen as planned`),
  ];
  const failed = report.audit?.checks.some((c) => c.status === "fail") ?? false;
  const verdict = report.passed
    ? "PASS: every audited invariant holds"
    : failed
      ? "FAIL: an invariant does not hold"
      : notVerifiable > 0
        ? "FAIL: an invariant could not be verified"
        : "FAIL";
  lines.push("", `RESULT: ${verdict}${caveats.length > 0 ? ` (${caveats.join("; ")})` : ""}`);
  return `${lines.join("\n")}\n`;
}
