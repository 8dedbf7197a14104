// Typed calls of the waiting room's Lua scripts (queue-lua.ts) through ioredis defineCommand
// (EVALSHA with an EVAL fallback). A concert script runs atomically on one cluster slot: two
// processes can never admit the same user or exceed the cap.

import type { RedisClient } from "../platform/redis/client.js";
import { concertKeyList, type ConcertKeys } from "./queue-keys.js";
import {
  APPLY,
  FORGET_CONCERT,
  HEAD,
  JOIN,
  LEAVE,
  MERGE,
  MISSING,
  SET_TOKEN,
  STATUS,
  SWEEP,
  WATCH,
} from "./queue-lua.js";
import type { QueueState } from "./queue-entry.entity.js";

export interface ScriptStatus {
  state: QueueState;
  /** 1-based; 0 unless WAITING. */
  position: number;
  totalWaiting: number;
  /** Epoch ms; 0 unless ACTIVE. */
  activeExpireMs: number;
  nowMs: number;
  /** Users of this concert holding a slot now: with the cap, the slots free for the next admission step. */
  activeUsers: number;
}

export interface JoinRequest {
  userId: string;
  freshToken: string;
  prequeueSeq?: string;
}

export interface JoinReply {
  token: string;
  seq: string;
  status: ScriptStatus;
  /** Date.now() when the script's answer arrived: the status is as of then. */
  readAtMs: number;
}

export interface SweepReply {
  nowMs: number;
  waiting: number;
  /** Slots taken after the sweep. */
  active: number;
  expired: string[];
  abandoned: string[];
}

export interface ApplyReply {
  nowMs: number;
  waiting: number;
  active: number;
  /** Tokens this call moved from the line to the active set. */
  moved: { token: string; userId: string }[];
  /** Slots of the concert given back so far (leaves and expiries, every process), for the wait estimate. */
  releasedTotal: number;
  /** The time those slots had left until their expiry, in sum (ms). */
  releasedRemainingMs: number;
}

/** The line's first tokens in order, and per token whether it was joined or seen lately (one without
 * a row yet may then still be committing its join). */
export type LineHead = [tokens: string[], held: boolean[]];

export interface WatchReply {
  nowMs: number;
  totalWaiting: number;
  activeUsers: number;
  /** Per requested token, in order. */
  tokens: { position: number; activeExpireMs: number }[];
}

export interface MergeRow {
  token: string;
  userId: string;
  seq: string;
  state: QueueState;
  activeExpireMs: number;
}

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** `numberOfKeys` undefined: the call's first argument says how many keys follow. */
function command(redis: RedisClient, name: string, numberOfKeys: number | undefined, lua: string): ScriptFn {
  const target = redis as unknown as Record<string, ScriptFn | undefined>;
  if (typeof target[name] !== "function") redis.defineCommand(name, { numberOfKeys, lua });
  return (...args) => target[name]!.apply(redis, args);
}

function parseStatus(reply: unknown[]): ScriptStatus {
  return {
    state: reply[0] as QueueState,
    position: Number(reply[1]),
    totalWaiting: Number(reply[2]),
    activeExpireMs: Number(reply[3]),
    nowMs: Number(reply[4]),
    activeUsers: Number(reply[5] ?? 0),
  };
}

/** Token records written by one script call: a merge of a long line is split, so Redis is not held long. */
const SET_TOKEN_CALL = 1000;

export type QueueScripts = ReturnType<typeof createQueueScripts>;

/** Typed calls of the scripts on one connection. */
export function createQueueScripts(redis: RedisClient) {
  const join = command(redis, "cbQueueJoin", 8, JOIN);
  const status = command(redis, "cbQueueStatus", 7, STATUS);
  const leave = command(redis, "cbQueueLeave", 7, LEAVE);
  const sweep = command(redis, "cbQueueSweep", 7, SWEEP);
  const apply = command(redis, "cbQueueApply", 7, APPLY);
  const watch = command(redis, "cbQueueWatch", 7, WATCH);
  const merge = command(redis, "cbQueueMerge", 7, MERGE);
  const missing = command(redis, "cbQueueMissing", 7, MISSING);
  const head = command(redis, "cbQueueHead", 7, HEAD);
  // A cluster client's auto-pipelining takes the first argument for the key, so there a record
  // goes alone under a fixed key count.
  const setToken = command(redis, "cbQueueSetToken", 1, SET_TOKEN);
  const setTokens = command(redis, "cbQueueSetTokens", undefined, SET_TOKEN);
  const forgetConcert = command(redis, "cbQueueForgetConcert", 1, FORGET_CONCERT);
  return {
    /**
     * Joins of one concert in one call, answered in order (the JOIN script); `prequeueSeq`: the
     * user's place while the concert's prequeue forms (prequeue.ts).
     */
    async join(keys: ConcertKeys, seenBefore: boolean, joins: readonly JoinRequest[]): Promise<JoinReply[]> {
      const args: string[] = [seenBefore ? "1" : "0"];
      for (const j of joins) args.push(j.userId, j.freshToken, j.prequeueSeq ?? "");
      const reply = (await join(...concertKeyList(keys), keys.prequeueOpened, ...args)) as (string | number)[];
      const [nowMs, totalWaiting, activeUsers] = [Number(reply[0]), Number(reply[1]), Number(reply[2])];
      const readAtMs = Date.now();
      const replies: JoinReply[] = [];
      for (let i = 3; i < reply.length; i += 5) {
        const status: ScriptStatus = {
          state: reply[i + 2] as QueueState,
          position: Number(reply[i + 3]),
          totalWaiting,
          activeExpireMs: Number(reply[i + 4]),
          nowMs,
          activeUsers,
        };
        replies.push({ token: String(reply[i]), seq: String(reply[i + 1]), status, readAtMs });
      }
      return replies;
    },
    async status(keys: ConcertKeys, token: string, touch: boolean): Promise<ScriptStatus> {
      return parseStatus((await status(...concertKeyList(keys), token, touch ? "1" : "0")) as unknown[]);
    },
    async leave(keys: ConcertKeys, token: string): Promise<ScriptStatus> {
      return parseStatus((await leave(...concertKeyList(keys), token)) as unknown[]);
    },
    async sweep(keys: ConcertKeys, waitingTtlMs: number, limit: number): Promise<SweepReply> {
      const reply = (await sweep(...concertKeyList(keys), waitingTtlMs, limit)) as [
        number,
        number,
        number,
        string[],
        string[],
      ];
      return { nowMs: reply[0], waiting: reply[1], active: reply[2], expired: reply[3], abandoned: reply[4] };
    },
    /** Drops the tokens the step ended; moves every token PostgreSQL holds ACTIVE out of the line, at its expiry. */
    async apply(
      keys: ConcertKeys,
      active: readonly { token: string; activeExpireMs: number }[],
      ended: readonly string[],
    ): Promise<ApplyReply> {
      const args = [ended.length, ...ended, ...active.flatMap((a) => [a.token, a.activeExpireMs])];
      const reply = (await apply(...concertKeyList(keys), ...args)) as [
        number,
        number,
        number,
        string[],
        string,
        string,
      ];
      const moved: ApplyReply["moved"] = [];
      for (let i = 0; i < reply[3].length; i += 2) moved.push({ token: reply[3][i]!, userId: reply[3][i + 1]! });
      return {
        nowMs: reply[0],
        waiting: reply[1],
        active: reply[2],
        moved,
        releasedTotal: Number(reply[4]),
        releasedRemainingMs: Number(reply[5]),
      };
    },
    async watch(keys: ConcertKeys, tokens: readonly string[], touch: boolean): Promise<WatchReply> {
      const reply = (await watch(...concertKeyList(keys), touch ? "1" : "0", ...tokens)) as (number | string)[];
      const perToken: WatchReply["tokens"] = [];
      for (let i = 3; i < reply.length; i += 2)
        perToken.push({ position: Number(reply[i]), activeExpireMs: Number(reply[i + 1]) });
      return {
        nowMs: Number(reply[0]),
        totalWaiting: Number(reply[1]),
        activeUsers: Number(reply[2]),
        tokens: perToken,
      };
    },
    async merge(keys: ConcertKeys, nextSeqFloor: string, rows: readonly MergeRow[]): Promise<void> {
      const args = rows.flatMap((r) => [r.token, r.userId, r.seq, r.state, r.activeExpireMs]);
      await merge(...concertKeyList(keys), nextSeqFloor, ...args);
    },
    /** The line's head for an admission step (the HEAD script); `held`: seen within `holdMs`. */
    async head(keys: ConcertKeys, n: number, holdMs: number, most: number): Promise<LineHead> {
      const [tokens, held] = (await head(...concertKeyList(keys), n, holdMs, most)) as [string[], number[]];
      return [tokens, held.map((flag) => flag === 1)];
    },
    /** The tokens of `tokens` that the concert does not hold live. */
    async missing(keys: ConcertKeys, tokens: readonly string[]): Promise<string[]> {
      return (await missing(...concertKeyList(keys), ...tokens)) as string[];
    },
    /** Token records, a call per SET_TOKEN_CALL on a single node, a call each on a cluster (a slot each). */
    async setTokens(records: readonly { key: string; record: string; ttlMs: number }[]): Promise<void> {
      const ttl = (ms: number) => Math.max(1, Math.ceil(ms));
      if (redis.isCluster) {
        await Promise.all(records.map((r) => setToken(r.key, r.record, ttl(r.ttlMs))));
        return;
      }
      const calls: Promise<unknown>[] = [];
      for (let at = 0; at < records.length; at += SET_TOKEN_CALL) {
        const some = records.slice(at, at + SET_TOKEN_CALL);
        const args: (string | number)[] = [some.length, ...some.map((r) => r.key)];
        for (const r of some) args.push(r.record, ttl(r.ttlMs));
        calls.push(setTokens(...args));
      }
      await Promise.all(calls);
    },
    async forgetConcert(concertsKey: string, concertId: string, thresholdMs: number): Promise<void> {
      await forgetConcert(concertsKey, concertId, thresholdMs);
    },
  };
}
