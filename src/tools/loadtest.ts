// `npm run loadtest`: the LoadTest5 scenario from the command line. Options and usage live in
// src/loadtest/cli-options.ts, the run itself in runLoadTest (shared with the CI test).

import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { ConfigError } from "../config.js";
import { redactUrl } from "../platform/redis/client.js";
import { parseCli, USAGE, UsageError, type CliOptions } from "../loadtest/cli-options.js";
import { usageError } from "./command-line.js";
import type { FaultEnvironment } from "../loadtest/fault-environment.js";
import { formatFaultSpec } from "../loadtest/faults.js";
import type { LocalServer } from "../loadtest/local-server.js";
import { createProgressLine } from "../loadtest/progress-line.js";
import { removeRedisKeys } from "../loadtest/redis-cleanup.js";
import { writeReportFiles } from "../loadtest/report-files.js";
import { formatReport } from "../loadtest/report-text.js";
import { runLoadTest } from "../loadtest/run-load-test.js";
import type { RecordedWaits } from "../loadtest/wait-accuracy.js";
import { estimateTracePaths } from "../loadtest/wait-replay.js";

const log = (line: string) => process.stderr.write(`loadtest: ${line}\n`);

async function estimateTraceFiles(dir: string) {
  await mkdir(dir, { recursive: true });
  return estimateTracePaths(dir);
}

/**
 * --warm-up: the same crowd, smaller, through the server and this generator on another concert,
 * unaudited and unreported: a flash crowd meets servers that have been serving, whose code V8
 * has compiled, and the measured concert's line stays new to them.
 */
async function warmUp(options: CliOptions["run"], target: { concertId: string; scheduleId: string }, users: number) {
  log(`warm-up: ${users} users on concert ${target.concertId}…`);
  const warm = await runLoadTest({
    ...options,
    ...target,
    users,
    concurrency: Math.min(options.concurrency, users),
    runId: `${options.runId!.slice(0, 15)}w`,
    skipAudit: true,
    log: () => undefined,
  });
  const failed = warm.outcome.usersFailed;
  log(`warm-up: done in ${(warm.usersWallMs / 1000).toFixed(1)} s${failed > 0 ? `, ${failed} users failed` : ""}`);
}

async function run(cli: CliOptions): Promise<number> {
  const options = { ...cli.run };
  let database: { url: string; drop(): Promise<void> } | undefined;
  let server: LocalServer | undefined;
  let faults: FaultEnvironment | undefined;
  let usersWaits: RecordedWaits | undefined;
  // What the run started or created goes away however it ends: normally, on an error, or on
  // Ctrl-C / SIGTERM (then the run itself is abandoned and the exit status is 130 / 143).
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      await server?.stop().catch((error: Error) => log(`stopping the server failed: ${error.message}`));
      await faults?.close().catch((error: Error) => log(`stopping the fault helpers failed: ${error.message}`));
      if (database && !cli.keepDatabase)
        await database.drop().catch((error: Error) => log(`dropping the database failed: ${error.message}`));
      // The run's own key prefix (--start-server without --redis-key-prefix) holds nothing anyone else reads.
      if (cli.ownRedisPrefix && !cli.keepDatabase && !faults?.privateRedis) {
        await removeRedisKeys(options.redisUrl, options.redisKeyPrefix, options.redisClusterNodes).catch(
          (error: Error) => log(`removing Redis keys failed: ${error.message}`),
        );
      }
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the run and cleaning up`);
    void cleanUp().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    // Imported only when asked for: they load the server's ORM, entities and migrations, whose
    // compilation would be charged to the generator of every run against an outside server.
    const local = () => import("../loadtest/local-server.js");
    if (cli.freshDatabase) {
      database = await (await local()).createFreshDatabase(options.databaseUrl, options.runId!);
      options.databaseUrl = database.url;
      log(`fresh database ${new URL(database.url).pathname.slice(1)}`);
    }
    let warmUpTarget: { concertId: string; scheduleId: string } | undefined;
    if (cli.seed) {
      const ids = await (await local()).seedTarget(options.databaseUrl, cli.seats, { warmUp: cli.warmUpUsers > 0 });
      if (!options.concertId)
        Object.assign(options, { concertId: ids.concertId, scheduleId: options.scheduleId ?? ids.scheduleId });
      log(`seeded concert ${ids.concertId}, schedule ${ids.scheduleId} with ${cli.seats} seats`);
      warmUpTarget = ids.warmUp;
    }
    if (cli.faults.length > 0) {
      faults = await (await import("../loadtest/fault-environment.js")).prepareFaultEnvironment(cli.faults, options);
      options.redisUrl = faults.redisUrl;
      log(
        `faults ${cli.faults.map(formatFaultSpec).join(", ")}: server on ${redactUrl(faults.serverDatabaseUrl)} and ${faults.redisUrl}`,
      );
    }
    const trace = cli.traceEstimatesDir === undefined ? undefined : await estimateTraceFiles(cli.traceEstimatesDir);
    if (cli.startServer) {
      server = await (
        await local()
      ).startLocalServer({
        databaseUrl: faults?.serverDatabaseUrl ?? options.databaseUrl,
        redisUrl: options.redisUrl,
        redisKeyPrefix: options.redisKeyPrefix,
        maxActiveUsers: options.maxActiveUsers,
        admissionIntervalMs: cli.admissionIntervalMs,
        expectedSessionSeconds: cli.expectedSessionSeconds,
        workers: cli.workers,
        logLevel: cli.serverLogLevel,
        ...(trace && { estimateTraceFile: trace.serverFile }),
      });
      options.target = server.target;
      log(
        `server on ${server.target} (MAX_ACTIVE_USERS=${options.maxActiveUsers}, ADMISSION_INTERVAL_MS=${cli.admissionIntervalMs}, EXPECTED_SESSION_SECONDS=${cli.expectedSessionSeconds}, workers ${cli.workers})`,
      );
    }
    if (warmUpTarget) await warmUp(options, warmUpTarget, cli.warmUpUsers);
    const progress = createProgressLine(process.stderr);
    const report = await runLoadTest({
      ...options,
      faults: server && faults?.faults(server),
      warmUpUsers: cli.warmUpUsers,
      onProgress: progress.update,
      log,
      ...(trace && { onWaits: (recorded: RecordedWaits) => (usersWaits = recorded) }),
    }).finally(() => progress.finish());
    if (trace && usersWaits) {
      await writeFile(trace.usersFile, JSON.stringify(usersWaits));
      // The server's part is complete once the server stopped (cleanUp).
      log(
        `estimate trace in ${cli.traceEstimatesDir}: replay with npm run replay-estimates -- --trace ${cli.traceEstimatesDir}`,
      );
    }
    process.stdout.write(formatReport(report));
    await writeReportFiles(report, cli);
    return report.passed ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    await cleanUp();
  }
}

let cli: CliOptions | undefined;
try {
  cli = parseCli(process.argv.slice(2), process.env, randomBytes(3).toString("hex"));
} catch (error) {
  if (error instanceof UsageError) usageError("loadtest", error.message);
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`loadtest: ${error.message}\n`);
  process.exit(2);
}
if (!cli) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
try {
  process.exit(await run(cli));
} catch (error) {
  log(`fatal: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(3);
}
