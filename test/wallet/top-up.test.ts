import { Code } from "@connectrpc/connect";
import test from "ava";
import { LedgerEntryKind, WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("topup");
});

test.after.always(async () => {
  await app?.stop();
});

async function ledgerSum(userId: string): Promise<{ sum: bigint; rows: number }> {
  const [row] = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ sum: string | null; rows: string }[]>(
      "select sum(amount_minor) as sum, count(*) as rows from ledger_entry where user_id = ?",
      [userId],
    );
  return { sum: BigInt(row?.sum ?? 0), rows: Number(row?.rows ?? 0) };
}

test("a new user has a zero balance, over gRPC and Connect", async (t) => {
  for (const client of [app.grpc(WalletService), app.connect(WalletService)]) {
    const { wallet } = await client.getBalance({ userId: "nobody" });
    t.is(wallet?.balance?.amountMinor, 0n);
    t.is(wallet?.balance?.currencyCode, "JPY");
    t.is(wallet?.version, 0n);
  }
});

test("top-up credits the wallet and writes one ledger entry", async (t) => {
  const client = app.grpc(WalletService);
  const first = await client.topUp({ userId: "alice", amount: { amountMinor: 5000n }, idempotencyKey: "alice-1" });
  t.is(first.wallet?.balance?.amountMinor, 5000n);
  t.is(first.entry?.kind, LedgerEntryKind.TOP_UP);
  t.is(first.entry?.amount?.amountMinor, 5000n);
  t.is(first.entry?.balanceAfter?.amountMinor, 5000n);
  const second = await app
    .connect(WalletService)
    .topUp({ userId: "alice", amount: { amountMinor: 2500n, currencyCode: "JPY" }, idempotencyKey: "alice-2" });
  t.is(second.wallet?.balance?.amountMinor, 7500n);
  t.true(second.wallet!.version > first.wallet!.version);
  const { entries } = await client.listTransactions({ userId: "alice" });
  t.deepEqual(
    entries.map((e) => e.idempotencyKey),
    ["alice-2", "alice-1"],
  );
});

test("a replayed key returns the first result; reuse with another amount is IDEMPOTENCY_KEY_REUSED", async (t) => {
  const client = app.grpc(WalletService);
  const first = await client.topUp({ userId: "bob", amount: { amountMinor: 100n }, idempotencyKey: "same" });
  const replay = await client.topUp({ userId: "bob", amount: { amountMinor: 100n }, idempotencyKey: "same" });
  t.is(replay.entry?.id, first.entry?.id);
  t.is(replay.wallet?.balance?.amountMinor, 100n);
  await expectError(
    t,
    client.topUp({ userId: "bob", amount: { amountMinor: 999n }, idempotencyKey: "same" }),
    Code.InvalidArgument,
    "IDEMPOTENCY_KEY_REUSED",
  );
  t.deepEqual(await ledgerSum("bob"), { sum: 100n, rows: 1 });
  // After a later top-up, a replay still answers what the first call answered; GetBalance tells the rest.
  const later = await client.topUp({ userId: "bob", amount: { amountMinor: 50n }, idempotencyKey: "later" });
  t.is(later.wallet?.version, first.wallet!.version + 1n);
  const again = await client.topUp({ userId: "bob", amount: { amountMinor: 100n }, idempotencyKey: "same" });
  // Exactly the first response, the wallet's update time included.
  t.deepEqual(again, first);
  t.deepEqual(replay, first);
  t.is((await client.getBalance({ userId: "bob" })).wallet?.balance?.amountMinor, 150n);
});

test("a replay of a top-up to an existing wallet returns the first response exactly, on both ports", async (t) => {
  const grpc = app.grpc(WalletService);
  const connect = app.connect(WalletService);
  await grpc.topUp({ userId: "replay-exact", amount: { amountMinor: 10n }, idempotencyKey: "opening" });
  const first = await connect.topUp({ userId: "replay-exact", amount: { amountMinor: 20n }, idempotencyKey: "second" });
  await grpc.topUp({ userId: "replay-exact", amount: { amountMinor: 30n }, idempotencyKey: "third" });
  t.deepEqual(
    await grpc.topUp({ userId: "replay-exact", amount: { amountMinor: 20n }, idempotencyKey: "second" }),
    first,
  );
  t.deepEqual(
    await connect.topUp({ userId: "replay-exact", amount: { amountMinor: 20n }, idempotencyKey: "second" }),
    first,
  );
  // The stored wallet carries the same update time as the entry that last changed it.
  const { wallet } = await grpc.getBalance({ userId: "replay-exact" });
  const { entries } = await grpc.listTransactions({ userId: "replay-exact" });
  t.deepEqual(wallet?.updateTime, entries[0]?.createTime);
});

test("50 concurrent identical top-ups write exactly one ledger entry", async (t) => {
  const client = app.grpc(WalletService);
  const results = await Promise.all(
    Array.from({ length: 50 }, () =>
      client.topUp({ userId: "carol", amount: { amountMinor: 700n }, idempotencyKey: "carol-once" }),
    ),
  );
  t.is(new Set(results.map((r) => r.entry?.id)).size, 1);
  t.deepEqual(await ledgerSum("carol"), { sum: 700n, rows: 1 });
  const { wallet } = await client.getBalance({ userId: "carol" });
  t.is(wallet?.balance?.amountMinor, 700n);
});

test("100 concurrent top-ups on one wallet keep the balance exact", async (t) => {
  const grpcClient = app.grpc(WalletService);
  const connectClient = app.connect(WalletService);
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, (_, i) =>
      (i % 2 === 0 ? grpcClient : connectClient).topUp({
        userId: "dave",
        amount: { amountMinor: BigInt(i + 1) },
        idempotencyKey: `dave-${i}`,
      }),
    ),
  );
  const failed = results.filter((r) => r.status === "rejected");
  t.deepEqual(failed, [], "every top-up succeeds after optimistic retries");
  const expected = (100n * 101n) / 2n;
  const { wallet } = await grpcClient.getBalance({ userId: "dave" });
  t.is(wallet?.balance?.amountMinor, expected);
  t.is(wallet?.version, 100n, "one version per change");
  t.deepEqual(await ledgerSum("dave"), { sum: expected, rows: 100 });
});

test("bad top-ups are INVALID_FIELD with every violation listed", async (t) => {
  const client = app.grpc(WalletService);
  const cases: [Parameters<typeof client.topUp>[0], string[]][] = [
    [{ userId: "", amount: { amountMinor: 1n }, idempotencyKey: "k" }, ["user_id"]],
    [{ userId: "erin", amount: { amountMinor: 0n }, idempotencyKey: "k" }, ["amount.amount_minor"]],
    [{ userId: "erin", amount: { amountMinor: -5n }, idempotencyKey: "k" }, ["amount.amount_minor"]],
    [{ userId: "erin", amount: { amountMinor: 10_000_001n }, idempotencyKey: "k" }, ["amount.amount_minor"]],
    [
      { userId: "erin", amount: { amountMinor: 9_223_372_036_854_775_807n }, idempotencyKey: "k" },
      ["amount.amount_minor"],
    ],
    [
      { userId: "erin", amount: { amountMinor: 10n, currencyCode: "USD" }, idempotencyKey: "k" },
      ["amount.currency_code"],
    ],
    [{ userId: "erin", idempotencyKey: "k" }, ["amount"]],
    [{ userId: "erin", amount: { amountMinor: 10n } }, ["idempotency_key"]],
    [
      { userId: "x".repeat(129), amount: { amountMinor: 10n }, idempotencyKey: "k".repeat(129) },
      ["user_id", "idempotency_key"],
    ],
  ];
  for (const [request, fields] of cases) {
    const error = await expectError(t, client.topUp(request), Code.InvalidArgument, "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), fields);
  }
  await expectError(
    t,
    client.listTransactions({ userId: "erin", pageToken: "nope" }),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  // A hand-made token with an id beyond bigint's range: refused before PostgreSQL sees it.
  const beyondInt8 = Buffer.from(JSON.stringify({ f: "ledger:erin", a: "9999999999999999999" })).toString("base64url");
  await expectError(
    t,
    client.listTransactions({ userId: "erin", pageToken: beyondInt8 }),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(await ledgerSum("erin"), { sum: 0n, rows: 0 });
});

test("ListTransactions pages newest first without gaps", async (t) => {
  const client = app.grpc(WalletService);
  for (let i = 0; i < 7; i++)
    await client.topUp({ userId: "frank", amount: { amountMinor: 10n }, idempotencyKey: `f${i}` });
  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await client.listTransactions({ userId: "frank", pageSize: 3, pageToken });
    seen.push(...page.entries.map((e) => e.idempotencyKey));
    pageToken = page.nextPageToken;
  } while (pageToken);
  t.deepEqual(seen, ["f6", "f5", "f4", "f3", "f2", "f1", "f0"]);
});
