// Where a token stands, whichever store answered, and its wire form with the wait estimate.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { QueueState as QueueStatePb, type QueueStatusSchema } from "../../gen/concert/v1/queue_pb.js";
import type { ScriptStatus } from "./queue-scripts.js";

/** A script's status of a token, with whose token it is. */
export interface QueueStatus extends ScriptStatus {
  token: string;
  concertId: string;
  userId: string;
}

export interface Estimate {
  admissionMs: number;
  waitMs: number;
}

/** What the wait estimate needs of the waiting room's settings. */
export interface AdmissionPace {
  /** MAX_ACTIVE_USERS. */
  cap: number;
  /** ADMISSION_INTERVAL_MS: how often free slots are filled. */
  intervalMs: number;
  /** Admissions per second the line reaches at least: every slot frees within the active TTL (cap / TTL). */
  floorPerSecond: number;
}

/**
 * Expected admission of a waiting token. Those the free slots take (position ≤ cap − active)
 * go in at the next admission step; the rest wait for slots to free, at the measured rate of
 * admissions, and at least at cap / TTL (every slot frees within the active TTL) when the rate
 * is still unmeasured.
 */
export function estimateAdmission(status: QueueStatus, pace: AdmissionPace): Estimate | undefined {
  if (status.state !== "WAITING") return undefined;
  const free = Math.max(0, pace.cap - status.activeUsers);
  const behindFreeSlots = Math.max(0, status.position - free);
  const rate = Math.max(status.admittedPerSecond, pace.floorPerSecond);
  const waitMs = pace.intervalMs + Math.round((behindFreeSlots / rate) * 1000);
  return { admissionMs: status.nowMs + waitMs, waitMs };
}

export function statusToProto(status: QueueStatus, pace: AdmissionPace): MessageInitShape<typeof QueueStatusSchema> {
  const estimate = estimateAdmission(status, pace);
  const waiting = status.state === "WAITING";
  return {
    token: status.token,
    concertId: status.concertId,
    userId: status.userId,
    state: QueueStatePb[status.state],
    position: BigInt(waiting ? status.position : 0),
    usersAhead: BigInt(waiting ? status.position - 1 : 0),
    totalWaiting: BigInt(status.totalWaiting),
    estimatedAdmissionTime: estimate ? timestampFromMs(estimate.admissionMs) : undefined,
    estimatedWait: estimate
      ? { seconds: BigInt(Math.floor(estimate.waitMs / 1000)), nanos: (estimate.waitMs % 1000) * 1_000_000 }
      : undefined,
    activeExpireTime: status.state === "ACTIVE" ? timestampFromMs(status.activeExpireMs) : undefined,
  };
}
