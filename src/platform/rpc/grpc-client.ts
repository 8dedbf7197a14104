// A typed promise client over @grpc/grpc-js for the generated services, used by the load test,
// the benchmarks and the tests (a real grpc-js client, not connect's gRPC transport). Failures
// become ConnectErrors with the details decoded from grpc-status-details-bin, so callers read
// the ErrorInfo reason exactly as a connect client would.

import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { type Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { onAbort } from "../abort-listeners.js";
import { statusDetails } from "./status-details.js";

export interface GrpcCallOptions {
  metadata?: Record<string, string>;
  deadlineMs?: number;
  signal?: AbortSignal;
}

type MethodFns<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends {
    methodKind: "unary";
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  }
    ? (request: MessageInitShape<I>, options?: GrpcCallOptions) => Promise<MessageShape<O>>
    : S["method"][K] extends {
          methodKind: "server_streaming";
          input: infer I extends DescMessage;
          output: infer O extends DescMessage;
        }
      ? (request: MessageInitShape<I>, options?: GrpcCallOptions) => AsyncIterable<MessageShape<O>>
      : never;
};

export type GrpcClient<S extends DescService> = MethodFns<S> & { close(): void };

function toMetadata(options: GrpcCallOptions | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(options?.metadata ?? {})) metadata.set(key, value);
  return metadata;
}

function callOptions(options: GrpcCallOptions | undefined): grpc.CallOptions {
  return options?.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {};
}

/** Turns a grpc-js ServiceError into a ConnectError with decoded google.rpc.Status details. */
export function grpcErrorToConnect(error: grpc.ServiceError): ConnectError {
  const raw = error.metadata?.get("grpc-status-details-bin")[0];
  const connectError = new ConnectError(error.details, error.code as number as Code, undefined, undefined, error);
  connectError.details = raw instanceof Buffer ? statusDetails(raw) : [];
  return connectError;
}

function methodPath(service: DescService, method: DescMethod): string {
  return `/${service.typeName}/${method.name}`;
}

export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  channelOptions: grpc.ChannelOptions = {},
): GrpcClient<S> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), channelOptions);
  const fns: Record<string, unknown> = {};
  for (const method of service.methods) {
    const path = methodPath(service, method);
    const serialize = (value: MessageInitShape<DescMessage>) =>
      Buffer.from(toBinary(method.input, create(method.input, value)));
    const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
    if (method.methodKind === "unary") {
      fns[method.localName] = (request: MessageInitShape<DescMessage>, options?: GrpcCallOptions) =>
        new Promise((resolve, reject) => {
          let settled = false;
          let forget: (() => void) | undefined;
          const call = client.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            toMetadata(options),
            callOptions(options),
            (error, value) => {
              settled = true;
              forget?.();
              if (error) reject(grpcErrorToConnect(error));
              else resolve(value);
            },
          );
          // Unhooked when the call ends, so a caller may pass one long-lived signal to every call.
          if (options?.signal && !settled) forget = onAbort(options.signal, () => call.cancel());
        });
    } else if (method.methodKind === "server_streaming") {
      fns[method.localName] = async function* (request: MessageInitShape<DescMessage>, options?: GrpcCallOptions) {
        const call = client.makeServerStreamRequest(
          path,
          serialize,
          deserialize,
          request,
          toMetadata(options),
          callOptions(options),
        );
        const forget = options?.signal ? onAbort(options.signal, () => call.cancel()) : undefined;
        try {
          for await (const message of call) yield message;
        } catch (error) {
          throw "code" in (error as object) ? grpcErrorToConnect(error as grpc.ServiceError) : error;
        } finally {
          forget?.();
          call.cancel();
        }
      };
    }
  }
  return Object.assign(fns, { close: () => client.close() }) as GrpcClient<S>;
}
