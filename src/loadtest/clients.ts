// The virtual users' clients: `connections` groups of the three service clients, each group on
// its own HTTP/2 connection, through http2-grpc-client.ts. Nothing here loads grpc-js: the load
// generator would pay for compiling it at every start and never call it (the benchmarks that
// keep grpc-js clients get them from grpc-js-clients.ts).

import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { createHttp2Channel } from "./http2-grpc-client.js";
import type { Clients } from "./virtual-user.js";

export interface ClientPool {
  pool: Clients[];
  close(): void;
}

/** A ListSeats page of a large hall. */
export const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

export function createHttp2Clients(target: string, connections: number): ClientPool {
  const channels = Array.from({ length: connections }, () =>
    createHttp2Channel(target, { maxReceiveBytes: MAX_RECEIVE_BYTES }),
  );
  return {
    pool: channels.map((channel) => ({
      queue: channel.client(QueueService),
      booking: channel.client(BookingService),
      wallet: channel.client(WalletService),
    })),
    close: () => channels.forEach((channel) => channel.close()),
  };
}
