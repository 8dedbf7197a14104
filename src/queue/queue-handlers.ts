// QueueService over the generated types: validation, the waiting room, mapping to protobuf.
// Shared by the grpc-js and connect-node transports.

import type { QueueService } from "../../gen/concert/v1/queue_pb.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check } from "../platform/validation.js";
import { statusToProto } from "./queue-status.js";
import type { WaitingRoom } from "./waiting-room.js";

export function createQueueHandlers(room: WaitingRoom): PartialServiceImpl<typeof QueueService> {
  const toProto = (status: Parameters<typeof statusToProto>[0]) =>
    statusToProto(status, room.admissionOf(status.concertId), room.lineMeasures(status.concertId), room.estimateTrace);
  const checkToken = (token: string) => check().hexToken("token", token).throwIfInvalid();
  return {
    async joinQueue(request) {
      check().uuid("concert_id", request.concertId).userId("user_id", request.userId).throwIfInvalid();
      const status = await room.join(request.concertId, request.userId);
      return { token: status.token, status: toProto(status) };
    },

    async getQueueStatus(request) {
      checkToken(request.token);
      return { status: toProto(await room.status(request.token)) };
    },

    async *watchQueue(request, context) {
      checkToken(request.token);
      for await (const update of room.watch(request.token, context.signal)) {
        yield { status: toProto(update.status), heartbeat: update.heartbeat };
      }
    },

    async leaveQueue(request) {
      checkToken(request.token);
      return { status: toProto(await room.leave(request.token)) };
    },
  };
}
