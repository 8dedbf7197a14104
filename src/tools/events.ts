// Prints the domain events the outbox relay published, one JSON object per line, deduplicated by
// event id (publishing is at least once). Without --follow it prints what the stream holds and
// exits; with --follow it then waits for new events (XREAD BLOCK) until interrupted.
//
//   npm run events                 # everything so far
//   npm run events -- --follow     # and keep following
//
// Reads REDIS_URL (or REDIS_CLUSTER_NODES) and REDIS_KEY_PREFIX like the server.

import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.js";
import { connectRedis, createRedisClient, describeRedis, type RedisClient } from "../platform/redis/client.js";
import { eventStreamKey, fromStreamFields } from "../platform/redis/event-stream.js";

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
async function follow(redis: RedisClient, key: string, after: string, print: (entries: Entry[]) => void): Promise<never> {
  let failures = 0;
  for (;;) {
    let reply: [string, Entry[]][] | null;
    try {
      reply = (await redis.xread("COUNT", PAGE, "BLOCK", BLOCK_MS, "STREAMS", key, after)) as [string, Entry[]][] | null;
    } catch (error) {
      const delayMs = Math.min(RETRY_MAX_MS, 250 * 2 ** Math.min(failures++, 5));
      process.stderr.write(`events: reading the stream failed (${(error as Error).message}); retrying in ${delayMs} ms\n`);
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

const USAGE = "usage: npm run events [-- --follow]";

function parseOptions(): { follow: boolean } {
  try {
    const { values } = parseArgs({ options: { follow: { type: "boolean", default: false }, help: { type: "boolean", default: false } } });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    return { follow: values.follow };
  } catch (error) {
    process.stderr.write(`events: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
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
  const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes, name: `concert-booking:events:${process.pid}`, commandTimeoutMs: BLOCK_MS + 5000 });
  try {
    await connectRedis(redis, describeRedis(config.redisUrl, config.redisClusterNodes));
  } catch (error) {
    process.stderr.write(`events: ${(error as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.on("error", () => process.exit(0)); // e.g. piped into `head`
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
