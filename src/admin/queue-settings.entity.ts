import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const ADMISSION_STATES = ["OPEN", "PAUSED", "CLOSED"] as const;
export type AdmissionState = (typeof ADMISSION_STATES)[number];

/**
 * A concert's waiting-room settings as an operator stored them (AdminService.UpdateQueueSettings).
 * A null column means the server's default (its environment); a concert without a row runs on
 * defaults alone.
 */
export const QueueSettingsRow = defineEntity({
  name: "QueueSettingsRow",
  tableName: "queue_settings",
  properties: {
    concertId: p.uuid().primary(),
    maxActiveUsers: p.integer().nullable(),
    admissionIntervalMs: p.integer().nullable(),
    usersPerTick: p.integer().nullable(),
    activeTtlSeconds: p.integer().nullable(),
    waitingTtlSeconds: p.integer().nullable(),
    expectedSessionSeconds: p.integer().nullable(),
    admissionState: p.enum(ADMISSION_STATES).default("OPEN"),
    stateReason: p.text().default(""),
    updatedAt: p.datetime().defaultRaw("now()"),
  },
});

export type QueueSettingsRow = InferEntity<typeof QueueSettingsRow>;
