// The front door alone: N users join at once against src/main.ts in a process of its own, each
// opens WatchQueue right after its JoinQueue answer and leaves as soon as it is ACTIVE (no
// booking), so the figures are the waiting room's: JoinQueue latency, WatchQueue first-message
// delay, and the time from the first join to the last acknowledgement, with the CPU seconds the
// server, PostgreSQL, Redis and the generator spent until then (bench/process-cpu.ts). --no-watch
// stops after the joins: the join path alone. With --cpu-prof-dir the server writes a V8 CPU
// profile there when it stops (node --cpu-prof through NODE_OPTIONS). The same crowd first meets
// a bare grpc-js server that answers each join at once and says ACTIVE 2 s into each stream
// (bench/transport/server.ts "bare"): the transport's floor on this machine, measured in the same
// run (--no-baseline skips it). The crowd's client is the load test's (src/loadtest/clients.ts).
// --rounds N sends the crowd N times to each server, new users each time: the first meets a cold
// server (and client), the later ones code V8 has optimized, as a server in service is.
//
//   node --import tsx bench/join-burst.ts [--users 10000] [--connections 32] [--max-active 2000]
//     [--admission-interval-ms 100] [--no-watch] [--no-baseline] [--rounds N] [--cpu-prof-dir DIR]
//     [--workers N]

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { QueueState } from "../gen/concert/v1/queue_pb.js";
import { loadConfig } from "../src/config.js";
import { createFreshDatabase, seedTarget, startLocalServer } from "../src/loadtest/local-server.js";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { createHttp2Clients } from "../src/loadtest/clients.js";
import { startServer } from "./transport/child.js";
import { percentile } from "../src/loadtest/latency-stats.js";
import { createCpuMeter, formatCpu, type CpuSnapshot } from "./process-cpu.js";

const { values } = parseArgs({
  options: {
    users: { type: "string", default: "10000" },
    connections: { type: "string", default: "32" },
    "max-active": { type: "string", default: "2000" },
    "admission-interval-ms": { type: "string", default: "100" },
    "cpu-prof-dir": { type: "string" },
    workers: { type: "string", default: "1" },
    watch: { type: "boolean", default: true },
    baseline: { type: "boolean", default: true },
    rounds: { type: "string", default: "1" },
  },
  allowNegative: true,
});
const users = Number(values.users);
const rounds = Number(values.rounds);
if (!Number.isInteger(users) || users < 1 || !Number.isInteger(rounds) || rounds < 1)
  throw new Error("--users and --rounds must be positive integers");
const config = loadConfig(process.env);
const runId = randomBytes(3).toString("hex");
const prefix = `jb:${runId}:`;
const database = await createFreshDatabase(config.databaseUrl, runId);
const summary = (label: string, samples: number[]) => {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => Math.round(percentile(sorted, p));
  return `${label.padEnd(26)} n=${samples.length} p50 ${at(50)} p99 ${at(99)} max ${Math.round(sorted.at(-1) ?? 0)} ms`;
};
const redisPort = Number(new URL(config.redisUrl).port || 6379);
const dbName = new URL(database.url).pathname.slice(1);

/** Sends the crowd at `target` (each user: join, then watch until ACTIVE, then leave) and prints what it saw. */
async function runCrowd(label: string, target: string, concertId: string, round: number): Promise<void> {
  const clients = createHttp2Clients(target, Number(values.connections));
  const joins: number[] = [];
  const firstMessages: number[] = [];
  const failures = new Map<string, number>();
  const meter = createCpuMeter({ serverPort: Number(target.split(":").at(-1)), redisPort, database: dbName });
  const atStart = meter.snapshot();
  let atLastAck: CpuSnapshot | undefined;
  let atLastFirstMessage: CpuSnapshot | undefined;
  const started = performance.now();
  let lastAck = 0;
  await Promise.all(
    Array.from({ length: users }, async (_, i) => {
      const { queue } = clients.pool[i % clients.pool.length]!;
      try {
        const sent = performance.now();
        const { token } = await queue.joinQueue(
          { concertId, userId: `jb-${runId}-${round}-${i}` },
          { deadlineMs: 60_000 },
        );
        const acked = performance.now();
        joins.push(acked - sent);
        lastAck = Math.max(lastAck, acked);
        if (joins.length === users) atLastAck = meter.snapshot();
        if (!values.watch) return;
        const opened = performance.now();
        let first = true;
        for await (const message of queue.watchQueue({ token }, { deadlineMs: 120_000 })) {
          if (first) firstMessages.push(performance.now() - opened);
          if (first && firstMessages.length === users) atLastFirstMessage = meter.snapshot();
          first = false;
          if (message.status?.state === QueueState.ACTIVE) break;
        }
        await queue.leaveQueue({ token }, { deadlineMs: 60_000 });
      } catch (error) {
        const key = (error as Error).message.slice(0, 80);
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    }),
  );
  console.log(`${label}, round ${round} of ${rounds}: ${users} users, ${values.connections} connections`);
  console.log(summary("JoinQueue", joins));
  console.log(summary("WatchQueue first message", firstMessages));
  console.log(`last join acknowledged ${Math.round(lastAck - started)} ms after the first was sent`);
  if (atLastAck) console.log(formatCpu("until the last join's answer", atStart, atLastAck, users));
  if (atLastAck && atLastFirstMessage)
    console.log(formatCpu("then until the last first message", atLastAck, atLastFirstMessage, users));
  if (values.watch) console.log(`everyone ACTIVE and gone after ${Math.round(performance.now() - started)} ms`);
  for (const [message, count] of failures) console.log(`failed ${count}: ${message}`);
  clients.close();
}

try {
  const { concertId } = await seedTarget(database.url, 100);
  if (values.baseline) {
    const bare = await startServer("bare", { core: "0-1" });
    try {
      const port = bare.ports.grpc!;
      for (let round = 1; round <= rounds; round++)
        await runCrowd("bare grpc-js (baseline)", `127.0.0.1:${port}`, concertId, round);
    } finally {
      await bare.stop();
    }
  }
  const server = await startLocalServer({
    databaseUrl: database.url,
    redisUrl: config.redisUrl,
    redisKeyPrefix: prefix,
    maxActiveUsers: Number(values["max-active"]),
    admissionIntervalMs: Number(values["admission-interval-ms"]),
    workers: Number(values.workers),
    logLevel: (process.env.SERVER_LOG_LEVEL ?? "warn") as "warn",
    childProcess: true,
    env: values["cpu-prof-dir"]
      ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values["cpu-prof-dir"]} --cpu-prof-interval=500` }
      : {},
  });
  try {
    for (let round = 1; round <= rounds; round++)
      await runCrowd(`the waiting room, cap ${values["max-active"]}`, server.target, concertId, round);
  } finally {
    await server.stop();
  }
} finally {
  await database.drop();
  await removeRedisKeys(config.redisUrl, prefix, config.redisClusterNodes);
}
