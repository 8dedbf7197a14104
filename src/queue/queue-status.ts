// Where a token stands, whichever store answered, and its wire form with the wait estimate.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AdmissionState as AdmissionStatePb,
  QueueState as QueueStatePb,
  type QueueStatusSchema,
} from "../../gen/concert/v1/queue_pb.js";
import { estimateAdmission } from "./admission-rule.js";
import type { ConcertAdmission } from "./admission-settings.js";
import type { ScriptStatus } from "./queue-scripts.js";

/** A script's status of a token, with whose token it is. */
export interface QueueStatus extends ScriptStatus {
  token: string;
  concertId: string;
  userId: string;
}

/** The wire form under the concert's admission settings: while PAUSED the estimate is unknown (unset). */
export function statusToProto(
  status: QueueStatus,
  admission: ConcertAdmission,
): MessageInitShape<typeof QueueStatusSchema> {
  const estimate =
    status.state === "WAITING" && admission.state !== "PAUSED"
      ? estimateAdmission({ ...status, active: status.activeUsers }, admission.rule)
      : undefined;
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
    admissionState: AdmissionStatePb[admission.state],
    admissionStateReason: admission.reason,
  };
}
