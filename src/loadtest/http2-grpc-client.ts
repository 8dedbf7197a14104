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
import type { GrpcCallOptions, GrpcClient } from "../platform/rpc/grpc-client.js";
import { statusDetails } from "../platform/rpc/status-details.js";
import { Http2Call } from "./http2-call.js";
import { OK, type CallStatus } from "./grpc-wire.js";

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
  /** The request headers of one method, by deadline: relative, so the same for each call. */
  const headersOf = (path: string) => {
    const templates = new Map<number, http2.OutgoingHttpHeaders>();
    return (options: GrpcCallOptions | undefined): http2.OutgoingHttpHeaders => {
      const deadlineMs = options?.deadlineMs ?? 0;
      let template = templates.get(deadlineMs);
      if (!template) {
        template = {
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          "user-agent": USER_AGENT,
          ...(deadlineMs > 0 && { "grpc-timeout": `${deadlineMs}m` }),
        };
        templates.set(deadlineMs, template);
      }
      return options?.metadata ? { ...template, ...options.metadata } : template;
    };
  };

  const start = (
    call: Http2Call,
    headers: http2.OutgoingHttpHeaders,
    method: DescMethod,
    request: unknown,
    options?: GrpcCallOptions,
  ) => {
    if (closed) return call.cancel({ code: Code.Unavailable, message: "Channel has been shut down" });
    call.start({
      session: session(),
      headers,
      body: encode(method, request),
      deadlineMs: options?.deadlineMs,
      signal: options?.signal,
      maxReceiveBytes,
    });
  };

  const unary = (method: DescMethod, path: string) => {
    const headers = headersOf(path);
    return (request: unknown, options?: GrpcCallOptions) =>
      new Promise((resolve, reject) =>
        start(new UnaryCall(method, resolve, reject), headers(options), method, request, options),
      );
  };

  const serverStream = (method: DescMethod, path: string) => {
    const headers = headersOf(path);
    return async function* (request: unknown, options?: GrpcCallOptions) {
      const call = new StreamCall();
      start(call, headers(options), method, request, options);
      try {
        for (let next = 0; ;) {
          if (next < call.received.length) {
            const bytes = call.received[next]!;
            // Messages come a few per stream: drop the delivered ones only when the queue empties.
            if (++next === call.received.length) call.received.length = next = 0;
            yield fromBinary(method.output, bytes);
          } else if (call.end) {
            if (call.end.code !== OK) throw toConnectError(call.end);
            return;
          } else {
            await new Promise<void>((resolve) => (call.wake = resolve));
            call.wake = undefined;
          }
        }
      } finally {
        // The caller left before the end: the server learns of it by the stream's reset.
        call.cancel();
      }
    };
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

class UnaryCall extends Http2Call {
  private response: Uint8Array | undefined;

  constructor(
    private readonly method: DescMethod,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (error: ConnectError) => void,
  ) {
    super();
  }

  receive(message: Uint8Array): void {
    this.response ??= message;
  }

  protected onEnd(status: CallStatus): void {
    if (status.code !== OK) return this.reject(toConnectError(status));
    if (!this.response)
      return this.reject(new ConnectError("Unary call ended without a response message", Code.Unimplemented));
    try {
      this.resolve(fromBinary(this.method.output, this.response));
    } catch (error) {
      this.reject(new ConnectError(`Response message could not be parsed: ${(error as Error).message}`, Code.Internal));
    }
  }
}

class StreamCall extends Http2Call {
  readonly received: Uint8Array[] = [];
  end: CallStatus | undefined;
  wake: (() => void) | undefined;

  receive(message: Uint8Array): void {
    this.received.push(message);
    this.wake?.();
  }

  protected onEnd(status: CallStatus): void {
    this.end = status;
    this.wake?.();
  }
}

function encode(method: DescMethod, request: unknown): Uint8Array {
  const input = method.input as DescMessage;
  return toBinary(input, create(input, request as MessageInitShape<DescMessage>));
}

/** A failed call as a ConnectError with the google.rpc.Status details decoded, as grpc-client.ts gives it. */
function toConnectError(status: CallStatus): ConnectError {
  const error = new ConnectError(status.message, status.code as Code);
  if (status.detailsBin) error.details = statusDetails(status.detailsBin);
  return error;
}
