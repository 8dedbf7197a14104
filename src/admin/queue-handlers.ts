// AdminService's waiting-room methods: per-concert settings and removing one entry.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, type Duration } from "@bufbuild/protobuf/wkt";
import type { AdminService, QueueSettings, QueueSettingsSchema } from "../../gen/concert/v1/admin_pb.js";
import { AdmissionState as AdmissionStatePb } from "../../gen/concert/v1/queue_pb.js";
import { DomainError } from "../platform/domain-error.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check } from "../platform/validation.js";
import type { ORM } from "../platform/db/orm.js";
import { durationOfMs } from "./admin-proto.js";
import type { AdmissionRule } from "../queue/admission-rule.js";
import type { ConcertAdmission } from "../queue/admission-settings.js";
import { STEP_LIMIT } from "../queue/admission-rule.js";
import type { Prequeue, PrequeueDescription } from "../queue/prequeue.js";
import { statusToProto, type QueueStatus } from "../queue/queue-status.js";
import { ADMISSION_STATES, type AdmissionState } from "./queue-settings.entity.js";
import {
  getQueueSettings,
  updateQueueSettings,
  type EffectiveQueueSettings,
  type QueueSettingsChanges,
} from "./queue-settings-store.js";

/** What the admin methods need of the waiting room. */
export interface QueueControl {
  /** The environment's rule: the defaults of concerts without stored settings. */
  readonly rule: AdmissionRule;
  admissionOf(concertId: string): ConcertAdmission;
  /** Makes every process apply stored settings at its next admission tick. */
  announceSettingsChange(): Promise<void>;
  /** Ends a token at once, as LeaveQueue does; QUEUE_TOKEN_INVALID for an unknown one. */
  leave(token: string): Promise<QueueStatus>;
  /** The sale-start prequeue, whose seed's hash (and, after the opening, seed) the settings publish. */
  readonly prequeue: Pick<Prequeue, "describe">;
}

export interface QueueAdminDeps {
  orm: ORM;
  queue: QueueControl;
}

const msOf = (d: Duration | undefined) => (d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1_000_000) : 0);

function settingsToProto(
  s: EffectiveQueueSettings,
  prequeue: PrequeueDescription | undefined,
): MessageInitShape<typeof QueueSettingsSchema> {
  return {
    concertId: s.concertId,
    maxActiveUsers: s.maxActiveUsers,
    admissionInterval: durationOfMs(s.admissionIntervalMs),
    usersPerTick: s.usersPerTick,
    activeTtl: durationOfMs(s.activeTtlSeconds * 1000),
    waitingTtl: durationOfMs(s.waitingTtlSeconds * 1000),
    expectedSession: durationOfMs(s.expectedSessionSeconds * 1000),
    admissionState: AdmissionStatePb[s.admissionState],
    stateReason: s.stateReason,
    stored: s.stored,
    updateTime: s.updatedAt ? timestampFromDate(s.updatedAt) : undefined,
    saleOpensAt: s.saleOpensAt ? timestampFromDate(s.saleOpensAt) : undefined,
    prequeueSeedSha256: prequeue?.seedSha256 ?? "",
    prequeueSeed: prequeue?.seed ?? "",
  };
}

const secondsOf = (d: Duration | undefined) => msOf(d) / 1000;

/** A setting that is a whole number in a range: its mask path, the change it makes, its value in the request. */
type NumberSetting = readonly [
  path: string,
  to: Exclude<keyof QueueSettingsChanges, "admissionState" | "stateReason">,
  read: (given: QueueSettings | undefined) => number,
  min: number,
  max: number,
  unit: "" | " ms" | " s",
];

const NUMBERS: readonly NumberSetting[] = [
  ["max_active_users", "maxActiveUsers", (g) => g?.maxActiveUsers ?? 0, 1, 10_000_000, ""],
  ["admission_interval", "admissionIntervalMs", (g) => msOf(g?.admissionInterval), 10, 3_600_000, " ms"],
  ["users_per_tick", "usersPerTick", (g) => g?.usersPerTick ?? 0, 0, STEP_LIMIT, ""],
  ["active_ttl", "activeTtlSeconds", (g) => secondsOf(g?.activeTtl), 1, 86_400, " s"],
  ["waiting_ttl", "waitingTtlSeconds", (g) => secondsOf(g?.waitingTtl), 1, 86_400, " s"],
  ["expected_session", "expectedSessionSeconds", (g) => secondsOf(g?.expectedSession), 0, 86_400, " s"],
];

const PATHS = [...NUMBERS.map(([path]) => path), "admission_state", "state_reason"];

export function createQueueAdminHandlers({ orm, queue }: QueueAdminDeps): PartialServiceImpl<typeof AdminService> {
  return {
    async getQueueSettings(request) {
      check().uuid("concert_id", request.concertId).throwIfInvalid();
      const settings = await getQueueSettings(orm, queue.rule, request.concertId);
      return { settings: settingsToProto(settings, await queue.prequeue.describe(request.concertId)) };
    },

    async updateQueueSettings(request) {
      const given = request.settings;
      const concertId = given?.concertId ?? "";
      const checker = check().uuid("settings.concert_id", concertId);
      const paths = new Set(request.updateMask?.paths ?? []);
      if (paths.size === 0) checker.fail("update_mask", `must name at least one of ${PATHS.join(", ")}`);
      for (const path of paths) if (!PATHS.includes(path)) checker.fail("update_mask", `cannot name ${path}`);
      const changes: QueueSettingsChanges = {};
      for (const [path, to, read, min, max, unit] of NUMBERS) {
        if (!paths.has(path)) continue;
        const value = read(given);
        if (!Number.isInteger(value) || value < min || value > max)
          checker.fail(`settings.${path}`, `must be from ${min}${unit} to ${max}${unit}`);
        changes[to] = value;
      }
      if (paths.has("admission_state")) {
        const state = AdmissionStatePb[given?.admissionState ?? 0] as AdmissionState | undefined;
        if (!state || !ADMISSION_STATES.includes(state))
          checker.fail("settings.admission_state", "must be OPEN, PAUSED or CLOSED");
        else changes.admissionState = state;
      }
      if (paths.has("state_reason")) {
        const reason = (given?.stateReason ?? "").trim();
        if (reason.length > 200) checker.fail("settings.state_reason", "must be at most 200 characters");
        changes.stateReason = reason;
      }
      checker.throwIfInvalid();
      const settings = await updateQueueSettings(orm, queue.rule, concertId, changes);
      await queue.announceSettingsChange();
      return { settings: settingsToProto(settings, await queue.prequeue.describe(concertId)) };
    },

    async removeQueueEntry(request) {
      const checker = check().hexToken("token", request.token);
      if (request.reason.length > 200) checker.fail("reason", "must be at most 200 characters");
      checker.throwIfInvalid();
      try {
        const left = await queue.leave(request.token);
        return { status: statusToProto(left, queue.admissionOf(left.concertId)) };
      } catch (error) {
        if (error instanceof DomainError && error.reason === "QUEUE_TOKEN_INVALID")
          throw new DomainError("QUEUE_ENTRY_NOT_FOUND", "no queue entry has this token");
        throw error;
      }
    },
  };
}
