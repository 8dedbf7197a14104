// The benchmarks' clients (bench/calls-bench.ts, bench/join-burst.ts): grpc-js by default, so
// their figures stay comparable with earlier runs; "http2" gives the load generator's own client.

import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { createGrpcClient } from "../platform/rpc/grpc-client.js";
import { createHttp2Clients, MAX_RECEIVE_BYTES, type ClientPool } from "./clients.js";

/** `connections` groups of the three service clients, each group on its own HTTP/2 connection. */
export function createClients(
  target: string,
  connections: number,
  transport: "grpc-js" | "http2" = "grpc-js",
): ClientPool {
  if (transport === "http2") return createHttp2Clients(target, connections);
  const pool: ClientPool["pool"] = [];
  for (let i = 0; i < connections; i++) {
    // A distinct channel option gives each group its own HTTP/2 connection (grpc-js shares a
    // connection between clients with identical options); the three clients of a group share one.
    const options = {
      "loadtest.connection": i,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
    };
    pool.push({
      queue: createGrpcClient(QueueService, target, options),
      booking: createGrpcClient(BookingService, target, options),
      wallet: createGrpcClient(WalletService, target, options),
    });
  }
  const close = () =>
    pool.forEach((clients) => [clients.queue, clients.booking, clients.wallet].forEach((c) => c.close()));
  return { pool, close };
}
