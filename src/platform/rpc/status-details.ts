// The details of a gRPC error status (grpc-status-details-bin, a serialized google.rpc.Status) as
// ConnectError carries them. Apart from grpc-client.ts so that the load generator's own client
// (src/loadtest/http2-grpc-client.ts) can read them without loading grpc-js.

import { fromBinary } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import { StatusSchema } from "../../../gen/google/rpc/status_pb.js";

export function statusDetails(raw: Uint8Array): ConnectError["details"] {
  return fromBinary(StatusSchema, raw).details.map((any) => ({
    type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
    value: any.value,
  }));
}
