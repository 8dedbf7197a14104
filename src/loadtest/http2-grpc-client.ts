// The load generator's gRPC client: gRPC over HTTP/2 straight on node:http2, with the same typed
// surface as src/platform/rpc/grpc-client.ts. The users spend most of their CPU on the client
// side of each call, and grpc-js runs every call through its channel, resolver, load-balancing,
// retry and interceptor layers, none of which a crowd of calls to one address needs. This is a
// real gRPC client all the same (length-prefixed messages, grpc-timeout, status and details in
// the trailers), so the server serves the users exactly as it serves grpc-js clients.

import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import http2 from "node:http2";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { onAbort } from "../platform/abort-listeners.js";
import type { GrpcCallOptions, GrpcClient } from "../platform/rpc/grpc-client.js";
import { createFrameDecoder, endStatus, frameMessage, OK, statusOfHttp, type CallStatus } from "./grpc-wire.js";

export interface Http2Channel {
  client<S extends DescService>(service: S): GrpcClient<S>;
  close(): void;
}

const USER_AGENT = "concert-booking-loadtest";

/** One HTTP/2 connection to `address` (host:port), opened on first use and again after it drops. */
export function createHttp2Channel(address: string, options: { maxReceiveBytes?: number } = {}): Http2Channel {
  const maxReceiveBytes = options.maxReceiveBytes ?? 4 * 1024 * 1024;
  let current: http2.ClientHttp2Session | undefined;
  let closed = false;
  const session = () => {
    if (current && !current.closed && !current.destroyed) return current;
    // A large session memory limit, as grpc-js sets: with thousands of streams on few
    // connections Node's default would refuse streams with ENHANCE_YOUR_CALM.
    const opened = http2.connect(`http://${address}`, { maxSessionMemory: Number.MAX_SAFE_INTEGER });
    // A connection error reaches every stream on it; the session's own event needs a listener.
    opened.on("error", () => {});
    const forget = () => {
      if (current === opened) current = undefined;
    };
    opened.once("goaway", forget).once("close", forget);
    current = opened;
    return opened;
  };
  const headerTemplates = new Map<string, http2.OutgoingHttpHeaders>();
  const headersFor = (path: string, callOptions: GrpcCallOptions | undefined) => {
    const key = `${path} ${callOptions?.deadlineMs ?? 0}`;
    let template = headerTemplates.get(key);
    if (!template) {
      template = {
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "user-agent": USER_AGENT,
        // Relative, so the same for every call of a path: the template is built once.
        ...(callOptions?.deadlineMs && { "grpc-timeout": `${callOptions.deadlineMs}m` }),
      };
      headerTemplates.set(key, template);
    }
    return callOptions?.metadata ? { ...template, ...callOptions.metadata } : template;
  };

  /**
   * Starts a call and reports its messages and its end. Returns the function that cancels it.
   * `onEnd` runs once, with the final status; a local deadline ends it as DEADLINE_EXCEEDED.
   */
  const startCall = (
    path: string,
    body: Uint8Array,
    callOptions: GrpcCallOptions | undefined,
    onMessage: (bytes: Uint8Array) => void,
    onEnd: (status: CallStatus) => void,
  ): (() => void) => {
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    let forgetAbort: (() => void) | undefined;
    let stream: http2.ClientHttp2Stream;
    const finish = (status: CallStatus) => {
      if (ended) return;
      ended = true;
      if (timer) clearTimeout(timer);
      forgetAbort?.();
      onEnd(status);
    };
    const cancel = (status: CallStatus) => {
      if (ended) return;
      finish(status);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    if (closed) {
      onEnd({ code: Code.Unavailable, message: "Channel has been shut down" });
      return () => {};
    }
    const on = session();
    try {
      stream = on.request(headersFor(path, callOptions));
    } catch (error) {
      // A session that can take no more streams (closing after a GOAWAY): the next call opens another.
      if (current === on) current = undefined;
      onEnd({ code: Code.Unavailable, message: (error as Error).message });
      return () => {};
    }
    const decoder = createFrameDecoder(maxReceiveBytes);
    let httpStatus: number | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let streamError: (Error & { code?: string }) | undefined;
    stream.on("response", (headers, flags) => {
      httpStatus = headers[":status"];
      if (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) trailers = headers;
    });
    stream.on("trailers", (headers) => (trailers = headers));
    stream.on("data", (chunk: Buffer) => {
      if (ended) return;
      const failure = decoder.push(chunk, onMessage);
      if (failure) cancel(httpStatus !== undefined && httpStatus !== 200 ? statusOfHttp(httpStatus) : failure);
    });
    stream.on("error", (error: Error) => (streamError = error));
    stream.on("close", () =>
      finish(endStatus({ trailers, httpStatus, rstCode: stream.rstCode, streamError, connectionLost: on.destroyed })),
    );
    if (callOptions?.deadlineMs)
      timer = setTimeout(
        () => cancel({ code: Code.DeadlineExceeded, message: "Deadline exceeded" }),
        callOptions.deadlineMs,
      );
    const cancelled = () => cancel({ code: Code.Canceled, message: "Cancelled on client" });
    if (callOptions?.signal) {
      if (callOptions.signal.aborted) cancelled();
      else forgetAbort = onAbort(callOptions.signal, cancelled);
    }
    stream.end(frameMessage(body));
    return cancelled;
  };

  const unary = (method: DescMethod, path: string) => (request: unknown, callOptions?: GrpcCallOptions) =>
    new Promise((resolve, reject) => {
      let response: Uint8Array | undefined;
      startCall(
        path,
        encode(method, request),
        callOptions,
        (bytes) => (response ??= bytes),
        (status) => {
          if (status.code !== OK) return reject(toConnectError(status));
          if (!response)
            return reject(new ConnectError("Unary call ended without a response message", Code.Unimplemented));
          try {
            resolve(fromBinary(method.output, response));
          } catch (error) {
            reject(
              new ConnectError(`Response message could not be parsed: ${(error as Error).message}`, Code.Internal),
            );
          }
        },
      );
    });

  const serverStream = (method: DescMethod, path: string) =>
    async function* (request: unknown, callOptions?: GrpcCallOptions) {
      const received: Uint8Array[] = [];
      let end: CallStatus | undefined;
      let wake: (() => void) | undefined;
      const cancel = startCall(
        path,
        encode(method, request),
        callOptions,
        (bytes) => {
          received.push(bytes);
          wake?.();
        },
        (status) => {
          end = status;
          wake?.();
        },
      );
      try {
        for (let next = 0; ;) {
          if (next < received.length) {
            const bytes = received[next]!;
            // Messages come a few per stream: drop the delivered ones only when the queue empties.
            if (++next === received.length) received.length = next = 0;
            yield fromBinary(method.output, bytes);
          } else if (end) {
            if (end.code !== OK) throw toConnectError(end);
            return;
          } else {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
        }
      } finally {
        // The caller left before the end: the server learns of it by the stream's reset.
        if (!end) cancel();
      }
    };

  return {
    client<S extends DescService>(service: S): GrpcClient<S> {
      const fns: Record<string, unknown> = {};
      for (const method of service.methods) {
        const path = `/${service.typeName}/${method.name}`;
        if (method.methodKind === "unary") fns[method.localName] = unary(method, path);
        else if (method.methodKind === "server_streaming") fns[method.localName] = serverStream(method, path);
      }
      // The channel, not each client, owns the connection.
      return Object.assign(fns, { close() {} }) as GrpcClient<S>;
    },
    close() {
      closed = true;
      current?.close();
      current = undefined;
    },
  };
}

function encode(method: DescMethod, request: unknown): Uint8Array {
  const input = method.input as DescMessage;
  return toBinary(input, create(input, request as MessageInitShape<DescMessage>));
}

/** A failed call as a ConnectError with the google.rpc.Status details decoded, as grpc-client.ts gives it. */
function toConnectError(status: CallStatus): ConnectError {
  const error = new ConnectError(status.message, status.code as Code);
  if (status.detailsBin) {
    error.details = fromBinary(StatusSchema, status.detailsBin).details.map((any) => ({
      type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
      value: any.value,
    }));
  }
  return error;
}
