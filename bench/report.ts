// What every suite returns and how the runner prints it: markdown tables plus the machine and
// load they were measured on (the machine is shared; a figure without its context is noise).

import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";

export interface BenchTable {
  title: string;
  /** Command, workload and caveats, printed under the title. */
  note?: string;
  columns: readonly string[];
  rows: readonly (readonly (string | number)[])[];
}

export interface SuiteOptions {
  durationSec: number;
  concurrency: number;
  /** Progress lines (stderr); tables are returned, not printed. */
  log: (line: string) => void;
}

/**
 * Columns of a per-call table. ghz-bench/report.ts prints its results with the same columns, so
 * ghz figures and `npm run bench` figures for the same call sit side by side.
 */
export const CALL_TABLE_COLUMNS = ["call", "transport", "req/s", "p50 ms", "p99 ms", "errors"] as const;

export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" of repeated runs. */
export function formatRuns(values: readonly number[], digits = 0): string {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted[Math.ceil(sorted.length / 2) - 1]!;
  if (sorted.length === 1) return formatNumber(mid, digits);
  return `${formatNumber(mid, digits)} (${formatNumber(sorted[0]!, digits)}–${formatNumber(sorted.at(-1)!, digits)})`;
}

export function markdownTable(table: BenchTable): string {
  const escape = (cell: string | number) => String(cell).replaceAll("|", "\\|");
  const lines = [`### ${table.title}`, ""];
  if (table.note) lines.push(table.note, "");
  lines.push(`| ${table.columns.map(escape).join(" | ")} |`);
  lines.push(`|${table.columns.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`);
  for (const row of table.rows) lines.push(`| ${row.map(escape).join(" | ")} |`);
  return `${lines.join("\n")}\n`;
}

function command(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

export interface MachineInfo {
  date: string;
  cores: string;
  cpuModel: string;
  node: string;
  load: string;
}

export function machineInfo(): MachineInfo {
  return {
    date: command("date", []),
    cores: command("nproc", []),
    cpuModel: cpus()[0]?.model ?? "unknown",
    node: process.version,
    load: loadavg()
      .map((l) => l.toFixed(2))
      .join(", "),
  };
}

export function machineHeader(info: MachineInfo, loadAfter: string, commandLine: string): string {
  return [
    `- command: \`${commandLine}\``,
    `- date: ${info.date}`,
    `- machine: ${info.cores} cores, ${info.cpuModel}; Node ${info.node}`,
    `- load average (1, 5, 15 min): ${info.load} before, ${loadAfter} after (shared machine: other work may run at the same time)`,
  ].join("\n");
}
