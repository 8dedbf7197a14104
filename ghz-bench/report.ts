// Turns ghz JSON reports (ghz --format json) into the markdown table `npm run bench` prints for
// calls: the same CALL_TABLE_COLUMNS, so the two sets of figures line up.
//
//   node --import tsx ghz-bench/report.ts OUT_DIR   (reads OUT_DIR/*.report.json)

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CALL_TABLE_COLUMNS, formatNumber, markdownTable, type BenchTable } from "../bench/report.js";

/** The fields of ghz's JSON report this table reads; latencies are nanoseconds. */
interface GhzReport {
  name?: string;
  options?: { call?: string };
  count: number;
  rps: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution?: Record<string, number>;
}

function ghzRow(call: string, report: GhzReport): string[] {
  const at = (p: number) => report.latencyDistribution?.find((d) => d.percentage === p)?.latency;
  const ms = (ns: number | undefined) => (ns === undefined ? "–" : formatNumber(ns / 1e6, 2));
  const errors = Object.entries(report.statusCodeDistribution ?? {})
    .filter(([code]) => code !== "OK")
    .map(([code, n]) => `${n} ${code}`);
  return [
    call,
    "gRPC port (ghz)",
    formatNumber(report.rps),
    ms(at(50)),
    ms(at(99)),
    errors.length > 0 ? errors.join(", ") : "0",
  ];
}

function ghzTable(dir: string): BenchTable {
  const rows = readdirSync(dir)
    .filter((f) => f.endsWith(".report.json"))
    .sort()
    .map((file) => {
      const report = JSON.parse(readFileSync(join(dir, file), "utf8")) as GhzReport;
      const call = report.options?.call?.split(/[./]/).at(-1) ?? file.replace(".report.json", "");
      return ghzRow(call, report);
    });
  return { title: "ghz against the gRPC port", note: `Reports in ${dir}.`, columns: CALL_TABLE_COLUMNS, rows };
}

const dir = process.argv[2];
if (!dir) {
  console.error("usage: report.ts OUT_DIR");
  process.exit(2);
}
process.stdout.write(markdownTable(ghzTable(dir)));
