// gRPC's wire format as the load generator's client (http2-grpc-client.ts) needs it: messages
// framed with a 5-byte prefix, and a call's final status read from its trailers, or, when there
// are none, from the HTTP status, the stream's reset code or the lost connection. The statuses
// for the last cases are the ones grpc-js gives, so the report counts the same codes.

import { Code } from "@connectrpc/connect";
import http2 from "node:http2";

/** gRPC's OK, which Code (errors only) leaves out. */
export const OK = 0;

export interface CallStatus {
  /** OK or a Code. */
  code: number;
  message: string;
  /** grpc-status-details-bin: a serialized google.rpc.Status. */
  detailsBin?: Uint8Array;
}

const PREFIX_BYTES = 5;

/** One uncompressed message with its length prefix. */
export function frameMessage(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, PREFIX_BYTES);
  return frame;
}

/** Splits the response body into messages, however the data chunks cut it. */
export class FrameDecoder {
  private pending: Buffer | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** Hands each whole message to `to.receive`; returns the status to fail the call with, if any. */
  push(chunk: Buffer, to: { receive(message: Uint8Array): void }): CallStatus | undefined {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    while (buffer.length - offset >= PREFIX_BYTES) {
      // The client sends no grpc-accept-encoding, so a compressed message breaks the protocol.
      if (buffer[offset] !== 0) return { code: Code.Internal, message: "Received a compressed message" };
      const length = buffer.readUInt32BE(offset + 1);
      if (length > this.maxMessageBytes)
        return {
          code: Code.ResourceExhausted,
          message: `Received message larger than max (${length} vs. ${this.maxMessageBytes})`,
        };
      if (buffer.length - offset - PREFIX_BYTES < length) break;
      to.receive(buffer.subarray(offset + PREFIX_BYTES, offset + PREFIX_BYTES + length));
      offset += PREFIX_BYTES + length;
    }
    this.pending = offset === buffer.length ? undefined : buffer.subarray(offset);
    return undefined;
  }
}

/** grpc-js's mapping of an HTTP status that came without a gRPC status. */
export function statusOfHttp(httpStatus: number): CallStatus {
  const byHttp: Record<number, Code> = {
    400: Code.Internal,
    401: Code.Unauthenticated,
    403: Code.PermissionDenied,
    404: Code.Unimplemented,
    429: Code.Unavailable,
    502: Code.Unavailable,
    503: Code.Unavailable,
    504: Code.Unavailable,
  };
  return { code: byHttp[httpStatus] ?? Code.Unknown, message: `Received HTTP status code ${httpStatus}` };
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function percentDecoded(text: string): string {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Errors of the socket or the session rather than of the one stream: the server may be fine, the call is retryable. */
function isConnectionError(error: (Error & { code?: string }) | undefined): boolean {
  const code = error?.code;
  if (!code) return false;
  return code === "ERR_HTTP2_STREAM_CANCEL" || code.startsWith("ERR_HTTP2_GOAWAY") || /^E[A-Z]+$/.test(code);
}

export interface StreamEnd {
  /** The trailers, or the response headers of a trailers-only response. */
  trailers: http2.IncomingHttpHeaders | undefined;
  httpStatus: number | undefined;
  rstCode: number | undefined;
  streamError: (Error & { code?: string }) | undefined;
  /** The connection went down while the stream was open. */
  connectionLost: boolean;
}

/** The final status of a call whose HTTP/2 stream has closed. */
export function endStatus(end: StreamEnd): CallStatus {
  const { trailers, httpStatus } = end;
  if (trailers) {
    const raw = header(trailers, "grpc-status");
    if (raw === undefined) {
      if (httpStatus !== undefined && httpStatus !== 200) return statusOfHttp(httpStatus);
      return { code: Code.Unknown, message: "No status received" };
    }
    const code = Number(raw);
    const details = header(trailers, "grpc-status-details-bin");
    return {
      code: Number.isInteger(code) && code >= 0 && code <= 16 ? code : Code.Unknown,
      message: percentDecoded(header(trailers, "grpc-message") ?? ""),
      ...(details !== undefined && { detailsBin: Buffer.from(details, "base64") }),
    };
  }
  if (end.connectionLost || isConnectionError(end.streamError))
    return { code: Code.Unavailable, message: end.streamError?.message ?? "Connection dropped" };
  const { constants } = http2;
  switch (end.rstCode) {
    case undefined:
    case constants.NGHTTP2_NO_ERROR:
      if (httpStatus !== undefined && httpStatus !== 200) return statusOfHttp(httpStatus);
      return { code: Code.Internal, message: "Call ended without gRPC status" };
    case constants.NGHTTP2_REFUSED_STREAM:
      return { code: Code.Unavailable, message: "Stream refused by server" };
    case constants.NGHTTP2_CANCEL:
      return { code: Code.Canceled, message: "Call cancelled" };
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return { code: Code.ResourceExhausted, message: "Bandwidth exhausted or memory limit exceeded" };
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return { code: Code.PermissionDenied, message: "Protocol not secure enough" };
    default:
      return { code: Code.Internal, message: `Received RST_STREAM with code ${end.rstCode}` };
  }
}
