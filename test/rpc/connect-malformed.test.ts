// Request messages that do not decode, sent to the Connect port by hand in each protocol it
// speaks (gzip-compressed too): INVALID_ARGUMENT with INVALID_FIELD and a BadRequest violation on
// "request", as on the gRPC port, never INTERNAL; and a well-formed call on the same connection
// still works.

import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorFromJson } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import test from "ava";
import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { errorReason, fieldViolations } from "../helpers/errors.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("rpc_connect_malformed");
});

test.after.always(async () => {
  await app?.stop();
});

const GET_BALANCE = "/concert.v1.WalletService/GetBalance";
/** GetBalanceRequest.user_id (field 1, length-delimited) holding bytes that are not UTF-8. */
const NOT_UTF8 = Uint8Array.from([0x0a, 0x02, 0xff, 0xfe]);
const TRUNCATED = Uint8Array.from([0xff, 0xff, 0xff]);

function envelope(payload: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + payload.length);
  new DataView(framed.buffer).setUint32(1, payload.length);
  framed.set(payload, 5);
  return framed;
}

async function connectUnary(contentType: string, body: Uint8Array | string, gzip = false) {
  const response = await fetch(`${app.connectUrl}${GET_BALANCE}`, {
    method: "POST",
    headers: { "content-type": contentType, ...(gzip && { "content-encoding": "gzip" }) },
    body: gzip ? gzipSync(body) : body,
  });
  const json = (await response.json()) as JsonValue;
  return {
    status: response.status,
    error: errorFromJson(
      json,
      undefined,
      new ConnectError(`not a Connect error: ${JSON.stringify(json)}`, Code.Unknown),
    ),
  };
}

test("Connect unary, binary and JSON: a message that does not decode is INVALID_FIELD on request", async (t) => {
  for (const [contentType, body] of [
    ["application/proto", TRUNCATED],
    ["application/proto", NOT_UTF8],
    ["application/json", '{"userId": 5}'],
    ["application/json", "{not json"],
  ] as const) {
    for (const gzip of [false, true]) {
      const { status, error } = await connectUnary(contentType, body, gzip);
      t.is(status, 400, `${contentType} ${String(body)}${gzip ? " gzip" : ""}`);
      t.is(Code[error.code], Code[Code.InvalidArgument], error.message);
      t.is(errorReason(error), "INVALID_FIELD");
      t.deepEqual(fieldViolations(error), ["request"]);
      t.regex(error.message, /is not a valid concert\.v1\.GetBalanceRequest message/);
    }
  }
});

test("gRPC and gRPC-Web over HTTP/2 to the Connect port: INVALID_ARGUMENT with its details in the trailers, then a good call on the same connection", async (t) => {
  const session = http2.connect(app.connectUrl);
  try {
    const call = (contentType: string, payload: Uint8Array, path = GET_BALANCE) =>
      new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>(
        (resolve, reject) => {
          const stream = session.request({
            ":method": "POST",
            ":path": path,
            "content-type": contentType,
            te: "trailers",
          });
          let headers: http2.IncomingHttpHeaders = {};
          let trailers: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          stream.on("response", (h) => (headers = h));
          stream.on("trailers", (h) => (trailers = h));
          stream.on("data", (d: Buffer) => chunks.push(d));
          stream.on("end", () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
          stream.on("error", reject);
          stream.end(envelope(payload));
        },
      );
    for (const payload of [TRUNCATED, NOT_UTF8]) {
      const { headers, trailers } = await call("application/grpc", payload);
      // A trailers-only answer carries the status in the headers.
      const status = { ...headers, ...trailers };
      t.is(status["grpc-status"], String(Code.InvalidArgument));
      const error = findTrailerError(
        new Headers(
          Object.entries(status)
            .filter(([k]) => !k.startsWith(":"))
            .map(([k, v]) => [k, String(v)]),
        ),
      )!;
      t.is(errorReason(error), "INVALID_FIELD");
      t.deepEqual(fieldViolations(error), ["request"]);
    }
    // A server stream: the message is refused as it is taken, before the handler sees it.
    const watch = await call("application/grpc", NOT_UTF8, "/concert.v1.QueueService/WatchQueue");
    const watchStatus = { ...watch.headers, ...watch.trailers };
    t.is(watchStatus["grpc-status"], String(Code.InvalidArgument));
    const watchError = findTrailerError(
      new Headers(
        Object.entries(watchStatus)
          .filter(([k]) => !k.startsWith(":"))
          .map(([k, v]) => [k, String(v)]),
      ),
    )!;
    t.deepEqual(fieldViolations(watchError), ["request"]);
    // gRPC-Web puts its trailers in the body; the status is what matters here.
    const web = await call("application/grpc-web+proto", TRUNCATED);
    t.regex(web.body.toString("latin1") + JSON.stringify(web.headers), /grpc-status:\s*3|"grpc-status":"3"/);
    const good = await call("application/grpc", Uint8Array.from([0x0a, 0x03, 0x62, 0x6f, 0x62]));
    t.is({ ...good.headers, ...good.trailers }["grpc-status"], "0");
  } finally {
    session.close();
  }
});

test("well-formed calls through a Connect client are untouched", async (t) => {
  const wallet = app.connect(WalletService);
  t.is((await wallet.getBalance({ userId: "nobody" })).wallet?.balance?.amountMinor, 0n);
  const topUp = await wallet.topUp({ userId: "someone", amount: { amountMinor: 5n }, idempotencyKey: "k" });
  t.is(topUp.wallet?.balance?.amountMinor, 5n);
});

test("an HTTP/1.0 request without Host is 400, and the server stays up", async (t) => {
  const port = Number(new URL(app.connectUrl).port);
  const socket = net.connect(port, "127.0.0.1");
  let reply = "";
  socket.on("data", (d: Buffer) => (reply += d.toString()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.end(`POST ${GET_BALANCE} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
  await new Promise((resolve) => socket.once("close", resolve));
  t.regex(reply, /^HTTP\/1\.1 400 /);
  t.is((await app.connect(WalletService).getBalance({ userId: "still-up" })).wallet?.userId, "still-up");
});
