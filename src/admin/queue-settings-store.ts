// Per-concert waiting-room settings in PostgreSQL: read and changed by AdminService, and served to
// the admission loop of every process as the queue's AdmissionSettings, reloaded each tick (one
// small query per process per tick), so a change applies everywhere within one admission tick.

import type { ORM } from "../platform/db/orm.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { findConcert } from "../booking/catalog.js";
import { admissionRule, type AdmissionRule } from "../queue/admission-rule.js";
import type { AdmissionSettings, ConcertAdmission } from "../queue/admission-settings.js";
import { QueueSettingsRow, type AdmissionState } from "./queue-settings.entity.js";

/** What a concert runs on: its stored values over the environment's defaults. */
export interface EffectiveQueueSettings {
  concertId: string;
  maxActiveUsers: number;
  admissionIntervalMs: number;
  usersPerTick: number;
  activeTtlSeconds: number;
  waitingTtlSeconds: number;
  admissionState: AdmissionState;
  stateReason: string;
  stored: boolean;
  updatedAt: Date | undefined;
  /** The earliest sale opening among the concert's published schedules, if one is set. */
  saleOpensAt?: Date;
}

export type QueueSettingsChanges = Partial<
  Pick<
    EffectiveQueueSettings,
    | "maxActiveUsers"
    | "admissionIntervalMs"
    | "usersPerTick"
    | "activeTtlSeconds"
    | "waitingTtlSeconds"
    | "admissionState"
    | "stateReason"
  >
>;

const COLUMNS: Record<keyof QueueSettingsChanges, string> = {
  maxActiveUsers: "max_active_users",
  admissionIntervalMs: "admission_interval_ms",
  usersPerTick: "users_per_tick",
  activeTtlSeconds: "active_ttl_seconds",
  waitingTtlSeconds: "waiting_ttl_seconds",
  admissionState: "admission_state",
  stateReason: "state_reason",
};

function effective(
  concertId: string,
  defaults: AdmissionRule,
  row: QueueSettingsRow | undefined,
): EffectiveQueueSettings {
  return {
    concertId,
    maxActiveUsers: row?.maxActiveUsers ?? defaults.cap,
    admissionIntervalMs: row?.admissionIntervalMs ?? defaults.intervalMs,
    usersPerTick: row?.usersPerTick ?? 0,
    activeTtlSeconds: row?.activeTtlSeconds ?? defaults.activeTtlMs / 1000,
    waitingTtlSeconds: row?.waitingTtlSeconds ?? defaults.waitingTtlMs / 1000,
    admissionState: row?.admissionState ?? "OPEN",
    stateReason: row?.stateReason ?? "",
    stored: row !== undefined,
    updatedAt: row?.updatedAt,
  };
}

export async function getQueueSettings(orm: ORM, defaults: AdmissionRule, concertId: string) {
  const em = orm.em.fork();
  await findConcert(em, concertId);
  const row = await em.findOne(QueueSettingsRow, { concertId }, { disableIdentityMap: true });
  const [sale] = await em.execute<{ opens: Date | string | null }[]>(
    // A published schedule without an opening is on sale already.
    `select case when bool_or(sale_opens_at is null) then null else min(sale_opens_at) end as opens
     from schedule where concert_id = ? and state = 'PUBLISHED'`,
    [concertId],
  );
  const settings = effective(concertId, defaults, row ?? undefined);
  return sale?.opens ? { ...settings, saleOpensAt: new Date(sale.opens) } : settings;
}

/** Sets the given settings of a concert (creating its row), leaving the others as they are. */
export async function updateQueueSettings(
  orm: ORM,
  defaults: AdmissionRule,
  concertId: string,
  changes: QueueSettingsChanges,
): Promise<EffectiveQueueSettings> {
  const em = orm.em.fork();
  await findConcert(em, concertId);
  const columns = Object.entries(changes).map(([key, value]) => [COLUMNS[key as keyof QueueSettingsChanges], value]);
  const names = columns.map(([column]) => column);
  await em.execute(
    `insert into queue_settings (concert_id, ${names.join(", ")}) values (?${", ?".repeat(names.length)})
     on conflict (concert_id) do update set ${names.map((n) => `${n} = excluded.${n}`).join(", ")}, updated_at = now()`,
    [concertId, ...columns.map(([, value]) => value)],
  );
  return getQueueSettings(orm, defaults, concertId);
}

/** A concert with its own pace: admitted at one process per interval (a Redis lease), so many processes do not multiply it. */
interface Paced extends ConcertAdmission {
  paceMs?: number;
}

/**
 * The queue's AdmissionSettings over the stored rows; a failed reload keeps the previous ones.
 * A concert with a stored admission interval or users per tick is paced: each interval, the
 * first process to tick takes the step (SET NX with the interval as expiry) and admits; the
 * others only sweep. If Redis cannot be asked (the waiting room is then on PostgreSQL), each
 * process admits at its own pace.
 */
export function createStoredAdmissionSettings(orm: ORM, logger: Logger, redis: RedisClient, keyPrefix: string) {
  return (defaults: AdmissionRule): AdmissionSettings => {
    const open: Paced = { rule: defaults, state: "OPEN", reason: "" };
    let byConcert = new Map<string, Paced>();
    return {
      async refresh() {
        try {
          const rows = await orm.em.fork().find(QueueSettingsRow, {}, { disableIdentityMap: true });
          byConcert = new Map(
            rows.map((row) => [row.concertId, toAdmission(effective(row.concertId, defaults, row), row)]),
          );
        } catch (error) {
          logger.warn({ err: (error as Error).message }, "could not reload queue settings; keeping the previous ones");
        }
      },
      of: (concertId) => byConcert.get(concertId) ?? open,
      async mayAdmit(concertId) {
        const paceMs = byConcert.get(concertId)?.paceMs;
        if (paceMs === undefined) return true;
        // Ticks of different processes are not aligned: a lease a little shorter than the interval
        // is free again by the first tick that comes a whole interval after the last step.
        const leaseMs = Math.max(1, paceMs - Math.min(100, Math.floor(paceMs / 10)));
        try {
          // The pace is part of the key: a new interval does not wait for the old one's lease.
          const key = `${keyPrefix}admin:admission-step:${concertId}:${paceMs}`;
          return (await redis.set(key, "1", "PX", leaseMs, "NX")) === "OK";
        } catch {
          return true;
        }
      },
    };
  };
}

function toAdmission(s: EffectiveQueueSettings, row: QueueSettingsRow): Paced {
  const rule = admissionRule({
    maxActiveUsers: s.maxActiveUsers,
    activeTtlSeconds: s.activeTtlSeconds,
    waitingTtlSeconds: s.waitingTtlSeconds,
    intervalMs: s.admissionIntervalMs,
  });
  if (s.usersPerTick > 0) rule.admitLimit = s.usersPerTick;
  const paced = row.admissionIntervalMs !== null || row.usersPerTick !== null;
  return { rule, state: s.admissionState, reason: s.stateReason, ...(paced ? { paceMs: s.admissionIntervalMs } : {}) };
}
