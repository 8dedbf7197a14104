// One gRPC call on an HTTP/2 stream, for http2-grpc-client.ts: send the request, split the
// response into messages, and end exactly once with the final status (from the trailers, the
// local deadline, a cancellation, or the stream's end). Its state lives on the object and the
// stream's listeners are shared functions: a crowd makes tens of thousands of calls, and closures
// per call showed in the generator's CPU profile as allocation and garbage collection.

import { Code } from "@connectrpc/connect";
import http2 from "node:http2";
import { onAbort } from "../platform/abort-listeners.js";
import { endStatus, frameMessage, FrameDecoder, statusOfHttp, type CallStatus } from "./grpc-wire.js";

const CALL = Symbol("grpc call");
type CallStream = http2.ClientHttp2Stream & { [CALL]: Http2Call };

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;
const CANCELLED: CallStatus = { code: Code.Canceled, message: "Cancelled on client" };
const DEADLINE_EXCEEDED: CallStatus = { code: Code.DeadlineExceeded, message: "Deadline exceeded" };

export interface CallStart {
  session: http2.ClientHttp2Session;
  headers: http2.OutgoingHttpHeaders;
  body: Uint8Array;
  deadlineMs?: number;
  signal?: AbortSignal;
  maxReceiveBytes: number;
}

/** The calls in flight per abort signal, so one listener on a long-lived signal serves them all. */
const callsBySignal = new WeakMap<AbortSignal, Set<Http2Call>>();

function callsOf(signal: AbortSignal): Set<Http2Call> {
  let calls = callsBySignal.get(signal);
  if (!calls) {
    const created = new Set<Http2Call>();
    onAbort(signal, () => created.forEach((call) => call.cancel()));
    callsBySignal.set(signal, (calls = created));
  }
  return calls;
}

export abstract class Http2Call {
  private stream: CallStream | undefined;
  private session: http2.ClientHttp2Session | undefined;
  private decoder: FrameDecoder | undefined;
  private timer: NodeJS.Timeout | undefined;
  private calls: Set<Http2Call> | undefined;
  private ended = false;
  private httpStatus: number | undefined;
  private trailers: http2.IncomingHttpHeaders | undefined;
  private streamError: (Error & { code?: string }) | undefined;

  /** A whole response message. */
  abstract receive(message: Uint8Array): void;
  /** The final status, once; OK or not. */
  protected abstract onEnd(status: CallStatus): void;

  /** Sends the request; a `request()` that throws (a session closing after a GOAWAY) ends the call UNAVAILABLE. */
  start(options: CallStart): void {
    if (options.signal?.aborted) return this.finish(CANCELLED);
    try {
      this.stream = options.session.request(options.headers) as CallStream;
    } catch (error) {
      return this.finish({ code: Code.Unavailable, message: (error as Error).message });
    }
    const stream = this.stream;
    this.session = options.session;
    this.decoder = new FrameDecoder(options.maxReceiveBytes);
    stream[CALL] = this;
    stream.on("response", onResponse).on("trailers", onTrailers).on("data", onData);
    stream.on("error", onError).on("close", onClose);
    if (options.deadlineMs) this.timer = setTimeout(onDeadline, options.deadlineMs, this);
    if (options.signal) (this.calls = callsOf(options.signal)).add(this);
    stream.end(frameMessage(options.body));
  }

  /** Ends the call with `status` and resets its stream, unless it has ended already. */
  cancel(status: CallStatus = CANCELLED): void {
    if (this.ended) return;
    this.finish(status);
    if (this.stream && !this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  private finish(status: CallStatus): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.calls?.delete(this);
    this.onEnd(status);
  }

  /** @internal the stream's events, through the shared listeners below. */
  handleResponse(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    this.httpStatus = headers[":status"];
    if (flags & NGHTTP2_FLAG_END_STREAM) this.trailers = headers;
  }

  handleTrailers(headers: http2.IncomingHttpHeaders): void {
    this.trailers = headers;
  }

  handleData(chunk: Buffer): void {
    if (this.ended) return;
    const failure = this.decoder!.push(chunk, this);
    if (failure) {
      const { httpStatus } = this;
      this.cancel(httpStatus !== undefined && httpStatus !== 200 ? statusOfHttp(httpStatus) : failure);
    }
  }

  handleError(error: Error): void {
    this.streamError = error;
  }

  handleClose(): void {
    this.finish(
      endStatus({
        trailers: this.trailers,
        httpStatus: this.httpStatus,
        rstCode: this.stream!.rstCode,
        streamError: this.streamError,
        connectionLost: this.session!.destroyed,
      }),
    );
  }
}

function onResponse(
  this: CallStream,
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader,
  flags: number,
) {
  this[CALL].handleResponse(headers, flags);
}
function onTrailers(this: CallStream, headers: http2.IncomingHttpHeaders) {
  this[CALL].handleTrailers(headers);
}
function onData(this: CallStream, chunk: Buffer) {
  this[CALL].handleData(chunk);
}
function onError(this: CallStream, error: Error) {
  this[CALL].handleError(error);
}
function onClose(this: CallStream) {
  this[CALL].handleClose();
}
function onDeadline(call: Http2Call) {
  call.cancel(DEADLINE_EXCEEDED);
}
