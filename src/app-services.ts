// The domain services a process serves, each with its handler table bound to its RPC service
// (app.ts wires them to the stores and the transports).

import type { DescService } from "@bufbuild/protobuf";
import { AdminService } from "../gen/concert/v1/admin_pb.js";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import { WalletService } from "../gen/concert/v1/wallet_pb.js";
import { createAdminHandlers } from "./admin/admin-handlers.js";
import { createBookingHandlers } from "./booking/booking-handlers.js";
import type { Config, ServiceName } from "./config.js";
import type { Clock } from "./platform/clock.js";
import { createGroupCommit } from "./platform/db/group-commit.js";
import type { ORM } from "./platform/db/orm.js";
import type { Logger } from "./platform/logger.js";
import { bindMethodTable, sameForEveryMethod, type BoundService } from "./platform/rpc/method-table.js";
import { createQueueHandlers } from "./queue/queue-handlers.js";
import type { WaitingRoom } from "./queue/waiting-room.js";
import { refundPayment } from "./wallet/payment-refund.js";
import { createWalletHandlers } from "./wallet/wallet-handlers.js";

/** Group commit window of booking writes: holds, top-ups and payments arriving within it share a transaction. */
const GROUP_COMMIT = { maxItems: 64, maxDelayMs: 10 };

export interface ServiceDeps {
  orm: ORM;
  logger: Logger;
  waitingRoom: WaitingRoom;
  holdPolicy: { holdSeconds: number; maxSeatsPerUser: number };
  onPaymentCommitted: () => void;
  clock?: Clock;
}

/**
 * The services this process serves (SERVICES), each with its handler table bound. Every table is
 * bound, served or not: a method that declares no queue-token requirement stops any start-up.
 */
export function servedServices(config: Config, deps: ServiceDeps): BoundService<DescService>[] {
  const { orm, logger, waitingRoom } = deps;
  // One group for holds, top-ups and payments: a window of all three shares a transaction.
  const group = createGroupCommit(orm, GROUP_COMMIT);
  const services: [ServiceName, BoundService<DescService>][] = [
    // Queue methods are how a caller gets a token: none can ask for one.
    ["queue", bindMethodTable(QueueService, sameForEveryMethod(createQueueHandlers(waitingRoom), "none"))],
    [
      "booking",
      bindMethodTable(
        BookingService,
        createBookingHandlers({ orm, holdPolicy: deps.holdPolicy, refund: refundPayment, clock: deps.clock, group }),
      ),
    ],
    [
      "wallet",
      bindMethodTable(
        WalletService,
        createWalletHandlers({
          orm,
          logger,
          onPaymentCommitted: deps.onPaymentCommitted,
          releaseQueueToken: (token: string) => waitingRoom.release(token),
          activeTokenTtlSeconds: config.activeTokenTtlSeconds,
          clock: deps.clock,
          group,
        }),
      ),
    ],
    // Admin methods need an admin token, which the handlers check themselves, not a queue token.
    [
      "admin",
      bindMethodTable(
        AdminService,
        sameForEveryMethod(
          createAdminHandlers({ adminTokens: config.adminTokens, orm, refund: refundPayment, queue: waitingRoom }),
          "none",
        ),
      ),
    ],
  ];
  return services.filter(([name]) => config.services.includes(name)).map(([, service]) => service);
}
