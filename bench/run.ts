// `npm run bench [-- --suite transport|queue|booking|all] [--duration S] [--concurrency N]
//  [--rounds N] [--streams N] [--workers LIST] [--profile] [--out FILE]`
// Runs the chosen suites, prints markdown tables and writes them to reports/ (git-ignored).
// The queue and booking suites live in bench/queue-bench.ts (runQueueBench) and
// bench/booking-bench.ts (runBookingBench); they are loaded only if present.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { machineHeader, machineInfo, markdownTable, type BenchTable, type SuiteOptions } from "./report.js";
import { runCallsBench } from "./calls-bench.js";
import { runTransportBench } from "./transport/suite.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITES = ["transport", "queue", "booking", "calls"] as const;
type Suite = (typeof SUITES)[number];

const USAGE = `usage: npm run bench -- [--suite ${[...SUITES, "all"].join("|")}] [--duration SECONDS] [--concurrency N] [--rounds N] [--streams N] [--workers LIST] [--profile] [--out FILE]
  --suite        suites to run, comma-separated (default all)
  --duration     seconds per measurement (default 5)
  --concurrency  requests in flight (default 64)
  --rounds       interleaved runs per figure; the median is reported (default 3)
  --streams      open server streams in the idle-stream measurement (default 5000)
  --workers      server process counts the calls suite compares, comma-separated (default 1,2)
  --profile      also CPU-profile the grpc-js adapter and list its top self-time frames
  --out          markdown output file (default reports/bench-<time>.md)`;

/** What a plugged-in suite may return: tables, one table, or ready markdown. */
type SuiteResult = BenchTable[] | BenchTable | string | { markdown: string };
type SuiteRunner = (options: SuiteOptions & { rounds: number }) => Promise<SuiteResult>;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) fail(`--${name} must be a positive integer, got "${text}"`);
  return value;
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        suite: { type: "string", default: "all" },
        duration: { type: "string", default: "5" },
        concurrency: { type: "string", default: "64" },
        rounds: { type: "string", default: "3" },
        streams: { type: "string", default: "5000" },
        workers: { type: "string", default: "1,2" },
        profile: { type: "boolean", default: false },
        out: { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const names = parsed.suite.split(",").map((s) => s.trim());
  const suites = names.includes("all") ? [...SUITES] : names;
  for (const s of suites) if (!(SUITES as readonly string[]).includes(s)) fail(`unknown suite "${s}"`);
  return {
    suites: suites as Suite[],
    durationSec: positiveInteger("duration", parsed.duration),
    concurrency: positiveInteger("concurrency", parsed.concurrency),
    rounds: positiveInteger("rounds", parsed.rounds),
    idleStreams: positiveInteger("streams", parsed.streams),
    workers: parsed.workers.split(",").map((w) => positiveInteger("workers", w.trim())),
    profile: parsed.profile,
    out:
      parsed.out ??
      join(HERE, "..", "reports", `bench-${new Date().toISOString().replaceAll(":", "-").slice(0, 19)}.md`),
  };
}

/** The runner exported by bench/<file>, or undefined while that file has not landed yet. */
async function pluggedSuite(file: string, exportName: string): Promise<SuiteRunner | undefined> {
  const path = join(HERE, file);
  if (!existsSync(path)) return undefined;
  const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const runner = module[exportName];
  if (typeof runner !== "function") throw new Error(`bench/${file} does not export ${exportName}()`);
  return runner as SuiteRunner;
}

function toMarkdown(result: SuiteResult): string {
  if (typeof result === "string") return result;
  if ("markdown" in result) return result.markdown;
  return (Array.isArray(result) ? result : [result]).map(markdownTable).join("\n");
}

const options = parseOptions();
const log = (line: string) => process.stderr.write(`${line}\n`);
const suiteOptions: SuiteOptions = { durationSec: options.durationSec, concurrency: options.concurrency, log };
const info = machineInfo();
const sections: string[] = [];
for (const suite of options.suites) {
  log(`bench: suite ${suite}`);
  let result: SuiteResult | undefined;
  if (suite === "transport") {
    result = await runTransportBench({
      ...suiteOptions,
      rounds: options.rounds,
      idleStreams: options.idleStreams,
      profile: options.profile,
    });
  } else if (suite === "calls") {
    result = await runCallsBench({ ...suiteOptions, rounds: options.rounds, workers: options.workers });
  } else {
    const runner = await pluggedSuite(`${suite}-bench.ts`, suite === "queue" ? "runQueueBench" : "runBookingBench");
    if (!runner) {
      log(`bench: bench/${suite}-bench.ts is not there yet; skipping the ${suite} suite`);
      sections.push(`## ${suite}\n\n_skipped: bench/${suite}-bench.ts does not exist yet_\n`);
      continue;
    }
    result = await runner({ ...suiteOptions, rounds: options.rounds });
  }
  sections.push(`## ${suite}\n\n${toMarkdown(result)}`);
}
const commandLine = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(", ");
const markdown = `# Benchmarks\n\n${machineHeader(info, load, commandLine)}\n\n${sections.join("\n")}`;
mkdirSync(dirname(options.out), { recursive: true });
writeFileSync(options.out, markdown);
process.stdout.write(markdown);
log(`bench: written to ${options.out}`);
// Clients and timers of the suites are closed; exit anyway rather than wait on a stray handle.
process.exit(0);
