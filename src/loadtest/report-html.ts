// --html: one self-contained page. The report JSON sits in a <script type="application/json">
// block, uPlot (MIT, ~50 kB) is inlined, and a small script draws the time series and the
// latency histograms from the JSON, so the file opens offline and stays inspectable.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { LoadTestReport } from "./report.js";

export const REPORT_DATA_ELEMENT_ID = "loadtest-report";

const require = createRequire(import.meta.url);

function uPlotAssets(): { script: string; css: string } {
  try {
    return {
      script: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
      css: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
    };
  } catch (error) {
    throw new Error(`--html needs the uplot package (a devDependency; run npm install): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"]/g,
    (c) => `&${({ "&": "amp", "<": "lt", ">": "gt", '"': "quot" } as Record<string, string>)[c]};`,
  );

/** JSON that cannot close the <script> element it sits in. */
const scriptSafeJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

function summaryRows(report: LoadTestReport): string {
  const o = report.outcome;
  const rows: [string, string | number][] = [
    ["users", report.settings.users],
    ["tokens issued / activated", `${o.tokensIssued} / ${o.tokensActivated}`],
    ["holds won / lost to collision", `${o.holdsWon} / ${o.lostToCollision}`],
    ["payments ok / failed", `${o.paymentsOk} / ${o.paymentsFailed}`],
    ["users failed", o.usersFailed],
    ["cap (MAX_ACTIVE_USERS)", report.settings.cap],
    ["wall time (users)", `${(report.usersWallMs / 1000).toFixed(1)} s`],
    ["result", report.passed ? "PASS" : "FAIL"],
  ];
  return rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`).join("");
}

function auditRows(report: LoadTestReport): string {
  if (!report.audit) return `<tr><td colspan="3">audit skipped</td></tr>`;
  return report.audit.checks
    .map(
      (c) =>
        `<tr class="${c.status === "pass" ? "pass" : c.status === "fail" ? "fail" : "nv"}"><td>${c.status.toUpperCase()}</td><td>${escapeHtml(c.name)}</td><td>${escapeHtml(c.detail)}</td></tr>`,
    )
    .join("");
}

function faultSection(report: LoadTestReport): string {
  if (!report.faults) return "";
  const at = (s?: number) => (s === undefined ? "–" : `${s.toFixed(1)} s`);
  const rows = report.faults
    .map(
      (f) =>
        `<tr class="${f.complete ? "pass" : "fail"}"><td>${escapeHtml(f.spec)}</td><td>${at(f.injectedAtS)}</td><td>${at(f.recoveredAtS)}</td><td>${escapeHtml(f.notes.join("; "))}</td></tr>`,
    )
    .join("");
  return `<h2>Faults</h2>\n<table><tr><th>fault</th><th>injected</th><th>ended</th><th>what happened</th></tr>${rows}</table>`;
}

function latencyRows(report: LoadTestReport): string {
  return Object.entries(report.latency)
    .map(
      ([name, l]) =>
        `<tr><td>${escapeHtml(name)}</td>${[l.count, l.p50Ms, l.p95Ms, l.p99Ms, l.maxMs].map((v, i) => `<td>${i === 0 ? v : v.toFixed(1)}</td>`).join("")}</tr>`,
    )
    .join("");
}

// Runs in the browser: reads the JSON block and draws with the global uPlot.
const DRAW = `
const report = JSON.parse(document.getElementById(${JSON.stringify(REPORT_DATA_ELEMENT_ID)}).textContent);
const width = Math.min(1100, document.body.clientWidth - 40);
const t = report.timeline.map((p) => p.t);
const pick = (key) => report.timeline.map((p) => (p[key] === undefined ? null : p[key]));
const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, ...extra });
const xAxis = { scales: { x: { time: false } }, axes: [{ label: "seconds" }, {}] };
new uPlot({ title: "Users over time", width, height: 320, ...xAxis, series: [{ label: "t" },
  line("waiting (client view)", "#1f77b4"), line("active (client view: ACTIVE seen → done)", "#2ca02c"),
  line("waiting (Redis)", "#aec7e8", { dash: [4, 4] }), line("active (Redis)", "#98df8a", { dash: [4, 4] }),
  line("cap", "#d62728", { dash: [8, 4] })] },
  [t, pick("waiting"), pick("active"), pick("serverWaiting"), pick("serverActive"), t.map(() => report.settings.cap)],
  document.getElementById("users"));
new uPlot({ title: "Rates per second", width, height: 320, ...xAxis, series: [{ label: "t" },
  line("joins/s", "#9467bd"), line("admissions/s", "#1f77b4"), line("holds/s", "#ff7f0e"), line("payments/s", "#2ca02c")] },
  [t, pick("joins"), pick("admissions"), pick("holds"), pick("payments")],
  document.getElementById("rates"));
const bars = uPlot.paths.bars({ size: [0.8, 60] });
for (const [name, l] of Object.entries(report.latency)) {
  const labels = l.histogram.upperBoundsMs.map((b) => "≤" + (b < 1 ? b : b >= 1000 ? b / 1000 + "s" : b));
  labels.push(">" + (l.histogram.upperBoundsMs.at(-1) / 1000) + "s");
  const counts = [...l.histogram.counts, l.histogram.overflow];
  const el = document.createElement("div");
  document.getElementById("latency").append(el);
  new uPlot({ title: name + " (ms, p50 " + l.p50Ms.toFixed(1) + ", p99 " + l.p99Ms.toFixed(1) + ")", width: Math.min(540, width), height: 220,
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] } },
    axes: [{ values: (u, splits) => splits.map((i) => labels[i] ?? ""), space: 30 }, {}],
    series: [{ label: "bucket" }, { label: "calls", fill: "#1f77b466", stroke: "#1f77b4", paths: bars, points: { show: false } }] },
    [labels.map((_, i) => i), counts], el);
}
`;

export function renderHtmlReport(report: LoadTestReport): string {
  const { script, css } = uPlotAssets();
  const title = `LoadTest5 run ${report.runId}: ${report.settings.users} users, ${report.passed ? "PASS" : "FAIL"}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${css}
body { font: 14px system-ui, sans-serif; margin: 20px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
tr.pass td:first-child { color: #2ca02c; font-weight: bold; } tr.fail td:first-child { color: #d62728; font-weight: bold; } tr.nv td:first-child { color: #ff7f0e; }
#latency { display: flex; flex-wrap: wrap; gap: 12px; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(`Target ${report.target}, started ${report.startedAt}, concert ${report.settings.concertId}, schedule ${report.settings.scheduleId}.`)}</p>
<table>${summaryRows(report)}</table>
${faultSection(report)}
<h2>Integrity audit</h2>
<table>${auditRows(report)}</table>
<h2>Time series (sampled each second)</h2>
<div id="users"></div>
<div id="rates"></div>
<h2>Latency</h2>
<table><tr><th>call</th><th>count</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>${latencyRows(report)}</table>
<div id="latency"></div>
<script type="application/json" id="${REPORT_DATA_ELEMENT_ID}">${scriptSafeJson(report)}</script>
<script>${script}</script>
<script>${DRAW}</script>
</body>
</html>
`;
}
