// Publishes committed outbox rows to the Redis event stream, at least once and in id order per
// aggregate. Each batch is one transaction: lock unpublished rows (FOR UPDATE SKIP LOCKED, so
// relays in other processes take other rows instead of waiting), XADD them in one pipeline (one
// stream key: one hash slot on a Redis Cluster), then mark them published. A crash before XADD
// leaves the rows for the next relay; a crash between XADD and COMMIT publishes them again,
// which consumers absorb by deduplicating on event_id.

import type { EntityManager } from "@mikro-orm/postgresql";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { startPeriodicTask, type PeriodicTask } from "../periodic-task.js";
import type { RedisClient } from "../redis/client.js";
import type { SideConnection } from "./side-connection.js";
import { toStreamFields } from "../redis/event-stream.js";
import type { ORM } from "./orm.js";
import { Outbox } from "./outbox.entity.js";

interface OutboxRow {
  id: string;
  event_id: string;
  event_type: string;
  aggregate_type: string;
  aggregate_id: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

// The NOT EXISTS keeps per-aggregate order across processes: while an earlier event of the same
// aggregate is unpublished (possibly locked by another relay, or earlier in this very batch), a
// later one waits for a following batch. Aggregates have few events (paid, refunded), so that
// costs little.
const LOCK_BATCH = `
  select o.id, o.event_id, o.event_type, o.aggregate_type, o.aggregate_id, o.payload, o.created_at
  from outbox o
  where o.published_at is null
    and not exists (
      select 1 from outbox earlier
      where earlier.published_at is null
        and earlier.aggregate_type = o.aggregate_type
        and earlier.aggregate_id = o.aggregate_id
        and earlier.id < o.id)
  order by o.id
  limit ?
  for update of o skip locked`;

export interface RelayOptions {
  streamKey: string;
  batchSize: number;
  /**
   * Entries the stream keeps: each XADD trims it to about this many (MAXLEN ~, which trims whole
   * radix-tree nodes, so cheaply and never below the limit). 0 or absent: never trims. A consumer
   * further behind than this misses the oldest events in Redis; the outbox rows keep them all.
   */
  maxLen?: number;
}

/** Publishes one batch; resolves to the number of rows published (0 when nothing was due). */
export async function publishOutboxBatch(orm: ORM, redis: RedisClient, options: RelayOptions): Promise<number> {
  return orm.em.fork().transactional(async (em: EntityManager) => {
    const rows = await em.execute<OutboxRow[]>(LOCK_BATCH, [options.batchSize]);
    if (rows.length === 0) return 0;
    const pipeline = redis.pipeline();
    const trim = options.maxLen ? (["MAXLEN", "~", options.maxLen] as const) : ([] as const);
    for (const row of rows) {
      pipeline.xadd(
        options.streamKey,
        ...trim,
        "*",
        ...toStreamFields({
          eventId: row.event_id,
          eventType: row.event_type,
          aggregateType: row.aggregate_type,
          aggregateId: row.aggregate_id,
          occurredAt: new Date(row.created_at).toISOString(),
          payload: row.payload,
        }),
      );
    }
    const results = (await pipeline.exec()) ?? [];
    const failure = results.find(([error]) => error)?.[0];
    // Throwing rolls back: every row of the batch stays unpublished and is sent again.
    if (failure || results.length !== rows.length) throw failure ?? new Error("redis pipeline returned no results");
    await em.nativeUpdate(Outbox, { id: { $in: rows.map((r) => r.id) } }, { publishedAt: new Date() });
    return rows.length;
  });
}

export interface OutboxRelayOptions extends RelayOptions {
  orm: ORM;
  redis: RedisClient;
  intervalMs: number;
  /** How long after a nudge (a committed payment) the relay runs, gathering the commits of that window into one batch. */
  nudgeDelayMs: number;
  logger: Logger;
  /** Where the relay's metrics go (published events, failed runs, the backlog read at each scrape). */
  registry: Registry;
  /** A connection outside the pool for the backlog read at scrape time (bounded by its timeouts). */
  metricsConnection: SideConnection;
}

/** Counted up to here: a scrape stays one short index scan however far the relay fell behind. */
const BACKLOG_COUNT_LIMIT = 100_000;
/** Scrapes within this long of a backlog read share it. */
const BACKLOG_READ_REUSE_MS = 1000;

const BACKLOG_SQL = `
  select (select count(*) from (select 1 from outbox where published_at is null limit ${BACKLOG_COUNT_LIMIT}) b)::int as pending,
         coalesce((select extract(epoch from now() - created_at) from outbox where published_at is null order by id limit 1), 0)::float8 as age`;

/**
 * Two gauges read from PostgreSQL at scrape time (the backlog of every process's relay, not this
 * one's), with one statement shared by concurrent and close scrapes. A read that fails or times
 * out keeps the last values: the outage itself shows in health and in the failure counters.
 */
function registerBacklogGauges(registry: Registry, connection: SideConnection): void {
  let last: { at: number; read: Promise<{ pending: number; age: number } | undefined> } | undefined;
  const backlog = () => {
    if (!last || performance.now() - last.at > BACKLOG_READ_REUSE_MS) {
      last = {
        at: performance.now(),
        read: connection.query<{ pending: number; age: number }>(BACKLOG_SQL).then(
          (rows) => rows[0],
          () => undefined,
        ),
      };
    }
    return last.read;
  };
  new Gauge({
    name: "outbox_pending_events",
    help: `Committed events not yet published (counted up to ${BACKLOG_COUNT_LIMIT})`,
    registers: [registry],
    async collect() {
      const read = await backlog();
      if (read) this.set(read.pending);
    },
  });
  new Gauge({
    name: "outbox_oldest_pending_seconds",
    help: "Age of the oldest committed event not yet published (0 when none): how far the event stream lags behind payments",
    registers: [registry],
    async collect() {
      const read = await backlog();
      if (read) this.set(Math.max(0, read.age));
    },
  });
}

/** The relay loop: polls every interval (rows of other processes, rows left by a crash) and runs at once when nudged after a commit. */
export function startOutboxRelay(options: OutboxRelayOptions): PeriodicTask {
  const { orm, redis, logger, registry, metricsConnection, ...relay } = options;
  const published = new Counter({
    name: "outbox_events_published_total",
    help: "Outbox events this process's relay published to the Redis event stream",
    registers: [registry],
  });
  const failures = new Counter({
    name: "outbox_relay_failures_total",
    help: "Relay runs that failed (PostgreSQL or Redis unavailable); their events stay in the outbox and go out later",
    registers: [registry],
  });
  registerBacklogGauges(registry, metricsConnection);
  return startPeriodicTask({
    name: "outbox-relay",
    intervalMs: options.intervalMs,
    nudgeDelayMs: options.nudgeDelayMs,
    logger,
    onFailure: () => failures.inc(),
    // The payments of the last nudge window go out at shutdown; a failure leaves them in the outbox.
    finishNudgeOnStop: true,
    run: async () => {
      const count = await publishOutboxBatch(orm, redis, relay);
      published.inc(count);
      return count === relay.batchSize;
    },
  });
}
