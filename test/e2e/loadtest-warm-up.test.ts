// `npm run loadtest -- --warm-up N` through the CLI as documented: the warm-up's users run first
// on demo concert 2, the measured users then on concert 1, and the report and its audit are the
// measured run's alone.

import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadTestReport } from "../../src/loadtest/run-load-test.js";
import { ADMIN_URL } from "../helpers/database.js";

const CLI = new URL("../../src/tools/loadtest.ts", import.meta.url).pathname;

test("--warm-up runs its users on another concert first; the report and audit are the measured run's", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "loadtest-warm-up-"));
  try {
    const jsonFile = join(dir, "report.json");
    const args = ["--start-server", "--fresh-database", "--database-url", ADMIN_URL];
    args.push("--users", "60", "--warm-up", "40", "--arrival", "burst", "--seats", "500", "--max-active", "20");
    args.push("--admission-interval-ms", "100", "--connections", "4", "--timeout", "120", "--json", jsonFile);
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let [stdout, stderr] = ["", ""];
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    t.is(code, 0, `${stdout}\n${stderr}`);
    const report = JSON.parse(await readFile(jsonFile, "utf8")) as LoadTestReport;
    const warmConcert = /warm-up: 40 users on concert (\S+?)…/.exec(stderr)?.[1];
    t.truthy(warmConcert, stderr);
    t.regex(stderr, /warm-up: done in [\d.]+ s\n/);
    t.not(warmConcert, report.settings.concertId);
    t.is(report.settings.warmUpUsers, 40);
    t.regex(stdout, /after a warm-up of 40 users on another concert/);
    t.is(report.outcome.tokensIssued, 60);
    t.is(report.outcome.usersFailed, 0);
    for (const check of report.audit!.checks) t.is(check.status, "pass", `${check.name}: ${check.detail}`);
    t.true(report.passed);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
