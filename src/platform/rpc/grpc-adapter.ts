// Serves connect-style service implementations (ServiceImpl over protobuf-es types) on a
// @grpc/grpc-js server through generic service definitions built from the generated descriptors.
// grpc-js answers several times connect-node's unary throughput and needs far less memory and
// CPU for thousands of open streams, so gRPC traffic goes through this adapter (figures in
// docs/benchmarks.md).

import {
  create,
  fromBinary,
  isMessage,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
} from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { StatusSchema } from "../../../gen/google/rpc/status_pb.js";
import { invalidField } from "../domain-error.js";
import { domainErrorToConnect } from "./error-mapping.js";
import { GrpcHandlerContext, headersToMetadata } from "./grpc-handler-context.js";

export interface GrpcAdapterOptions {
  /** Deadline applied when the client sets none. */
  defaultDeadlineMs: number;
}

type AnyUnary = (request: unknown, context: HandlerContext) => Promise<unknown>;
type AnyStreaming = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;

function serializer(schema: DescMessage) {
  // Handlers may return init objects; only full messages can be encoded.
  return (value: unknown): Buffer => {
    const message = isMessage(value, schema) ? value : create(schema, value as never);
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer) => fromBinary(schema, bytes);
}

/**
 * Request bytes that are not a valid message. grpc-js answers a deserializer that throws with
 * INTERNAL; this is the caller's mistake, so the handler answers INVALID_FIELD instead.
 */
class MalformedRequest {
  constructor(readonly error: ConnectError) {}
}

function requestDeserializer(schema: DescMessage) {
  return (bytes: Buffer): unknown => {
    try {
      return fromBinary(schema, bytes);
    } catch (error) {
      return new MalformedRequest(
        domainErrorToConnect(
          invalidField("request", `is not a valid ${schema.typeName} message (${(error as Error).message})`),
        ),
      );
    }
  };
}

/** A ConnectError as a grpc-js status with grpc-status-details-bin (google.rpc.Status). */
export function connectErrorToGrpc(error: ConnectError): grpc.StatusObject {
  const metadata = headersToMetadata(error.metadata);
  const details = error.details.flatMap((detail) =>
    "desc" in detail
      ? [anyPack(detail.desc, create(detail.desc, detail.value))]
      : [
          {
            $typeName: "google.protobuf.Any" as const,
            typeUrl: `type.googleapis.com/${detail.type}`,
            value: detail.value,
          },
        ],
  );
  if (details.length > 0) {
    const status = create(StatusSchema, { code: error.code, message: error.rawMessage, details });
    metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: error.code as number as grpc.status, details: error.rawMessage, metadata };
}

function asConnectError(error: unknown): ConnectError {
  return error instanceof ConnectError
    ? error
    : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}

function deadlineExceeded(): ConnectError {
  return new ConnectError("deadline exceeded", Code.DeadlineExceeded);
}

/**
 * A unary call until it is answered, by its handler or with DEADLINE_EXCEEDED when the deadline
 * passes first (even if the handler ignores the signal).
 */
class PendingUnary {
  private answered = false;

  constructor(
    readonly context: GrpcHandlerContext,
    private readonly callback: grpc.sendUnaryData<unknown>,
  ) {}

  static expire(this: void, pending: PendingUnary): void {
    pending.context.abort(deadlineExceeded());
    pending.fail(deadlineExceeded());
  }

  respond(response: unknown): void {
    if (this.answered) return;
    this.context.flushHeaders();
    this.answer(null, response, this.context.trailerMetadata());
  }

  fail(error: unknown): void {
    this.answer(connectErrorToGrpc(asConnectError(error)));
  }

  private answer(error: grpc.StatusObject | null, value?: unknown, trailer?: grpc.Metadata): void {
    if (this.answered) return;
    this.answered = true;
    this.context.finish();
    this.callback(error, value, trailer);
  }
}

function unaryHandler(
  service: DescService,
  method: DescMethod,
  impl: AnyUnary,
  options: GrpcAdapterOptions,
): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const pending = new PendingUnary(
      new GrpcHandlerContext(service, method, call, options.defaultDeadlineMs),
      callback,
    );
    if (call.request instanceof MalformedRequest) return pending.fail(call.request.error);
    pending.context.armDeadline(PendingUnary.expire, pending);
    impl(call.request, pending.context).then(
      (response) => pending.respond(response),
      (error: unknown) => pending.fail(error),
    );
  };
}

function abortAtDeadline(context: GrpcHandlerContext): void {
  context.abort(deadlineExceeded());
}

/** Resolves when the stream can take more data or the call ends; removes both listeners. */
function writable(call: grpc.ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.removeListener("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function streamingHandler(
  service: DescService,
  method: DescMethod,
  impl: AnyStreaming,
): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    if (call.request instanceof MalformedRequest) {
      call.emit("error", connectErrorToGrpc(call.request.error));
      return;
    }
    // DEFAULT_DEADLINE_MS bounds unary work only: a WatchQueue stream legitimately stays open
    // until admission, however long the line is. A deadline the client set still applies.
    const context = new GrpcHandlerContext(service, method, call, Number.POSITIVE_INFINITY);
    if (context.timeoutMs() !== undefined) context.armDeadline(abortAtDeadline, context);
    const signal = context.signal;
    const run = async () => {
      let headersSent = false;
      for await (const message of impl(call.request, context)) {
        if (signal.aborted) break;
        if (!headersSent) {
          context.flushHeaders();
          headersSent = true;
        }
        if (!call.write(message)) await writable(call, signal);
      }
      // A deadline ends the stream with DEADLINE_EXCEEDED; a client cancel needs no status.
      if (signal.aborted && !call.cancelled) throw signal.reason;
    };
    run().then(
      () => {
        context.finish();
        if (!call.cancelled) call.end(context.trailerMetadata());
      },
      (error: unknown) => {
        context.finish();
        if (!call.cancelled) call.emit("error", connectErrorToGrpc(asConnectError(error)));
      },
    );
  };
}

/** Adds one service to a grpc-js server. */
export function addServiceToGrpcServer<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: ServiceImpl<S>,
  options: GrpcAdapterOptions,
): void {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName] as AnyUnary & AnyStreaming;
    const streaming = method.methodKind === "server_streaming";
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: serializer(method.input),
      requestDeserialize: requestDeserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
    handlers[method.localName] = streaming
      ? streamingHandler(service, method, fn)
      : unaryHandler(service, method, fn, options);
  }
  server.addService(definition, handlers);
}
