// The waiting room on Redis: the concert-level structures (queue-scripts.ts) are authoritative;
// each token also has a small record under its own hash tag so the guard can check it with one
// GET. Writes to that record follow the concert script in a separate command (another cluster
// slot), so it may lag: the guard trusts it only for ACTIVE-and-unexpired and EXPIRED, and asks
// the concert (repairing the record) when it still says WAITING.

import { createBatcher } from "../platform/batcher.js";
import type { RedisClient } from "../platform/redis/client.js";
import { createQueueKeys, type QueueKeys } from "./queue-keys.js";
import {
  createQueueScripts,
  type ApplyReply,
  type JoinReply,
  type JoinRequest,
  type LineHead,
  type MergeRow,
  type QueueScripts,
  type WatchReply,
} from "./queue-scripts.js";
import { decodeRecord, encodeRecord, recordTtlMs, type TokenRecord } from "./token-record.js";
import { statusNow, type QueueStatus } from "./queue-status.js";
import type { AdmissionRule } from "./admission-rule.js";

export type { TokenRecord };

export type Validation =
  | { kind: "active"; record: TokenRecord }
  /** `owner` is known when the token's record still exists (used up, left or timed out). */
  | { kind: "expired"; owner?: Pick<TokenRecord, "concertId" | "userId"> }
  | { kind: "waiting" | "unknown" };

/** Token → (concert, user) never changes, so each process keeps the most recent ones. */
const DIRECTORY_SIZE = 100_000;
/**
 * A join relies on a registration of its concert at most this old (Redis time) instead of
 * sending its own: an admission step forgets a concert it found empty only if its last
 * registration is a second older than the step, which then came after any such join.
 */
const REGISTRATION_REUSE_MS = 500;
/**
 * How long after its answer a join's status may stand in for a status read: a WatchQueue opened
 * after its join starts from it instead of a Redis read queued behind the crowd's joins (the
 * stream's next tick brings any change since; an admission drops it at once). In a 10,000-user
 * burst the stream opens 1.1-1.4 s after the answer left; within a heartbeat is not stale.
 */
const RECENT_JOIN_MS = 4000;
/** Until its answer a join's status is kept this long: its PostgreSQL commit can take seconds in a burst. */
const UNANSWERED_JOIN_MS = 30_000;
/**
 * Joins that arrive together go to Redis together: one JOIN call per concert and one call for
 * their token records, sent once the event loop has handled the I/O at hand.
 */
const JOIN_BATCH = { maxItems: 500, maxDelayMs: 0 };

/**
 * A place whose join has no PostgreSQL row yet holds the line (admission stops at it,
 * pg-admission.ts) at most this long after its JOIN: a join still committing keeps its turn, and
 * one whose process died before its commit stops the users behind it no longer. Its place stays:
 * a row that lands later (or the user's retried join) is admitted first at the next step.
 */
export const UNCOMMITTED_JOIN_HOLD_MS = 10_000;
/** Places past that hold (or quiet) a step's head may hold beyond the n it asks for. */
const HEAD_MOST_PASSED = 10_000;

export type RedisQueue = ReturnType<typeof createRedisQueue>;

export function createRedisQueue(redis: RedisClient, keyPrefix: string) {
  const keys: QueueKeys = createQueueKeys(keyPrefix);
  const scripts: QueueScripts = createQueueScripts(redis);
  const directory = new Map<string, { concertId: string; userId: string }>();
  /**
   * Concerts whose keys this process has seen in Redis since it last (re)built from PostgreSQL:
   * a JOIN that finds such a concert's counter gone reports the loss instead of starting over.
   */
  const seen = new Set<string>();

  /** Per concert: this process's latest registration (its Redis time) and its outcome. */
  const registrations = new Map<string, { atMs: number; done: Promise<unknown> }>();

  /** Keeps the admission loop ticking the concert; concurrent joins share one ZADD. */
  function register(concertId: string, nowMs: number): Promise<unknown> {
    const last = registrations.get(concertId);
    if (last && nowMs >= last.atMs && nowMs - last.atMs < REGISTRATION_REUSE_MS) return last.done;
    const done = redis.zadd(keys.concerts, String(nowMs), concertId);
    const registration = { atMs: nowMs, done };
    if (registrations.size >= DIRECTORY_SIZE) registrations.clear();
    registrations.set(concertId, registration);
    done.catch(() => {
      if (registrations.get(concertId) === registration) registrations.delete(concertId);
    });
    return done;
  }

  /** Statuses this process answered joins with lately, oldest first; admission and leaves drop theirs. */
  const recentJoins = new Map<string, { status: QueueStatus; atMs: number; readAtMs: number; answered: boolean }>();
  function rememberJoin(status: QueueStatus, readAtMs: number): void {
    const now = Date.now();
    for (const [token, recent] of recentJoins) {
      const keepMs = recent.answered ? RECENT_JOIN_MS : UNANSWERED_JOIN_MS;
      if (now - recent.atMs < keepMs && recentJoins.size < DIRECTORY_SIZE) break;
      recentJoins.delete(token);
    }
    recentJoins.delete(status.token);
    recentJoins.set(status.token, { status, atMs: now, readAtMs, answered: false });
  }

  const remember = (token: string, owner: { concertId: string; userId: string }) => {
    if (directory.size >= DIRECTORY_SIZE) directory.delete(directory.keys().next().value!);
    directory.set(token, { concertId: owner.concertId, userId: owner.userId });
  };

  const recordEntry = (token: string, record: TokenRecord, nowMs: number) => ({
    key: keys.token(token),
    record: encodeRecord(record),
    ttlMs: recordTtlMs(record, nowMs),
  });
  const writeRecord = (token: string, record: TokenRecord, nowMs: number) =>
    scripts.setTokens([recordEntry(token, record, nowMs)]);
  const writeRecords = (records: readonly { token: string; record: TokenRecord }[], nowMs: number) =>
    scripts.setTokens(records.map(({ token, record }) => recordEntry(token, record, nowMs)));

  /** One concert's joins: the JOIN script, then their records and the concert's registration. */
  async function joinConcert(concertId: string, joins: readonly JoinRequest[]): Promise<JoinReply[]> {
    const replies = await scripts.join(keys.concert(concertId), seen.has(concertId), joins);
    seen.add(concertId);
    const records = replies.map(({ token, status }, i) => ({
      token,
      record: { state: status.state, concertId, userId: joins[i]!.userId, activeExpireMs: status.activeExpireMs },
    }));
    const nowMs = replies[0]!.status.nowMs;
    await Promise.all([writeRecords(records, nowMs), register(concertId, nowMs)]);
    records.forEach(({ token, record }, i) => {
      remember(token, record);
      rememberJoin({ token, concertId, userId: record.userId, ...replies[i]!.status }, replies[i]!.readAtMs);
    });
    return replies;
  }

  const joins = createBatcher<JoinRequest & { concertId: string }, JoinReply>({
    ...JOIN_BATCH,
    async run(items) {
      const byConcert = new Map<string, number[]>();
      items.forEach((item, i) => {
        const at = byConcert.get(item.concertId);
        if (at) at.push(i);
        else byConcert.set(item.concertId, [i]);
      });
      const outcomes: (JoinReply | Error)[] = new Array(items.length);
      await Promise.all(
        [...byConcert].map(async ([concertId, at]) => {
          try {
            const replies = await joinConcert(
              concertId,
              at.map((i) => items[i]!),
            );
            at.forEach((i, k) => (outcomes[i] = replies[k]!));
          } catch (error) {
            for (const i of at) outcomes[i] = error as Error;
          }
        }),
      );
      return outcomes;
    },
  });

  async function lookup(token: string): Promise<TokenRecord | undefined> {
    return decodeRecord(await redis.get(keys.token(token)));
  }

  async function owner(token: string): Promise<{ concertId: string; userId: string } | undefined> {
    const known = directory.get(token);
    if (known) return known;
    const record = await lookup(token);
    if (record) remember(token, record);
    return record;
  }

  return {
    keys,
    scripts,

    /**
     * Places the user at the tail (or at `prequeueSeq`, see prequeue.ts), or returns their live
     * place. Concurrent joins share the Redis calls (JOIN_BATCH).
     */
    join(concertId: string, userId: string, freshToken: string, prequeueSeq?: string): Promise<JoinReply> {
      return joins.submit({ concertId, userId, freshToken, prequeueSeq });
    },

    /**
     * The join is answered now (its row committed): its status counts as fresh from here, since the
     * stream its user opens next repeats what the answer said (a burst's commit can take longer
     * than RECENT_JOIN_MS, and a read of Redis then waits for a busy event loop).
     */
    joinAnswered(token: string): void {
      const recent = recentJoins.get(token);
      if (!recent) return;
      recentJoins.delete(token);
      recentJoins.set(token, { ...recent, atMs: Date.now(), answered: true });
    },

    /** The status a join of this process was answered with, if under RECENT_JOIN_MS ago; once per join. */
    recentJoinStatus(token: string): QueueStatus | undefined {
      const recent = recentJoins.get(token);
      recentJoins.delete(token);
      return recent && Date.now() - recent.atMs < RECENT_JOIN_MS
        ? statusNow(recent.status, recent.readAtMs)
        : undefined;
    },

    /** The user's live token in the concert's line (waiting or admitted), if any. */
    async liveToken(concertId: string, userId: string): Promise<string | undefined> {
      return (await redis.hget(keys.concert(concertId).users, userId)) ?? undefined;
    },

    /** undefined when the token is unknown. `touch` counts as a sign of life of a waiting user. */
    async status(token: string, touch: boolean): Promise<QueueStatus | undefined> {
      const found = await owner(token);
      if (!found) return undefined;
      const status = await scripts.status(keys.concert(found.concertId), token, touch);
      return { token, ...found, ...status };
    },

    /** Gives up the place or the slot. The record goes first: if the script then fails, the
     *  token is unusable at worst while its slot lingers until expiry, never the reverse. */
    async leave(token: string): Promise<QueueStatus | undefined> {
      recentJoins.delete(token);
      const found = await owner(token);
      if (!found) return undefined;
      await writeRecord(token, { state: "EXPIRED", ...found, activeExpireMs: 0 }, Date.now());
      const status = await scripts.leave(keys.concert(found.concertId), token);
      return { token, ...found, ...status };
    },

    async validate(token: string): Promise<Validation> {
      const record = await lookup(token);
      if (!record) return { kind: "unknown" };
      const owner = { concertId: record.concertId, userId: record.userId };
      if (record.state === "EXPIRED") return { kind: "expired", owner };
      if (record.state === "ACTIVE")
        return record.activeExpireMs > Date.now() ? { kind: "active", record } : { kind: "expired", owner };
      const status = await scripts.status(keys.concert(record.concertId), token, false);
      if (status.state === "WAITING") return { kind: "waiting" };
      if (status.state === "EXPIRED") return { kind: "expired", owner };
      const admitted: TokenRecord = { ...record, state: "ACTIVE", activeExpireMs: status.activeExpireMs };
      await writeRecord(token, admitted, status.nowMs);
      return { kind: "active", record: admitted };
    },

    /**
     * Redis's part of an admission step, run before PostgreSQL's (pg-queue.ts admit): ends the
     * expired and the abandoned here, who only Redis knows while it serves.
     */
    async sweep(
      concertId: string,
      rule: AdmissionRule,
    ): Promise<{ expired: string[]; abandoned: string[]; atMs: number; active: number }> {
      const swept = await scripts.sweep(keys.concert(concertId), rule.waitingTtlMs, rule.stepLimit);
      seen.add(concertId);
      return { expired: swept.expired, abandoned: swept.abandoned, atMs: swept.nowMs, active: swept.active };
    },

    /**
     * A concert's line from its first token until `n` tokens seen within UNCOMMITTED_JOIN_HOLD_MS,
     * in order: the others (an uncommitted join past the hold among them) do not count.
     */
    head(concertId: string, n: number): Promise<LineHead> {
      return scripts.head(keys.concert(concertId), n, UNCOMMITTED_JOIN_HOLD_MS, n + HEAD_MOST_PASSED);
    },

    /**
     * After PostgreSQL's step committed: the tokens its sweep ended leave Redis, and every token it
     * holds ACTIVE leaves the line here, with the records of those that ended or moved.
     */
    async apply(
      concertId: string,
      active: readonly { token: string; activeExpireMs: number }[],
      ended: readonly string[] = [],
    ): Promise<ApplyReply> {
      const reply = await scripts.apply(keys.concert(concertId), active, ended);
      for (const token of [...ended, ...reply.moved.map((m) => m.token)]) recentJoins.delete(token);
      const expireOf = new Map(active.map((a) => [a.token, a.activeExpireMs]));
      await writeRecords(
        [
          // The user is unknown here; the record keeps the one written at join ("-" if none).
          ...ended.map((token) => ({
            token,
            record: { state: "EXPIRED" as const, concertId, userId: "-", activeExpireMs: 0 },
          })),
          ...reply.moved.map(({ token, userId }) => ({
            token,
            record: { state: "ACTIVE" as const, concertId, userId, activeExpireMs: expireOf.get(token)! },
          })),
        ],
        reply.nowMs,
      );
      return reply;
    },

    /** The tokens of `tokens` this concert does not hold live (ended, or lost with Redis's data). */
    missing(concertId: string, tokens: readonly string[]): Promise<string[]> {
      return scripts.missing(keys.concert(concertId), tokens);
    },

    /** Stops ticking a concert found empty, unless a join registered it again since. */
    async forgetIfEmpty(concertId: string, reply: ApplyReply): Promise<void> {
      if (reply.waiting === 0 && reply.active === 0)
        await scripts.forgetConcert(keys.concerts, concertId, reply.nowMs - 1000);
    },

    watch(concertId: string, tokens: readonly string[], touch: boolean): Promise<WatchReply> {
      return scripts.watch(keys.concert(concertId), tokens, touch);
    },

    /** Concerts with someone waiting or active. */
    concerts(): Promise<string[]> {
      return redis.zrange(keys.concerts, "0", "-1");
    },

    /**
     * Called once Redis holds PostgreSQL's view again: concerts that had nobody live were not
     * merged and have no counter, rightly, so nothing seen before the outage counts any more.
     */
    forgetSeenConcerts(): void {
      seen.clear();
      registrations.clear();
    },

    /**
     * Merges PostgreSQL rows of one concert (see the MERGE script) and their token records. A
     * token whose record here already says EXPIRED is merged as EXPIRED whatever its row says:
     * when Redis kept its data through the outage, an abandonment it swept may have failed to
     * reach PostgreSQL, and records never move backwards, so the record is the later truth. One
     * GET per row.
     */
    async merge(concertId: string, nextSeqFloor: string, pgRows: readonly MergeRow[]): Promise<void> {
      const records = await Promise.all(pgRows.map((row) => (row.state === "EXPIRED" ? undefined : lookup(row.token))));
      const rows = pgRows.map((row, i): MergeRow =>
        records[i]?.state === "EXPIRED" ? { ...row, state: "EXPIRED", activeExpireMs: 0 } : row,
      );
      await scripts.merge(keys.concert(concertId), nextSeqFloor, rows);
      const nowMs = Date.now();
      await writeRecords(
        rows.map((row) => ({
          token: row.token,
          record: { state: row.state, concertId, userId: row.userId, activeExpireMs: row.activeExpireMs },
        })),
        nowMs,
      );
      await redis.zadd(keys.concerts, String(nowMs), concertId);
    },
  };
}
