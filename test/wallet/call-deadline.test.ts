// Wallet work stops with its call: the optimistic retry loop and row-lock waits end when the
// call's deadline passes or the client cancels it, an answered call commits nothing afterwards,
// and a replay with the key of a call answered DEADLINE_EXCEEDED tells what really happened.

import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import pg from "pg";
import { WalletService, type TopUpResponse } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { ledgerOf } from "../helpers/booking.js";
import { waitForLockWaiters } from "../helpers/database.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("call_deadline");
});

test.after.always(async () => {
  await app?.stop();
});

const sql = <R>(text: string, params: unknown[] = []) =>
  app.app.orm.em.fork().getConnection().execute<R[]>(text, params);

const entryIdOf = async (userId: string, key: string): Promise<string | undefined> =>
  (await sql<{ id: string }>("select id from ledger_entry where user_id = ? and idempotency_key = ?", [userId, key]))[0]
    ?.id;

/** Sessions of the app's database that are running a statement or sit in an open transaction. */
async function busySessions(): Promise<number> {
  const [row] = await sql<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid()
       and (state = 'active' or state like 'idle in transaction%')`,
  );
  return row!.n;
}

const codeOf = (error: unknown) => (error instanceof ConnectError ? Code[error.code] : `not a ConnectError: ${error}`);

test.serial(
  "300 concurrent top-ups on one wallet under a short deadline: no answered call commits later, replays tell the truth",
  async (t) => {
    const wallet = app.grpc(WalletService);
    const userId = "crowded";
    await wallet.topUp({ userId, amount: { amountMinor: 1n }, idempotencyKey: "opening" });
    const keys = Array.from({ length: 300 }, (_, i) => `k-${i}`);
    const sentAt = (await sql<{ now: string }>("select clock_timestamp()::text as now"))[0]!.now;
    // Short enough that one wallet's serialized updates cannot all fit in it, even on an idle machine.
    const answers = await Promise.all(
      keys.map((key, i) =>
        wallet.topUp({ userId, amount: { amountMinor: BigInt(i + 1) }, idempotencyKey: key }, { deadlineMs: 300 }).then(
          () => "OK",
          (error: unknown) => codeOf(error),
        ),
      ),
    );
    const timedOut = keys.filter((_, i) => answers[i] === "DeadlineExceeded");
    t.true(timedOut.length > 0, `some calls outlast a 300 ms deadline (answers: ${new Set(answers)})`);
    t.deepEqual(
      answers.filter((a) => a !== "OK" && a !== "DeadlineExceeded" && a !== "Aborted"),
      [],
    );

    // Every call is answered. Once the database has nothing in progress, the ledger is final: no
    // retry loop goes on in the background (before the fix, the last one committed seconds later).
    await waitFor(async () => (await busySessions()) === 0, { timeoutMs: 30_000, message: () => "app sessions idle" });
    const settled = await ledgerOf(app.app.orm, userId);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    t.deepEqual(await ledgerOf(app.app.orm, userId), settled, "nothing committed after every call was answered");

    // A call answered DEADLINE_EXCEEDED may still commit when its transaction was under way at
    // the server's deadline, which starts when the server reads the call (later than the client's
    // in a 300-call burst): how many do depends on the machine's speed, so the check is on time.
    // No transaction of theirs began more than 2 s after the calls were sent; before the fix, the
    // retry loop began new attempts, and committed, seconds later.
    const committedLate: string[] = [];
    for (const key of timedOut) {
      const late = await sql<{ id: string }>(
        "select id from ledger_entry where user_id = ? and idempotency_key = ? " +
          "and created_at > cast(? as timestamptz) + interval '2300 milliseconds'",
        [userId, key, sentAt],
      );
      if (late.length > 0) committedLate.push(key);
    }
    t.deepEqual(
      committedLate,
      [],
      "no call answered DEADLINE_EXCEEDED began a transaction that committed after its deadline had long passed",
    );

    // A replay with the key of every call not answered OK: the first result if it committed, else a
    // top-up done now, exactly once.
    for (const [i, key] of keys.entries()) {
      if (answers[i] === "OK") continue;
      const before = await entryIdOf(userId, key);
      const replay: TopUpResponse = await wallet.topUp(
        { userId, amount: { amountMinor: BigInt(i + 1) }, idempotencyKey: key },
        { deadlineMs: 30_000 },
      );
      if (before) t.is(replay.entry?.id, before, `the replay of ${key} returns the entry its first call committed`);
      t.is(await entryIdOf(userId, key), replay.entry?.id);
    }
    const expected = 1n + (300n * 301n) / 2n;
    t.deepEqual(await ledgerOf(app.app.orm, userId), { sum: expected, rows: 301 });
    t.is((await wallet.getBalance({ userId })).wallet?.balance?.amountMinor, expected);
  },
);

/** Holds the user's wallet row locked (SELECT … FOR UPDATE in an open transaction) until released. */
async function lockWallet(userId: string): Promise<{ pid: number; release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: app.config.databaseUrl });
  await client.connect();
  await client.query("begin");
  await client.query("select 1 from wallet where user_id = $1 for update", [userId]);
  const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
  return {
    pid: rows[0]!.pid,
    async release() {
      await client.query("rollback");
      await client.end();
    },
  };
}

test.serial("a top-up waiting for the wallet's row lock stops waiting at its deadline and never commits", async (t) => {
  const wallet = app.grpc(WalletService);
  const userId = "blocked";
  await wallet.topUp({ userId, amount: { amountMinor: 5n }, idempotencyKey: "opening" });
  const lock = await lockWallet(userId);
  try {
    const call = wallet.topUp({ userId, amount: { amountMinor: 7n }, idempotencyKey: "late" }, { deadlineMs: 2000 });
    await waitForLockWaiters(app.config.databaseUrl, lock.pid, 1);
    t.is(codeOf(await call.catch((error: unknown) => error)), "DeadlineExceeded");
    // The lock is still held: the wait ended by itself (lock_timeout from the call's deadline).
    await waitFor(async () => (await busySessions()) === 1, {
      timeoutMs: 15_000,
      message: () => "the top-up still waits for the lock after its deadline",
    });
  } finally {
    await lock.release();
  }
  t.is(await entryIdOf(userId, "late"), undefined);
  t.deepEqual(await ledgerOf(app.app.orm, userId), { sum: 5n, rows: 1 });
});

test.serial(
  "a top-up cancelled by its client while it waits for the lock does not commit once the lock is free",
  async (t) => {
    const wallet = app.grpc(WalletService);
    const userId = "cancelling";
    await wallet.topUp({ userId, amount: { amountMinor: 5n }, idempotencyKey: "opening" });
    const lock = await lockWallet(userId);
    const abort = new AbortController();
    const call = wallet
      .topUp(
        { userId, amount: { amountMinor: 7n }, idempotencyKey: "gone" },
        { deadlineMs: 60_000, signal: abort.signal },
      )
      .catch((error: unknown) => error);
    try {
      await waitForLockWaiters(app.config.databaseUrl, lock.pid, 1);
      abort.abort();
      t.is(codeOf(await call), "Canceled");
      // The server hears of the cancel (RST_STREAM over loopback) long before this generous pause ends.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    } finally {
      await lock.release();
    }
    await waitFor(async () => (await busySessions()) === 0, { timeoutMs: 30_000, message: () => "app sessions idle" });
    t.is(await entryIdOf(userId, "gone"), undefined, "the cancelled call committed nothing");
    // Its retry does the top-up, once.
    const retried = await wallet.topUp({ userId, amount: { amountMinor: 7n }, idempotencyKey: "gone" });
    t.is(retried.wallet?.balance?.amountMinor, 12n);
    t.deepEqual(await ledgerOf(app.app.orm, userId), { sum: 12n, rows: 2 });
  },
);
