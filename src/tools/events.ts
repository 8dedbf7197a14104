// Prints the domain events the outbox relay published, one JSON object per line, deduplicated by
// event id (publishing is at least once). Without --follow it prints what the stream holds and
// exits; with --follow it then waits for new events (XREAD BLOCK) until interrupted.
//
// --republish-since TIME puts the events published since TIME back on the stream, from the
// outbox rows (which keep every event), with their original event ids: the repair after Redis
// lost stream entries it had acknowledged (restarted without AOF, failed over to a replica that
// had not caught up). It marks those rows unpublished and relays them itself, in order per
// aggregate, next to any running server's relay; consumers deduplicate on event_id as usual.
//
//   npm run events                 # everything so far
//   npm run events -- --follow     # and keep following
//   npm run events -- --republish-since 2026-11-26T17:00:00Z
//
// Reads REDIS_URL (or REDIS_CLUSTER_NODES) and REDIS_KEY_PREFIX like the server, and for
// --republish-since also DATABASE_URL and EVENT_STREAM_MAX_LEN.

import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, loadConfig, type Config } from "../config.js";
import { ENTITIES } from "../entities.js";
import { closeORM, initORM } from "../platform/db/orm.js";
import { publishOutboxBatch } from "../platform/db/outbox-relay.js";
import {
  connectRedis,
  createRedisClient,
  describeRedis,
  redactUrl,
  type RedisClient,
} from "../platform/redis/client.js";
import { eventStreamKey, fromStreamFields } from "../platform/redis/event-stream.js";
import { environmentHelp, parseCommandLine, usageError } from "./command-line.js";

const PAGE = 500;
const BLOCK_MS = 5000;
/** Duplicates come from one relay batch being sent twice, so a window of recent ids suffices. */
const DEDUPE_WINDOW = 100_000;
const RETRY_MAX_MS = 5000;

type Entry = [id: string, fields: string[]];

function createPrinter() {
  const recent = new Set<string>();
  return (entries: Entry[]) => {
    for (const [streamId, fields] of entries) {
      const event = fromStreamFields(fields);
      if (!event || recent.has(event.eventId)) continue;
      recent.add(event.eventId);
      if (recent.size > DEDUPE_WINDOW) recent.delete(recent.values().next().value!);
      const { eventId, eventType, aggregateType, aggregateId, occurredAt, payload } = event;
      process.stdout.write(
        `${JSON.stringify({ stream_id: streamId, event_id: eventId, event_type: eventType, aggregate_type: aggregateType, aggregate_id: aggregateId, occurred_at: occurredAt, payload })}\n`,
      );
    }
  };
}

/** Prints every entry after `after`; returns the id of the last one read. */
async function printExisting(redis: RedisClient, key: string, print: (entries: Entry[]) => void): Promise<string> {
  let after = "0-0";
  for (;;) {
    const entries = (await redis.xrange(key, `(${after}`, "+", "COUNT", PAGE)) as Entry[];
    print(entries);
    if (entries.length > 0) after = entries.at(-1)![0];
    if (entries.length < PAGE) return after;
  }
}

/**
 * Waits for new entries after `after` and prints them, until interrupted. A Redis outage is
 * waited out (the client reconnects in the background) and following resumes after the last
 * entry printed, so nothing is printed twice and nothing published meanwhile is skipped.
 */
async function follow(
  redis: RedisClient,
  key: string,
  after: string,
  print: (entries: Entry[]) => void,
): Promise<never> {
  let failures = 0;
  for (;;) {
    let reply: [string, Entry[]][] | null;
    try {
      reply = (await redis.xread("COUNT", PAGE, "BLOCK", BLOCK_MS, "STREAMS", key, after)) as
        [string, Entry[]][] | null;
    } catch (error) {
      const delayMs = Math.min(RETRY_MAX_MS, 250 * 2 ** Math.min(failures++, 5));
      process.stderr.write(
        `events: reading the stream failed (${(error as Error).message}); retrying in ${delayMs} ms\n`,
      );
      await sleep(delayMs);
      continue;
    }
    if (failures > 0) process.stderr.write("events: following again\n");
    failures = 0;
    const entries = reply?.[0]?.[1] ?? [];
    print(entries);
    if (entries.length > 0) after = entries.at(-1)![0];
  }
}

const USAGE = `usage: npm run events -- [--follow | --republish-since TIME]

Prints the domain events the outbox relay published to the Redis event stream, one JSON object
per line (deduplicated by event_id), and exits: without --follow it does not wait for more.

  --follow                 then keep waiting for new events and print them, until Ctrl-C
  --republish-since TIME   instead, put the events published since TIME back on the stream from the
                           PostgreSQL outbox (after Redis lost entries it had acknowledged), and
                           exit; TIME is ISO 8601 with a zone, e.g. 2026-11-26T17:00:00Z
  --help, -h               this text

${environmentHelp(["REDIS_URL", "REDIS_CLUSTER_NODES", "REDIS_KEY_PREFIX", "DATABASE_URL", "EVENT_STREAM_MAX_LEN"])}
  (DATABASE_URL and EVENT_STREAM_MAX_LEN only for --republish-since)`;

/** A time with an explicit zone: a local time would mean something else on every machine. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseOptions(): { follow: boolean; republishSince?: Date } {
  const values = parseCommandLine("events", USAGE, {
    follow: { type: "boolean", default: false },
    "republish-since": { type: "string" },
  });
  const since = values["republish-since"];
  if (since === undefined) return { follow: values.follow };
  if (values.follow) usageError("events", "--republish-since and --follow are separate runs");
  const time = ISO_TIME.test(since) ? new Date(since) : undefined;
  if (!time || Number.isNaN(time.getTime()))
    usageError("events", `--republish-since must be an ISO 8601 time with a zone, got "${since}"`);
  return { follow: false, republishSince: time };
}

/** Rows relayed per transaction, as the server's relay does. */
const REPUBLISH_BATCH = 500;
/** How long republishing waits for rows that other relays hold before it gives up on them. */
const REPUBLISH_IDLE_LIMIT_MS = 30_000;

/**
 * Marks the outbox rows published since `since` unpublished and relays them; returns the exit
 * status. Rows this run cannot publish (Redis down, rows a server's relay holds) stay
 * unpublished, so a running server's relay finishes them: nothing is dropped either way.
 */
async function republish(
  config: Config,
  redis: RedisClient,
  since: Date,
  progress: { marked: boolean },
): Promise<number> {
  const { orm } = await initORM({ databaseUrl: config.databaseUrl, entities: ENTITIES, poolMax: 2 });
  try {
    const connection = orm.em.getConnection();
    const [reset] = await connection.execute<[{ total: number; last: string | null }]>(
      "with reset as (update outbox set published_at = null where published_at >= ? returning id) select count(*)::int as total, max(id)::text as last from reset",
      [since],
    );
    progress.marked = true;
    const { total, last } = reset;
    const events = `${total} event${total === 1 ? "" : "s"}`;
    process.stderr.write(`events: ${events} published since ${since.toISOString()} marked for publishing again\n`);
    const options = {
      streamKey: eventStreamKey(config.redisKeyPrefix),
      batchSize: REPUBLISH_BATCH,
      maxLen: config.eventStreamMaxLen,
    };
    let published = 0;
    let lastReportMs = performance.now();
    let idleSinceMs = 0;
    // Until none of the marked rows is left (new events, which this relay may take along, do not
    // keep it running): some may be held by another relay or wait for an earlier event of their aggregate.
    while (last !== null) {
      const batch = await publishOutboxBatch(orm, redis, options);
      published += batch;
      if (performance.now() - lastReportMs > 1000) {
        lastReportMs = performance.now();
        process.stderr.write(`events: republished ${published} of ${total}\n`);
      }
      const [{ left }] = await connection.execute<[{ left: number }]>(
        "select count(*)::int as left from outbox where published_at is null and id <= ?",
        [last],
      );
      if (left === 0) break;
      if (batch > 0) {
        idleSinceMs = 0;
        continue;
      }
      idleSinceMs ||= performance.now();
      if (performance.now() - idleSinceMs > REPUBLISH_IDLE_LIMIT_MS) {
        process.stderr.write(
          `events: ${left} of the events are still unpublished, held by another relay; a running server publishes them\n`,
        );
        return 1;
      }
      await sleep(200);
    }
    process.stdout.write(
      `events: ${total === 1 ? "the event" : `the ${events}`} published since ${since.toISOString()} ${total === 1 ? "is" : "are"} on the stream again (${published} relayed by this run, new events included)\n`,
    );
    return 0;
  } finally {
    await closeORM(orm);
  }
}

async function main(): Promise<void> {
  const values = parseOptions();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`events: ${error.message}\n`);
    process.exit(2);
  }
  // The blocking read must outlive its BLOCK time; the server's clients time out far sooner.
  const redis = createRedisClient({
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes,
    name: `concert-booking:events:${process.pid}`,
    commandTimeoutMs: BLOCK_MS + 5000,
  });
  try {
    await connectRedis(redis, describeRedis(config.redisUrl, config.redisClusterNodes));
  } catch (error) {
    process.stderr.write(`events: ${(error as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.on("error", () => process.exit(0)); // e.g. piped into `head`
  if (values.republishSince) {
    let status: number;
    const progress = { marked: false };
    try {
      status = await republish(config, redis, values.republishSince, progress);
    } catch (error) {
      const { message, code } = error as Error & { code?: string };
      if (progress.marked) {
        process.stderr.write(
          `events: republishing stopped (${message}); the events not yet published stay queued for the relay\n`,
        );
      } else {
        const hint = code === "42P01" ? ": apply the migrations first (npm run migrate)" : "";
        process.stderr.write(
          `events: cannot republish from PostgreSQL at ${redactUrl(config.databaseUrl)} (${message})${hint}; nothing was changed\n`,
        );
      }
      status = 1;
    }
    redis.disconnect();
    process.exit(status);
  }
  const key = eventStreamKey(config.redisKeyPrefix);
  const print = createPrinter();
  const last = await printExisting(redis, key, print);
  if (!values.follow) {
    await redis.quit();
    return;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      redis.disconnect();
      process.exit(0);
    });
  }
  await follow(redis, key, last, print);
}

await main();
