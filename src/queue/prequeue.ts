// The sale-start prequeue. A concert whose sale opens in the future (the earliest sale_opens_at of
// its published schedules) takes joins into a prequeue: each member's place is fixed at the join
// by the seed committed for the opening (prequeue-order.ts), nobody is admitted before the
// opening, and a member sees PREQUEUE with the opening time and no position. At the opening
// nothing has to move: the members already stand in the line, in the seed's order, ahead of
// every later (FIFO) joiner, so several processes "open" it by merely starting to admit.
//
// Joins decide "prequeue or line" by this process's clock. So that a join decided just before the
// opening can never land behind an admission already made, every process marks the concert's line
// opened in Redis before it first admits into it, and the JOIN script takes a prequeue place only
// while the mark is absent. On the PostgreSQL fallback only the clock decides.

import { systemClock, type Clock } from "../platform/clock.js";
import type { RedisClient } from "../platform/redis/client.js";
import type { AdmissionSettings } from "./admission-settings.js";
import { newSeed, prequeueSeq, seedDigest } from "./prequeue-order.js";
import type { QueueKeys } from "./queue-keys.js";
import type { Query } from "./queue-db.js";
import type { QueueStatus } from "./queue-status.js";

/** A concert's prequeue as its PostgreSQL record says. */
export interface PrequeuePhase {
  opensAtMs: number;
  seedHex: string;
  seedSha256: string;
}

/** What AdminService publishes: the seed only once the opening has passed. */
export interface PrequeueDescription {
  opensAt: Date;
  seedSha256: string;
  /** Set once the opening has passed. */
  seed?: string;
  forming: boolean;
}

export interface Prequeue {
  /** The sequence number a join gets now: the seed's place while the prequeue forms, else undefined (FIFO). */
  placeOf(concertId: string, userId: string): Promise<string | undefined>;
  /** How a concert's statuses read right now: a waiting token is PREQUEUE while the prequeue forms. */
  viewOf(concertId: string): Promise<(status: QueueStatus) => QueueStatus>;
  /** `settings` with admission held while a prequeue forms, and the line marked opened before the first admission. */
  gate(settings: AdmissionSettings): AdmissionSettings;
  /** The record brought in line with the schedules (committing a seed for a new future opening); undefined without a prequeue. */
  describe(concertId: string): Promise<PrequeueDescription | undefined>;
}

/**
 * How long a process reuses what it read of a concert's opening before reading it again: an
 * operator's change reaches it within this and one read. An opening that has passed is never read
 * again (it cannot change).
 */
const PHASE_CACHE_MS = 1000;
const CACHED_CONCERTS = 10_000;

const OPENING = `
select count(*)::int as published, coalesce(bool_or(sale_opens_at is null), false) as at_once,
  floor(extract(epoch from min(sale_opens_at)) * 1000)::float8 as opens_ms
from schedule where concert_id = $1 and state = 'PUBLISHED'`;
const RECORD = `
select seed, seed_sha256, floor(extract(epoch from opens_at) * 1000)::float8 as opens_ms
from prequeue_seed where concert_id = $1`;

interface RecordRow {
  seed: string;
  seed_sha256: string;
  opens_ms: number;
}

/**
 * Reads a concert's prequeue record, first making it follow the schedules while its opening is
 * still ahead: a future opening gets a record (and a seed) if it has none, a moved one moves the
 * record, and an opening pulled to now or before (published on sale at once) opens it now. Once
 * its opening has passed the record never changes: a concert's prequeue opens once. Concurrent
 * callers agree through the primary key and the "still ahead" condition of the update.
 */
export async function syncPrequeue(query: Query, concertId: string, nowMs: number): Promise<PrequeuePhase | undefined> {
  const read = async () => {
    const [row] = await query<RecordRow>(RECORD, [concertId]);
    return row && { opensAtMs: row.opens_ms, seedHex: row.seed, seedSha256: row.seed_sha256 };
  };
  const record = await read();
  if (record && record.opensAtMs <= nowMs) return record;
  const [opening] = await query<{ published: number; at_once: boolean; opens_ms: number | null }>(OPENING, [concertId]);
  const published = (opening?.published ?? 0) > 0;
  const future = published && !opening!.at_once && opening!.opens_ms !== null && opening!.opens_ms > nowMs;
  const target = future ? opening!.opens_ms! : published && record ? nowMs : record?.opensAtMs;
  if (target === undefined) return undefined;
  if (!record) {
    const seed = newSeed();
    await query(
      `insert into prequeue_seed (concert_id, seed, seed_sha256, opens_at) values ($1, $2, $3, to_timestamp($4 / 1000.0))
       on conflict (concert_id) do nothing`,
      [concertId, seed, seedDigest(seed), target],
    );
  } else if (record.opensAtMs !== target) {
    await query(
      `update prequeue_seed set opens_at = to_timestamp($2 / 1000.0) where concert_id = $1 and opens_at > to_timestamp($3 / 1000.0)`,
      [concertId, target, nowMs],
    );
  } else return record;
  return read();
}

export function createPrequeue(deps: { query: Query; redis: RedisClient; keys: QueueKeys; clock?: Clock }): Prequeue {
  const { query, redis, keys } = deps;
  const clock = deps.clock ?? systemClock;
  const now = () => clock().getTime();
  /** The read under way or last made of each concert, and whether it has settled. */
  const cache = new Map<string, { loadedAtMs: number; phase: Promise<PrequeuePhase | undefined>; settled: boolean }>();
  /** The last phase read of each concert: while PostgreSQL cannot answer, statuses and admission go on with it. */
  const lastRead = new Map<string, PrequeuePhase | undefined>();
  /** Concerts whose last read found the opening passed: the record cannot change any more. */
  const opened = new Set<string>();
  /** Concerts whose line this process has marked opened in Redis. */
  const marked = new Set<string>();

  /**
   * Rejects only when PostgreSQL fails a concert this process has never read; the failure is kept
   * as long as a read. A concert read before is answered at once with that read while the next is
   * under way: every join, stream and admission step asks, and under a burst a read waits for a
   * busy pool (it held each WatchQueue stream's first message ~0.6 s). `fresh` waits for a read
   * made now.
   */
  function load(concertId: string, fresh = false): Promise<PrequeuePhase | undefined> {
    const known = lastRead.has(concertId) && !fresh;
    const last = lastRead.get(concertId);
    if (last && opened.has(concertId)) return Promise.resolve(last);
    let entry = cache.get(concertId);
    if (fresh || !entry || Date.now() - entry.loadedAtMs >= PHASE_CACHE_MS) {
      if (cache.size >= CACHED_CONCERTS) {
        cache.clear();
        lastRead.clear();
        opened.clear();
      }
      const read: NonNullable<typeof entry> = { loadedAtMs: Date.now(), phase: undefined!, settled: false };
      const readMs = now();
      read.phase = syncPrequeue(query, concertId, readMs).then(
        (phase) => {
          read.settled = true;
          lastRead.set(concertId, phase);
          if (phase && phase.opensAtMs <= readMs) opened.add(concertId);
          return phase;
        },
        (error: unknown) => {
          read.settled = true;
          if (lastRead.has(concertId)) return lastRead.get(concertId);
          throw error;
        },
      );
      // A rejection nobody awaits (the callers took the last read) is not an unhandled one.
      read.phase.catch(() => undefined);
      cache.set(concertId, (entry = read));
    }
    return entry.settled || !known ? entry.phase : Promise.resolve(last);
  }

  const forming = (phase: PrequeuePhase | undefined): boolean => phase !== undefined && now() < phase.opensAtMs;

  return {
    async placeOf(concertId, userId) {
      const phase = await load(concertId);
      return phase && forming(phase) ? prequeueSeq(phase.seedHex, userId).toString() : undefined;
    },

    async viewOf(concertId) {
      // Unknown (never read, PostgreSQL down): the store's status as it is, rather than none.
      const phase = await load(concertId).catch(() => undefined);
      if (!phase || !forming(phase)) return (status) => status;
      return (status) =>
        status.state === "WAITING"
          ? { ...status, state: "PREQUEUE", position: 0, saleOpensMs: phase.opensAtMs }
          : status;
    },

    gate(settings) {
      return {
        refresh: (boundMs) => settings.refresh(boundMs),
        announceChange: () => settings.announceChange(),
        of: (concertId) => settings.of(concertId),
        async mayAdmit(concertId) {
          let phase: PrequeuePhase | undefined;
          try {
            phase = await load(concertId);
          } catch {
            // Whether a prequeue is forming is unknown: admit nobody into this concert yet.
            return false;
          }
          if (forming(phase)) return false;
          if (phase && !marked.has(concertId)) {
            // A Redis that cannot take the mark cannot admit either (the tick fails or runs on
            // PostgreSQL, which needs no mark): try again at the next tick.
            await redis
              .set(keys.concert(concertId).prequeueOpened, String(phase.opensAtMs))
              .then(() => marked.add(concertId))
              .catch(() => undefined);
          }
          return settings.mayAdmit(concertId);
        },
      };
    },

    async describe(concertId) {
      // What an operator reads back right after a change: read now, not the last read.
      const phase = await load(concertId, true);
      if (!phase) return undefined;
      const open = !forming(phase);
      return {
        opensAt: new Date(phase.opensAtMs),
        seedSha256: phase.seedSha256,
        forming: !open,
        ...(open ? { seed: phase.seedHex } : {}),
      };
    },
  };
}
