// AdminService.GetQueueStats and WatchQueueStats: a concert's waiting room in numbers, once or
// every second until the caller cancels.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { setTimeout as sleep } from "node:timers/promises";
import type { AdminService, QueueStatsSchema } from "../../gen/concert/v1/admin_pb.js";
import { AdmissionState as AdmissionStatePb } from "../../gen/concert/v1/queue_pb.js";
import type { ORM } from "../platform/db/orm.js";
import { durationOfMs } from "./admin-proto.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check } from "../platform/validation.js";
import type { AdmissionRule } from "../queue/admission-rule.js";
import type { Prequeue } from "../queue/prequeue.js";
import { readQueueCounts } from "./queue-stats.js";
import { getQueueSettings } from "./queue-settings-store.js";

const WATCH_EVERY_MS = 1000;

type StatsQueue = { readonly rule: AdmissionRule; readonly prequeue: Pick<Prequeue, "describe"> };

async function readStats(
  orm: ORM,
  queue: StatsQueue,
  concertId: string,
): Promise<MessageInitShape<typeof QueueStatsSchema>> {
  const settings = await getQueueSettings(orm, queue.rule, concertId);
  const counts = await readQueueCounts(orm, concertId);
  // Before the opening everyone waiting is in the prequeue; at the opening they all stand in line.
  const forming = (await queue.prequeue.describe(concertId))?.forming === true;
  return {
    concertId,
    observeTime: timestampFromDate(counts.observedAt),
    admissionState: AdmissionStatePb[settings.admissionState],
    waiting: BigInt(forming ? 0 : counts.waiting),
    prequeue: BigInt(forming ? counts.waiting : 0),
    active: BigInt(counts.active),
    maxActiveUsers: settings.maxActiveUsers,
    admissionsPerMinute: counts.admissionsPerMinute,
    joinsPerMinute: counts.joinsPerMinute,
    abandonmentsPerMinute: counts.abandonmentsPerMinute,
    expiriesPerMinute: counts.expiriesPerMinute,
    holdsPerMinute: counts.holdsPerMinute,
    paymentsPerMinute: counts.paymentsPerMinute,
    estimateInputs: {
      admissionRate: counts.admissionsPerMinute / 60,
      freeSlots: BigInt(Math.max(0, settings.maxActiveUsers - counts.active)),
      admissionInterval: durationOfMs(settings.admissionIntervalMs),
      activeTtl: durationOfMs(settings.activeTtlSeconds * 1000),
      expectedSession: durationOfMs(settings.expectedSessionSeconds * 1000),
    },
  };
}

export function createStatsHandlers(deps: { orm: ORM; queue: StatsQueue }): PartialServiceImpl<typeof AdminService> {
  const { orm, queue } = deps;
  return {
    async getQueueStats(request) {
      check().uuid("concert_id", request.concertId).throwIfInvalid();
      return { stats: await readStats(orm, queue, request.concertId) };
    },

    async *watchQueueStats(request, context) {
      check().uuid("concert_id", request.concertId).throwIfInvalid();
      while (!context.signal.aborted) {
        yield { stats: await readStats(orm, queue, request.concertId) };
        await sleep(WATCH_EVERY_MS, undefined, { signal: context.signal }).catch(() => undefined);
      }
    },
  };
}
