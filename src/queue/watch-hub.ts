// WatchQueue fan-out. Each process keeps one ticker per concert that has watchers, and each tick
// reads the positions of all of them in one round trip (a script doing ZRANK per watched token,
// O(w log n), in chunks of WATCH_CHUNK), rather than one read per stream or the whole waiting
// list (O(n) bytes per tick however few watch). Streams then only compare numbers locally, and a
// tick periodically refreshes the watched users' last-seen, which keeps a watching user in line.

import { setImmediate as setImmediatePromise } from "node:timers/promises";
import type { Logger } from "../platform/logger.js";
import { createOutageLog, type OutageLog } from "../platform/outage-log.js";
import type { PgQueue } from "./pg-queue.js";
import type { QueueMode } from "./queue-mode.js";
import type { QueueStatus } from "./queue-status.js";
import type { RedisQueue } from "./redis-queue.js";

export interface WatchUpdate {
  status: QueueStatus;
  heartbeat: boolean;
}

interface Watcher {
  status: QueueStatus;
  sentMs: number;
  /** The newest update not yet taken by the stream; older ones are superseded. */
  pending: WatchUpdate | undefined;
  wake: ((update: WatchUpdate | undefined) => void) | undefined;
}

interface ConcertTicker {
  watchers: Set<Watcher>;
  timer: NodeJS.Timeout;
  lastTouchMs: number;
  /** Ticks, and asking the record about ended places: every tick tries again, said once per outage. */
  tickOutage: OutageLog;
  confirmOutage: OutageLog;
}

export interface WatchSettings {
  tickMs: number;
  /** A message at least this often; the contract promises one every 5 s. */
  heartbeatMs: number;
  /** How often watched users' last-seen is refreshed. */
  touchEveryMs: number;
}

export interface WatchHub {
  /** Streams `first`, then changes of position or state until ACTIVE or EXPIRED or `signal`. */
  watch(first: QueueStatus, signal: AbortSignal): AsyncGenerator<WatchUpdate>;
  readonly watchers: number;
}

const isFinal = (status: QueueStatus) => status.state === "ACTIVE" || status.state === "EXPIRED";
/**
 * Tokens per script call. The calls of one tick share a round trip (auto-pipelining); keeping
 * each script short stops one busy concert from blocking Redis, or from hitting the command
 * timeout that would switch the process to its PostgreSQL fallback.
 */
const WATCH_CHUNK = 1000;
/** Updates delivered per turn of the event loop (admissions and expiries all go out at once). */
const DELIVERY_SLICE = 500;

export function createWatchHub(deps: {
  mode: QueueMode;
  redisQueue: RedisQueue;
  pg: PgQueue;
  settings: WatchSettings;
  logger: Logger;
  /** How a concert's statuses read right now (PREQUEUE before a sale opens, prequeue.ts). */
  viewOf?: (concertId: string) => Promise<(status: QueueStatus) => QueueStatus>;
  /**
   * Told, per tick, how many watchers heard of their admission and when: `activeExpireMs` names
   * the admission (its expiry counts from the decision), so the wait estimate can tell the time
   * it took to reach them from the session they then had (wait-estimate.ts).
   */
  onAdmissionsHeard?: (concertId: string, activeExpireMs: number, heardAtMs: number, users: number) => void;
}): WatchHub {
  const { mode, redisQueue, pg, settings, logger } = deps;
  const tickers = new Map<string, ConcertTicker>();
  let count = 0;

  /** Statuses of the watched tokens; null where this tick cannot say (the stream keeps its last). */
  async function read(
    concertId: string,
    ticker: ConcertTicker,
    tokens: string[],
    touch: boolean,
  ): Promise<Map<string, QueueStatus | null>> {
    const out = new Map<string, QueueStatus | null>();
    return mode.run(
      async () => {
        const chunks: string[][] = [];
        for (let i = 0; i < tokens.length; i += WATCH_CHUNK) chunks.push(tokens.slice(i, i + WATCH_CHUNK));
        const replies = await Promise.all(chunks.map((chunk) => redisQueue.watch(concertId, chunk, touch)));
        const ended: string[] = [];
        replies.forEach((reply, c) =>
          reply.tokens.forEach(({ position, activeExpireMs }, i) => {
            const token = chunks[c]![i]!;
            const state = position > 0 ? "WAITING" : activeExpireMs > reply.nowMs ? "ACTIVE" : "EXPIRED";
            if (state === "EXPIRED") ended.push(token);
            out.set(token, {
              token,
              concertId,
              userId: "",
              state,
              position,
              totalWaiting: reply.totalWaiting,
              activeExpireMs: state === "ACTIVE" ? activeExpireMs : 0,
              nowMs: reply.nowMs,
              activeUsers: reply.activeUsers,
            });
          }),
        );
        // Redis cannot tell a token that ended from one it misses: a join made on PostgreSQL while
        // Redis was down, committed after the fill that switched back. The record says which
        // (it ends a place before Redis drops it), and the next check merges the missed ones.
        if (ended.length > 0) {
          const recorded = await pg.statuses(ended).catch((error: unknown) => {
            ticker.confirmOutage.failed(
              { err: (error as Error).message, concertId },
              "could not confirm ended places with the record; their streams keep their last status until it answers",
            );
            return undefined;
          });
          if (recorded) ticker.confirmOutage.recovered({ concertId }, "confirming ended places with the record again");
          const byToken = new Map(recorded?.map((status) => [status.token, status]));
          for (const token of ended) out.set(token, recorded ? (byToken.get(token) ?? out.get(token)!) : null);
        }
        return out;
      },
      async () => {
        for (const status of await pg.statuses(tokens)) out.set(status.token, status);
        return out;
      },
    );
  }

  function deliver(watcher: Watcher, update: WatchUpdate): void {
    watcher.status = update.status;
    watcher.sentMs = Date.now();
    if (watcher.wake) {
      const wake = watcher.wake;
      watcher.wake = undefined;
      wake(update);
    } else {
      watcher.pending = update;
    }
  }

  /**
   * Heartbeats with their last status to watchers silent for heartbeatMs: run every tickMs while a
   * tick waits on a slow store, so a read held up for seconds does not silence every stream. One
   * with an update its stream has not taken yet has something to say already.
   */
  function beatDue(ticker: ConcertTicker): void {
    const now = Date.now();
    for (const watcher of ticker.watchers)
      if (!watcher.pending && now - watcher.sentMs >= settings.heartbeatMs)
        deliver(watcher, { status: watcher.status, heartbeat: true });
  }

  async function tick(concertId: string, ticker: ConcertTicker): Promise<void> {
    const watchers = [...ticker.watchers];
    const now = Date.now();
    const touch = now - ticker.lastTouchMs >= settings.touchEveryMs;
    if (touch) ticker.lastTouchMs = now;
    const statuses = await read(
      concertId,
      ticker,
      watchers.map((w) => w.status.token),
      touch,
    );
    const readMs = Date.now();
    const view = (await deps.viewOf?.(concertId)) ?? ((status: QueueStatus) => status);
    const changed: [Watcher, WatchUpdate][] = [];
    const heard = new Map<number, number>();
    let storeNowMs = 0;
    for (const watcher of watchers) {
      const fresh = statuses.get(watcher.status.token);
      const previous = watcher.status;
      const next: QueueStatus =
        fresh === null
          ? previous
          : fresh
            ? view({ ...fresh, userId: previous.userId })
            : { ...previous, state: "EXPIRED", position: 0, activeExpireMs: 0, nowMs: now };
      if (next.state === "ACTIVE" && previous.state !== "ACTIVE") {
        heard.set(next.activeExpireMs, (heard.get(next.activeExpireMs) ?? 0) + 1);
        storeNowMs = next.nowMs;
      }
      if (next.state !== previous.state) deliver(watcher, { status: next, heartbeat: false });
      else if (next.position !== previous.position) changed.push([watcher, { status: next, heartbeat: false }]);
      else if (now - watcher.sentMs >= settings.heartbeatMs) changed.push([watcher, { status: next, heartbeat: true }]);
    }
    // On the store's clock, which the admission's expiry counts on.
    const heardAtMs = storeNowMs + (Date.now() - readMs);
    for (const [activeExpireMs, users] of heard) deps.onAdmissionsHeard?.(concertId, activeExpireMs, heardAtMs, users);
    // Admissions (and expiries) went out first; the rest in slices, each sent before the next is
    // started: an admission step moves every waiting user's place at once, and thousands of
    // messages encoded and written in one go held the event loop ~0.5 s from joins and stream opens.
    for (let i = 0; i < changed.length; i += DELIVERY_SLICE) {
      if (i > 0) await setImmediatePromise();
      for (const [watcher, update] of changed.slice(i, i + DELIVERY_SLICE)) deliver(watcher, update);
    }
  }

  function startTicker(concertId: string): ConcertTicker {
    const ticker: ConcertTicker = {
      watchers: new Set(),
      lastTouchMs: Date.now(),
      tickOutage: createOutageLog(logger),
      confirmOutage: createOutageLog(logger),
      timer: setTimeout(function run() {
        if (ticker.watchers.size === 0) {
          tickers.delete(concertId);
          return;
        }
        const beating = setInterval(() => beatDue(ticker), settings.tickMs).unref();
        tick(concertId, ticker)
          .then(
            () => ticker.tickOutage.recovered({ concertId }, "watch ticks work again"),
            (error: unknown) =>
              ticker.tickOutage.failed(
                { err: (error as Error).message, concertId },
                "watch tick failed; trying every tick",
              ),
          )
          .finally(() => {
            clearInterval(beating);
            if (ticker.watchers.size > 0) ticker.timer = setTimeout(run, settings.tickMs);
            else tickers.delete(concertId);
          });
      }, settings.tickMs),
    };
    tickers.set(concertId, ticker);
    return ticker;
  }

  return {
    get watchers() {
      return count;
    },
    async *watch(first, signal) {
      yield { status: first, heartbeat: false };
      if (isFinal(first) || signal.aborted) return;
      const ticker = tickers.get(first.concertId) ?? startTicker(first.concertId);
      const watcher: Watcher = { status: first, sentMs: Date.now(), pending: undefined, wake: undefined };
      const onAbort = () => watcher.wake?.(undefined);
      ticker.watchers.add(watcher);
      count++;
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        while (!signal.aborted) {
          const update =
            watcher.pending ?? (await new Promise<WatchUpdate | undefined>((resolve) => (watcher.wake = resolve)));
          watcher.pending = undefined;
          if (!update) return;
          yield update;
          if (isFinal(update.status)) return;
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        ticker.watchers.delete(watcher);
        count--;
      }
    },
  };
}
