// Money in Connect JSON: a 64-bit integer is a decimal string or an integral JSON number, as the
// protobuf JSON mapping says. Anything else, what BigInt() would read ("0x10", " 100", "+100") and
// what protobuf-es refuses (100.5, out of range), is INVALID_FIELD on the amount's own field, in
// the Connect protocol's JSON and in gRPC-Web's enveloped JSON alike, compressed or not, and
// nothing is credited.
// (The gRPC port carries binary messages only, where an amount is an int64: top-up.test.ts.)

import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorFromJson } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import test from "ava";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { errorReason, fieldViolations } from "../helpers/errors.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("rpc_json_int64");
});

test.after.always(async () => {
  await app?.stop();
});

/** Compressors of the encodings the Connect port takes. */
const COMPRESS = { gzip: gzipSync, br: brotliCompressSync };

async function topUpJson(body: string, encoding?: keyof typeof COMPRESS) {
  const response = await fetch(`${app.connectUrl}/concert.v1.WalletService/TopUp`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(encoding && { "content-encoding": encoding }) },
    body: encoding ? COMPRESS[encoding](body) : body,
  });
  const json = (await response.json()) as JsonValue;
  return { status: response.status, json };
}

test("amounts that are not decimal strings are INVALID_FIELD on amount.amount_minor and credit nothing", async (t) => {
  const user = "json-int64-bad";
  const bad = ["0x10", "0b11", "0o17", "+100", " 100", "100 ", "1_000", "1e2", "100.0", 100.5, 1e30, true];
  for (const amount of [...bad, "9223372036854775808", "-9223372036854775809"]) {
    const { status, json } = await topUpJson(
      JSON.stringify({ userId: user, amount: { amountMinor: amount }, idempotencyKey: `bad-${amount}` }),
    );
    t.is(status, 400, String(amount));
    const error = errorFromJson(json, undefined, new ConnectError(JSON.stringify(json), Code.Unknown));
    t.is(Code[error.code], Code[Code.InvalidArgument], `${amount}: ${error.message}`);
    t.is(errorReason(error), "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), ["amount.amount_minor"], String(amount));
  }
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor ?? 0n, 0n);
});

/**
 * A gRPC-Web call with a JSON message (gzip-compressed with `gzip`), as sent by hand; its error
 * from the trailers (or trailers-only headers).
 */
async function topUpGrpcWebJson(request: unknown, gzip = false) {
  const text = new TextEncoder().encode(JSON.stringify(request));
  const json = gzip ? gzipSync(text) : text;
  const body = new Uint8Array(5 + json.length);
  body[0] = gzip ? 1 : 0;
  new DataView(body.buffer).setUint32(1, json.length);
  body.set(json, 5);
  const response = await fetch(`${app.connectUrl}/concert.v1.WalletService/TopUp`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+json",
      "x-grpc-web": "1",
      ...(gzip && { "grpc-encoding": "gzip" }),
    },
    body,
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  let trailer = response.headers;
  for (let at = 0; at + 5 <= bytes.length;) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    if ((bytes[at]! & trailerFlag) === trailerFlag) trailer = trailerParse(bytes.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return findTrailerError(trailer);
}

test("gRPC-Web's enveloped JSON is checked the same way", async (t) => {
  const user = "json-int64-web";
  for (const amount of ["0x10", 100.5]) {
    const error = await topUpGrpcWebJson({
      userId: user,
      amount: { amountMinor: amount },
      idempotencyKey: `web-${amount}`,
    });
    t.is(error && Code[error.code], Code[Code.InvalidArgument], String(error));
    t.is(errorReason(error), "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), ["amount.amount_minor"], String(amount));
  }
  t.is(await topUpGrpcWebJson({ userId: user, amount: { amountMinor: "100" }, idempotencyKey: "web-ok" }), undefined);
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor, 100n);
});

test("compressed bodies and messages are checked the same way, and credited when good", async (t) => {
  const user = "json-int64-compressed";
  const topUp = (amountMinor: string, key: string) =>
    JSON.stringify({ userId: user, amount: { amountMinor }, idempotencyKey: key });
  for (const encoding of ["gzip", "br"] as const) {
    const { status, json } = await topUpJson(topUp("0x10", `${encoding}-bad`), encoding);
    t.is(status, 400, encoding);
    const error = errorFromJson(json, undefined, new ConnectError(JSON.stringify(json), Code.Unknown));
    t.is(errorReason(error), "INVALID_FIELD", `${encoding}: ${error.message}`);
    t.deepEqual(fieldViolations(error), ["amount.amount_minor"], encoding);
    t.is((await topUpJson(topUp("100", `${encoding}-ok`), encoding)).status, 200, encoding);
  }
  const web = await topUpGrpcWebJson(
    { userId: user, amount: { amountMinor: "0x10" }, idempotencyKey: "web-bad" },
    true,
  );
  t.is(errorReason(web), "INVALID_FIELD", String(web));
  t.deepEqual(fieldViolations(web), ["amount.amount_minor"]);
  t.is(
    await topUpGrpcWebJson({ userId: user, amount: { amountMinor: "100" }, idempotencyKey: "web-ok" }, true),
    undefined,
  );
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor, 300n);
});

test("decimal strings and integral JSON numbers (exponent notation too) are credited as written", async (t) => {
  const user = "json-int64-good";
  for (const [key, amount] of [
    ["s", '"100"'],
    ["n", "250"],
    ["e", "1e2"],
  ] as const) {
    const { status } = await topUpJson(
      `{"userId":"${user}","amount":{"amountMinor":${amount}},"idempotencyKey":"good-${key}"}`,
    );
    t.is(status, 200, amount);
  }
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor, 450n);
});
