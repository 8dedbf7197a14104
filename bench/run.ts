// `npm run bench -- [options]` (`--help` lists them).
// Runs the chosen suites, prints markdown tables and writes them to reports/ (git-ignored).
// The queue and booking suites live in bench/queue-bench.ts (runQueueBench) and
// bench/booking-bench.ts (runBookingBench); they are loaded only if present.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { environmentHelp, parseCommandLine, usageError } from "../src/tools/command-line.js";
import { ADMIN_URL } from "../test/helpers/database.js";
import { machineHeader, machineInfo, markdownTable, type BenchTable, type SuiteOptions } from "./report.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITES = ["transport", "queue", "booking", "calls"] as const;
type Suite = (typeof SUITES)[number];

const USAGE = `usage: npm run bench -- [options]

Runs the chosen suites, prints markdown tables and writes them to --out. Each suite starts what
it measures (servers, scratch databases next to TEST_PG_ADMIN_URL, Redis keys under a prefix of
its own) and removes it afterwards.

  --suite LIST       ${[...SUITES, "all"].join(", ")}; comma-separated (all)
  --duration S       seconds per measurement (5)
  --concurrency N    requests in flight (64)
  --rounds N         interleaved runs per figure; the median is reported (3)
  --streams N        open server streams in the idle-stream measurement (5000)
  --workers LIST     server process counts the calls suite compares, comma-separated (1,2)
  --profile          also CPU-profile the grpc-js adapter and list its top self-time frames
  --out FILE         markdown output file (reports/bench-<time>.md)
  --help, -h         this text

${environmentHelp(["REDIS_URL"], {
  TEST_PG_ADMIN_URL: `a database of the PostgreSQL to use, as the tests read it (in use: ${ADMIN_URL})`,
})}`;

/** What a plugged-in suite may return: tables, one table, or ready markdown. */
type SuiteResult = BenchTable[] | BenchTable | string | { markdown: string };
type SuiteRunner = (options: SuiteOptions & { rounds: number }) => Promise<SuiteResult>;

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) usageError("bench", `--${name} must be a positive integer, got "${text}"`);
  return value;
}

function parseOptions() {
  const parsed = parseCommandLine("bench", USAGE, {
    suite: { type: "string", default: "all" },
    duration: { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    streams: { type: "string", default: "5000" },
    workers: { type: "string", default: "1,2" },
    profile: { type: "boolean", default: false },
    out: { type: "string" },
  });
  const names = parsed.suite.split(",").map((s) => s.trim());
  const suites = names.includes("all") ? [...SUITES] : names;
  for (const s of suites) if (!(SUITES as readonly string[]).includes(s)) usageError("bench", `unknown suite "${s}"`);
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
// Loaded after the command line is parsed: --help and a usage error need none of the suites.
const { runCallsBench } = await import("./calls-bench.js");
const { runTransportBench } = await import("./transport/suite.js");
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
