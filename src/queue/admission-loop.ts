// Admits users every ADMISSION_INTERVAL_MS. Every process runs this loop. PostgreSQL, the record,
// decides every admission, under a lock per concert, so any number of loops can tick at once
// without double admissions or exceeding the cap; Redis's sweep says first who left the line, and
// it then moves the admitted out of its line. While Redis is down or missing writes, admission
// pauses (queue-mode.ts).

import type { Logger } from "../platform/logger.js";
import { admit, RECENT_ADMISSIONS_S } from "./pg-admission.js";
import type { QueueDb } from "./queue-db.js";
import type { QueueMode } from "./queue-mode.js";
import type { AdmissionRule } from "./admission-rule.js";
import { fixedAdmissionSettings, tickRule, type AdmissionSettings } from "./admission-settings.js";
import type { RedisQueue } from "./redis-queue.js";

/** What one admission step did for one concert, and the line as the step left it. */
export interface AdmissionTick {
  concertId: string;
  admitted: number;
  /** ACTIVE tokens whose ACTIVE_TOKEN_TTL ran out. */
  expired: number;
  /** WAITING tokens that nobody polled or watched for WAITING_TOKEN_TTL. */
  abandoned: number;
  waiting: number;
  active: number;
  /** When the tick ran (epoch ms, the store's clock). */
  atMs: number;
  /** The concert's running count of slots given back (every process). */
  releasedTotal: number | undefined;
  /** The time those slots had left until their expiry, in sum (ms). */
  releasedRemainingMs: number | undefined;
  /** How long this concert's step took in this process, from taking a connection to Redis applying it (ms). */
  tookMs: number;
  /** How long after the admission decision (which starts the admitted users' expiry) Redis applied it, in the stores' clocks (ms); 0 when this step admitted nobody. */
  appliedAfterMs: number;
}

export interface AdmissionLoop {
  /** One admission step for every concert with users; also what the timer runs. */
  admitWaitingUsers(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export function createAdmissionLoop(deps: {
  mode: QueueMode;
  redisQueue: RedisQueue;
  db: QueueDb;
  rule: AdmissionRule;
  /** Per-concert settings (AdminService); without them every concert runs on `rule`. */
  settings?: AdmissionSettings;
  logger: Logger;
  onTick?: (tick: AdmissionTick) => void;
  onStepDone?: (concertIds: ReadonlySet<string>) => void;
}): AdmissionLoop {
  const { mode, redisQueue, db, rule, logger } = deps;
  const settings = deps.settings ?? fixedAdmissionSettings(rule);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  /** Per concert, when this process last handed Redis every ACTIVE token (pg-admission.ts repairAll). */
  const repairedAll = new Map<string, number>();
  const repairDue = (concertId: string) => Date.now() - (repairedAll.get(concertId) ?? 0) >= RECENT_ADMISSIONS_S * 1000;
  const repaired = (concertId: string, atMs: number) => {
    if (repairedAll.size >= 10_000) repairedAll.clear();
    repairedAll.set(concertId, atMs);
  };

  async function admitWaitingUsers(): Promise<void> {
    // The store check, the settings' version and the concerts in line are read at once: in a
    // burst each round trip waits a turn of a busy event loop (three in a row took 0.3-0.8 s).
    // The concerts are read again after a check that filled Redis.
    const early = redisQueue.concerts();
    early.catch(() => undefined);
    // A tick waits for announced settings changes at most one interval (admission-settings.ts).
    const [current] = await Promise.all([mode.check(), settings.refresh(rule.intervalMs)]);
    if (mode.state !== "redis") return;
    // Each concert's tick is reported as it happens (what was admitted or ended stays counted
    // even if a later concert fails); the set of concerts only once the whole step succeeded: a
    // concert missing from it has nobody left in line.
    const concertIds = new Set<string>();
    const report = (tick: AdmissionTick) => {
      concertIds.add(tick.concertId);
      deps.onTick?.(tick);
    };
    const done = await mode.run(
      async () => {
        const concerts = current ? await early : await redisQueue.concerts();
        await Promise.all(
          concerts.map(async (concertId) => {
            const concertRule = tickRule(settings.of(concertId), await settings.mayAdmit(concertId));
            const [repairAll, startedMs] = [repairDue(concertId), Date.now()];
            const step = await admit(db, concertId, concertRule, redisQueue, repairAll);
            const reply = await redisQueue.apply(concertId, step.active, [...step.expired, ...step.abandoned]);
            if (repairAll) repaired(concertId, startedMs);
            report({
              concertId,
              waiting: reply.waiting,
              active: reply.active,
              atMs: reply.nowMs,
              releasedTotal: reply.releasedTotal,
              releasedRemainingMs: reply.releasedRemainingMs,
              tookMs: Date.now() - startedMs,
              appliedAfterMs: step.decidedMs === undefined ? 0 : Math.max(0, reply.nowMs - step.decidedMs),
              admitted: step.admitted.length,
              expired: step.expired.length,
              abandoned: step.abandoned.length,
            });
            await redisQueue.forgetIfEmpty(concertId, reply);
          }),
        );
        return true;
      },
      async () => false,
    );
    if (done) deps.onStepDone?.(concertIds);
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      const started = Date.now();
      running = admitWaitingUsers()
        .catch((error: unknown) => logger.error({ err: error }, "admission step failed"))
        .finally(() => {
          running = undefined;
          schedule(Math.max(0, rule.intervalMs - (Date.now() - started)));
        });
    }, delayMs);
  }

  return {
    admitWaitingUsers,
    start() {
      stopped = false;
      schedule(rule.intervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
