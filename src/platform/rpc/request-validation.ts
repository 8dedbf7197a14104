// Request messages that do not decode, on the Connect port. connect-node answers a binary
// message it cannot parse with INTERNAL ("parse binary: …") and a JSON one with a bare
// INVALID_ARGUMENT, before any interceptor or handler runs; both are the caller's mistake, and
// our contract answers them INVALID_ARGUMENT / INVALID_FIELD with a BadRequest violation, as the
// grpc-js port does (grpc-adapter.ts). So the request body is checked on its way in: each message
// (the whole body for Connect unary, each envelope for the streaming and gRPC protocols) is decoded
// once here; one that fails is replaced by an empty message, which connect-node then parses, and
// the failure is left in the call's context values, where an interceptor raises it before the
// handler runs. A compressed message is decompressed here to be checked (and passed on as it
// came when it decodes); one that does not decompress, one in an encoding the server does not
// take, and gRPC-Web text pass unchecked: connect-node reports their failures itself.

import { fromBinary, fromJsonString, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { createContextKey, type Interceptor } from "@connectrpc/connect";
import { compressedFlag, encodeEnvelope, type Compression } from "@connectrpc/connect/protocol";
import { invalidField, type FieldViolation } from "../domain-error.js";
import { domainErrorToConnect } from "./error-mapping.js";
import { int64JsonViolation } from "./json-int64.js";

/** What the body check found; set before the handler is invoked. */
export interface RequestCheck {
  problem?: FieldViolation;
}

export const requestCheckKey = createContextKey<RequestCheck>({}, { description: "request message check" });

const malformed = (problem: FieldViolation) => domainErrorToConnect(invalidField(problem.field, problem.description));

/**
 * Raises a message that did not decode as INVALID_FIELD before the handler sees it. Unary calls
 * reach interceptors with their message read; streaming calls before the body is, so their
 * messages are checked one by one as the handler takes them.
 */
export const rejectMalformedRequests: Interceptor = (next) => async (req) => {
  const check = req.contextValues.get(requestCheckKey);
  if (!req.stream) {
    if (check.problem !== undefined) throw malformed(check.problem);
    return next(req);
  }
  const messages = req.message;
  return next({
    ...req,
    message: (async function* () {
      for await (const message of messages) {
        if (check.problem !== undefined) throw malformed(check.problem);
        yield message;
      }
    })(),
  });
};

type Format = "binary" | "json";

/** How the body of a request with this content type carries its message(s), or undefined to leave it alone. */
function framing(contentType: string): { enveloped: boolean; format: Format } | undefined {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  switch (type) {
    case "application/proto":
      return { enveloped: false, format: "binary" };
    case "application/json":
      return { enveloped: false, format: "json" };
    case "application/connect+proto":
    case "application/grpc":
    case "application/grpc+proto":
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return { enveloped: true, format: "binary" };
    case "application/connect+json":
    case "application/grpc+json":
    case "application/grpc-web+json":
      return { enveloped: true, format: "json" };
    default:
      return undefined; // gRPC-Web text (base64), unknown types: connect-node decides
  }
}

const EMPTY: Record<Format, Uint8Array> = { binary: new Uint8Array(0), json: new TextEncoder().encode("{}") };
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Why `bytes` is not a `schema` message, or undefined when it is one. */
function problemOf(schema: DescMessage, format: Format, bytes: Uint8Array): FieldViolation | undefined {
  try {
    if (format === "binary") {
      fromBinary(schema, bytes);
      return undefined;
    }
    // 64-bit integers first: protobuf-es would read some non-decimal strings and reject others
    // without naming the field.
    const text = decoder.decode(bytes);
    const violation = int64JsonViolation(schema, JSON.parse(text));
    if (violation) return violation;
    fromJsonString(schema, text);
    return undefined;
  } catch (error) {
    return {
      field: "request",
      description: `is not a valid ${schema.typeName} message (${(error as Error).message})`,
    };
  }
}

/**
 * The compression the request's messages are in: null for none, undefined for one not among
 * `accepted` (connect-node refuses it). Connect unary names it in content-encoding, Connect
 * streaming in connect-content-encoding, gRPC and gRPC-Web in grpc-encoding.
 */
function compressionOf(header: Headers, enveloped: boolean, accepted: readonly Compression[]) {
  const name = enveloped
    ? (header.get("connect-content-encoding") ?? header.get("grpc-encoding"))
    : header.get("content-encoding");
  if (name === null || name.toLowerCase() === "identity") return null;
  return accepted.find((compression) => compression.name === name.toLowerCase());
}

/** Replaces a message that does not decode; undefined when it decodes (or cannot be read here). */
type Replace = (bytes: Uint8Array, compressed: boolean) => Promise<Uint8Array | undefined>;

/**
 * The request body with every message that does not decode replaced by an empty one, the first
 * problem recorded in `check`. Envelopes go on as soon as each is complete (a streaming request
 * need not end first); a body larger than `readMaxBytes` passes unchanged for connect-node to refuse.
 */
export function checkedBody(
  method: DescMethod,
  header: Headers,
  body: AsyncIterable<Uint8Array>,
  check: RequestCheck,
  readMaxBytes: number,
  accepted: readonly Compression[],
): AsyncIterable<Uint8Array> {
  const frame = framing(header.get("content-type") ?? "");
  if (!frame) return body;
  const compression = compressionOf(header, frame.enveloped, accepted);
  if (compression === undefined) return body;
  const schema = method.input;
  const replace: Replace = async (bytes, compressed) => {
    let plain = bytes;
    if (compressed) {
      // A compressed envelope with no encoding named: connect-node refuses it.
      if (!compression) return undefined;
      try {
        plain = await compression.decompress(bytes, readMaxBytes);
      } catch {
        return undefined;
      }
    }
    const problem = problemOf(schema, frame.format, plain);
    if (problem === undefined) return undefined;
    check.problem ??= problem;
    // An envelope's replacement goes uncompressed (flag 0); a whole body is in its header's encoding.
    return compressed && !frame.enveloped ? compression!.compress(EMPTY[frame.format]) : EMPTY[frame.format];
  };
  return frame.enveloped
    ? checkEnvelopes(body, replace, readMaxBytes)
    : checkWhole(body, (bytes) => replace(bytes, compression !== null), readMaxBytes);
}

async function* checkWhole(
  body: AsyncIterable<Uint8Array>,
  replace: (bytes: Uint8Array) => Promise<Uint8Array | undefined>,
  readMaxBytes: number,
): AsyncGenerator<Uint8Array> {
  let all: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    all = Buffer.concat([all, chunk]);
    if (all.length > readMaxBytes) {
      yield all;
      yield* body;
      return;
    }
  }
  yield (await replace(all)) ?? all;
}

async function* checkEnvelopes(
  body: AsyncIterable<Uint8Array>,
  replace: Replace,
  readMaxBytes: number,
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const flags = pending[0]!;
      const length = new DataView(pending.buffer, pending.byteOffset, pending.byteLength).getUint32(1);
      if (length > readMaxBytes) {
        yield pending;
        yield* body;
        return;
      }
      if (pending.length < 5 + length) break;
      const payload = pending.subarray(5, 5 + length);
      const replacement = await replace(payload, (flags & compressedFlag) !== 0);
      yield replacement ? encodeEnvelope(flags & ~compressedFlag, replacement) : pending.subarray(0, 5 + length);
      pending = pending.subarray(5 + length);
    }
  }
  if (pending.length > 0) yield pending; // a truncated envelope: connect-node reports it
}
