// Where a token stands, whichever store answered, and its wire form with the wait estimate.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AdmissionState as AdmissionStatePb,
  QueueState as QueueStatePb,
  type QueueStatusSchema,
} from "../../gen/concert/v1/queue_pb.js";
import type { ConcertAdmission } from "./admission-settings.js";
import type { ScriptStatus } from "./queue-scripts.js";
import { estimateWait, NOTHING_MEASURED, type LineMeasures } from "./wait-estimate.js";
import type { EstimateTrace } from "./wait-estimate-trace.js";

/** A token's state as its user sees it: a store's, or PREQUEUE for a waiting token before the sale opens (prequeue.ts). */
export type TokenState = ScriptStatus["state"] | "PREQUEUE";

/** A script's status of a token, with whose token it is. */
export interface QueueStatus extends Omit<ScriptStatus, "state"> {
  state: TokenState;
  token: string;
  concertId: string;
  userId: string;
  /** When the sale opens (epoch ms); set only while PREQUEUE. */
  saleOpensMs?: number;
}

/**
 * `status` as of now, read `localReadMs` (Date.now()) ago: the estimate counts from when the
 * answer is sent (the proto's estimated_wait), not from a read that waited for a commit since.
 */
export function statusNow<T extends { nowMs: number }>(status: T, localReadMs: number): T {
  return { ...status, nowMs: status.nowMs + Math.max(0, Date.now() - localReadMs) };
}

/**
 * The wire form under the concert's admission settings, with the wait estimate (wait-estimate.ts)
 * from what the admission ticks measured of the line. While PAUSED the estimate is unknown.
 */
export function statusToProto(
  status: QueueStatus,
  admission: ConcertAdmission,
  measured: LineMeasures = NOTHING_MEASURED,
  trace?: EstimateTrace,
): MessageInitShape<typeof QueueStatusSchema> {
  const waiting = status.state === "WAITING";
  const estimating = waiting && admission.state !== "PAUSED";
  const wait = estimating ? estimateWait(status, admission.rule, measured) : undefined;
  const estimate = wait?.known ? wait : undefined;
  if (trace && waiting) {
    const { token, concertId, position, activeUsers, nowMs } = status;
    const rule = estimating ? admission.rule : null;
    trace({
      kind: "estimate",
      token,
      concertId,
      place: { position, activeUsers, nowMs },
      rule,
      waitMs: estimate?.waitMs ?? null,
    });
  }
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
    admissionState: AdmissionStatePb[admission.state],
    admissionStateReason: admission.reason,
    waitTimeKnown: estimate !== undefined,
    saleOpenTime: status.state === "PREQUEUE" ? timestampFromMs(status.saleOpensMs ?? 0) : undefined,
  };
}
