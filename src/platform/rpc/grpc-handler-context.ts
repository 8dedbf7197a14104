// The HandlerContext a connect-style handler sees for one grpc-js call, and the conversion of
// its headers to grpc-js metadata (grpc-adapter.ts serves the calls).

import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

type ServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/**
 * HandlerContext for one grpc-js call. Headers, trailers, context values, the abort signal and
 * the client-cancel listener are created on first use: most unary handlers touch none of them,
 * and allocating them per call was a measurable part of the adapter's overhead (a cancelled
 * unary call needs no answer, so only a handler that holds the signal can see the cancel).
 */
export class GrpcHandlerContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  private abortController: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private finished = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private cancelListener: (() => void) | undefined;
  private headers: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private trailers: Headers | undefined;
  private contextValues: ContextValues | undefined;
  private readonly deadline: number;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: ServerCall,
    defaultDeadlineMs: number,
  ) {
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    this.deadline = Number.isFinite(ms) ? ms : Date.now() + defaultDeadlineMs;
  }

  get url(): string {
    return `/${this.service.typeName}/${this.method.name}`;
  }

  get signal(): AbortSignal {
    if (!this.abortController) {
      this.abortController = new AbortController();
      if (this.aborted) this.abortController.abort(this.abortReason);
      else this.watchClientCancel();
    }
    return this.abortController.signal;
  }

  private watchClientCancel(): void {
    if (this.finished) return;
    if (this.call.cancelled) return this.abort(cancelledByClient());
    this.cancelListener = () => this.abort(cancelledByClient());
    (this.call as grpc.ServerUnaryCall<unknown, unknown>).once("cancelled", this.cancelListener);
  }

  get requestHeader(): Headers {
    if (!this.headers) {
      this.headers = new Headers();
      for (const [key, values] of Object.entries(this.call.metadata.getMap())) {
        this.headers.append(key, typeof values === "string" ? values : Buffer.from(values).toString("base64"));
      }
    }
    return this.headers;
  }

  get responseHeader(): Headers {
    return (this.responseHeaders ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.trailers ??= new Headers());
  }

  get values(): ContextValues {
    return (this.contextValues ??= createContextValues());
  }

  timeoutMs(): number | undefined {
    return Number.isFinite(this.deadline) ? this.deadline - Date.now() : undefined;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.abortController?.abort(reason);
  }

  /**
   * Runs `expire(target)` when the deadline passes. A timer argument instead of a closure: this
   * runs for every call.
   */
  armDeadline<T>(expire: (target: T) => void, target: T): void {
    this.deadlineTimer = setTimeout(expire, Math.max(this.deadline - Date.now(), 0), target);
  }

  /** The call has been answered: stop the deadline timer and the cancel listener. */
  finish(): void {
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    if (this.cancelListener)
      (this.call as grpc.ServerUnaryCall<unknown, unknown>).removeListener("cancelled", this.cancelListener);
  }

  /** Sends response headers set by the handler, if any. */
  flushHeaders(): void {
    if (this.responseHeaders && [...this.responseHeaders.keys()].length > 0) {
      this.call.sendMetadata(headersToMetadata(this.responseHeaders));
    }
  }

  trailerMetadata(): grpc.Metadata | undefined {
    return this.trailers ? headersToMetadata(this.trailers) : undefined;
  }
}

export function headersToMetadata(headers: Headers, into = new grpc.Metadata()): grpc.Metadata {
  headers.forEach((value, key) => {
    if (key.endsWith("-bin")) into.add(key, Buffer.from(value, "base64"));
    else into.add(key, value);
  });
  return into;
}

function cancelledByClient(): ConnectError {
  return new ConnectError("cancelled by the client", Code.Canceled);
}
