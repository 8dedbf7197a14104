// Per-concert waiting-room settings in PostgreSQL: read and changed by AdminService, and served to
// the admission loop of every process as the queue's AdmissionSettings. A tick does not read
// PostgreSQL: a change made through AdminService bumps a counter in Redis, and the next tick of
// every process that sees it moved reloads first, so the change applies everywhere within one
// admission tick; besides, each process reloads in the background every few seconds, which also
// picks up rows changed behind AdminService's back.

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
  /** The wait estimate's prior (EXPECTED_SESSION_SECONDS unless set). */
  expectedSessionSeconds: number;
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
    | "expectedSessionSeconds"
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
  expectedSessionSeconds: "expected_session_seconds",
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
    expectedSessionSeconds: row?.expectedSessionSeconds ?? defaults.expectedSessionMs / 1000,
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

/** How often each process reloads the settings in the background, announced or not. */
const RELOAD_EVERY_MS = 5000;

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
export function createStoredAdmissionSettings(
  orm: ORM,
  logger: Logger,
  redis: RedisClient,
  keyPrefix: string,
  options: { reloadEveryMs?: number } = {},
) {
  const reloadEveryMs = options.reloadEveryMs ?? RELOAD_EVERY_MS;
  const versionKey = `${keyPrefix}admin:queue-settings-version`;
  return (defaults: AdmissionRule): AdmissionSettings => {
    const open: Paced = { rule: defaults, state: "OPEN", reason: "" };
    let byConcert = new Map<string, Paced>();
    let loadedAtMs = -Infinity;
    /** The announced version the settings in use were read after. */
    let appliedVersion: string | null | undefined;
    let reloading: Promise<void> | undefined;

    /** One reload at a time; a failed one keeps the previous settings. */
    const reload = (version: string | null | undefined): Promise<void> =>
      (reloading ??= (async () => {
        try {
          const rows = await orm.em.fork().find(QueueSettingsRow, {}, { disableIdentityMap: true });
          byConcert = new Map(
            rows.map((row) => [row.concertId, toAdmission(effective(row.concertId, defaults, row), row)]),
          );
          loadedAtMs = Date.now();
          if (version !== undefined) appliedVersion = version;
        } catch (error) {
          logger.warn({ err: (error as Error).message }, "could not reload queue settings; keeping the previous ones");
        } finally {
          reloading = undefined;
        }
      })());

    return {
      async refresh(boundMs) {
        let version: string | null | undefined;
        try {
          version = await redis.get(versionKey);
        } catch {
          // Redis cannot say: the background reload below still catches up.
        }
        if (version !== undefined && version !== appliedVersion) {
          // A change was announced: worth waiting for, within the bound; else the reload goes on
          // in the background and the tick runs on the settings it has.
          let timer: NodeJS.Timeout | undefined;
          const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)));
          await Promise.race([reloading ? reloading.then(() => reload(version)) : reload(version), bound]);
          clearTimeout(timer);
        } else if (Date.now() - loadedAtMs >= reloadEveryMs) void reload(version);
      },
      async announceChange() {
        try {
          await redis.incr(versionKey);
        } catch (error) {
          // Stored all the same: every process picks it up with its next background reload.
          logger.warn({ err: (error as Error).message }, "could not announce a queue settings change");
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
    expectedSessionSeconds: s.expectedSessionSeconds,
  });
  if (s.usersPerTick > 0) rule.admitLimit = s.usersPerTick;
  const paced = row.admissionIntervalMs !== null || row.usersPerTick !== null;
  return { rule, state: s.admissionState, reason: s.stateReason, ...(paced ? { paceMs: s.admissionIntervalMs } : {}) };
}
