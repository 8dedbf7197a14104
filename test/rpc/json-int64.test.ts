// Money in Connect JSON: a 64-bit integer is a decimal string or a JSON number, as the protobuf
// JSON mapping says. Anything else BigInt() would read ("0x10", " 100", "+100") is INVALID_FIELD
// on the amount's own field, and nothing is credited.

import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorFromJson } from "@connectrpc/connect/protocol-connect";
import test from "ava";
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

async function topUpJson(body: string) {
  const response = await fetch(`${app.connectUrl}/concert.v1.WalletService/TopUp`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await response.json()) as JsonValue;
  return { status: response.status, json };
}

test("amounts that are not decimal strings are INVALID_FIELD on amount.amount_minor and credit nothing", async (t) => {
  const user = "json-int64-bad";
  for (const amount of ["0x10", "0b11", "0o17", "+100", " 100", "100 ", "1_000"]) {
    const { status, json } = await topUpJson(
      JSON.stringify({ userId: user, amount: { amountMinor: amount }, idempotencyKey: `bad-${amount}` }),
    );
    t.is(status, 400, amount);
    const error = errorFromJson(json, undefined, new ConnectError(JSON.stringify(json), Code.Unknown));
    t.is(Code[error.code], Code[Code.InvalidArgument], `${amount}: ${error.message}`);
    t.is(errorReason(error), "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), ["amount.amount_minor"], amount);
  }
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor ?? 0n, 0n);
});

test("decimal strings and JSON numbers are credited as written", async (t) => {
  const user = "json-int64-good";
  for (const [key, amount] of [
    ["s", '"100"'],
    ["n", "250"],
  ] as const) {
    const { status } = await topUpJson(
      `{"userId":"${user}","amount":{"amountMinor":${amount}},"idempotencyKey":"good-${key}"}`,
    );
    t.is(status, 200, amount);
  }
  const balance = await app.connect(WalletService).getBalance({ userId: user });
  t.is(balance.wallet?.balance?.amountMinor, 350n);
});
