// Group commit of holds, top-ups and payments (group-commit.ts) against real PostgreSQL: requests
// of a window share one transaction and each keeps its own outcome. One that is refused leaves
// the others committed; one that fails in PostgreSQL (the batch then rolls back) still lets every
// other commit, on its own; a call over before its batch starts leaves it, one that ends while its
// batch runs commits nothing while the others do; two requests of one wallet never share a
// transaction.

import test from "ava";
import pg from "pg";
import { reserveSeat, type HoldPolicy } from "../../src/booking/seat-hold.js";
import { createGroupCommit, type GroupCommit } from "../../src/platform/db/group-commit.js";
import { DomainError } from "../../src/platform/domain-error.js";
import { payReservation } from "../../src/wallet/reservation-payment.js";
import { getWallet } from "../../src/wallet/wallet-ledger.js";
import { topUp } from "../../src/wallet/wallet-writes.js";
import { ledgerOf, openBookingDb, reservationRow, seatRow, type BookingDb } from "../helpers/booking.js";
import { waitForLockWaiters } from "../helpers/database.js";

let db: BookingDb;
const policy: HoldPolicy = { holdSeconds: 300, maxSeatsPerUser: 4 };

test.before(async () => {
  db = await openBookingDb("group_commit", 60, 8);
});

test.after.always(async () => {
  await db?.stop();
});

/** A group whose window is long enough to catch every request a test sends at once, and its batches. */
function group(): { group: GroupCommit; batches: { members: number; committed: boolean }[] } {
  const batches: { members: number; committed: boolean }[] = [];
  return {
    group: createGroupCommit(db.orm, {
      maxItems: 100,
      maxDelayMs: 50,
      onBatch: (members, committed) => batches.push({ members, committed }),
    }),
    batches,
  };
}

const schedule = () => db.catalog.schedules[0]!;
const seat = (i: number) => schedule().seatIds[i]!;

test.serial(
  "holds, a top-up and a payment of a window commit together; a refused hold leaves the others",
  async (t) => {
    await topUp(db.orm, "gc-payer", 100_000n, "gc-payer-1");
    const held = await reserveSeat(
      db.orm,
      { scheduleId: schedule().id, seatId: seat(0), userId: "gc-payer", requestId: "gc-h0" },
      policy,
    );
    const { group: g, batches } = group();
    const hold = (user: string, i: number) =>
      reserveSeat(
        db.orm,
        { scheduleId: schedule().id, seatId: seat(i), userId: user, requestId: `${user}-h` },
        policy,
        undefined,
        undefined,
        g,
      );
    const outcomes = await Promise.allSettled([
      hold("gc-a", 1),
      hold("gc-b", 2),
      // Seat 0 is held by gc-payer: refused, before it wrote anything.
      hold("gc-c", 0),
      topUp(db.orm, "gc-d", 700n, "gc-d-1", undefined, g),
      payReservation(
        db.orm,
        { reservationId: held.id, userId: "gc-payer", idempotencyKey: "gc-pay" },
        undefined,
        undefined,
        undefined,
        g,
      ),
    ]);
    t.deepEqual(batches, [{ members: 5, committed: true }]);
    t.deepEqual(
      outcomes.map((o) => o.status),
      ["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"],
    );
    const refused = (outcomes[2] as PromiseRejectedResult).reason;
    t.true(refused instanceof DomainError && refused.reason === "SEAT_UNAVAILABLE", String(refused));
    t.is((await seatRow(db.orm, seat(1))).status, "HELD");
    t.is((await seatRow(db.orm, seat(2))).status, "HELD");
    t.is((await seatRow(db.orm, seat(0))).status, "RESERVED");
    t.is((await reservationRow(db.orm, held.id)).status, "CONFIRMED");
    t.is((await getWallet(db.orm.em.fork(), "gc-d")).balanceMinor, 700n);
    t.is((await getWallet(db.orm.em.fork(), "gc-payer")).balanceMinor, 100_000n - held.priceMinor);
  },
);

test.serial(
  "a request that fails in PostgreSQL rolls its batch back, and every other still commits on its own",
  async (t) => {
    // The key was used for another amount: the batch's ledger INSERT violates its unique index,
    // which aborts the whole transaction.
    await topUp(db.orm, "gc-e", 100n, "gc-e-1");
    const { group: g, batches } = group();
    const outcomes = await Promise.allSettled([
      topUp(db.orm, "gc-e", 999n, "gc-e-1", undefined, g),
      topUp(db.orm, "gc-f", 300n, "gc-f-1", undefined, g),
      reserveSeat(
        db.orm,
        { scheduleId: schedule().id, seatId: seat(3), userId: "gc-g", requestId: "gc-g-h" },
        policy,
        undefined,
        undefined,
        g,
      ),
    ]);
    t.deepEqual(batches, [{ members: 3, committed: false }]);
    const reused = (outcomes[0] as PromiseRejectedResult).reason;
    t.true(reused instanceof DomainError && reused.reason === "IDEMPOTENCY_KEY_REUSED", String(reused));
    t.is(outcomes[1]!.status, "fulfilled");
    t.is(outcomes[2]!.status, "fulfilled");
    t.is((await getWallet(db.orm.em.fork(), "gc-e")).balanceMinor, 100n);
    t.is((await getWallet(db.orm.em.fork(), "gc-f")).balanceMinor, 300n);
    t.is((await seatRow(db.orm, seat(3))).status, "HELD");
  },
);

test.serial("two top-ups of one wallet in a window never share a transaction, and both count", async (t) => {
  const { group: g, batches } = group();
  const results = await Promise.all([
    topUp(db.orm, "gc-h", 100n, "gc-h-1", undefined, g),
    topUp(db.orm, "gc-h", 200n, "gc-h-2", undefined, g),
    topUp(db.orm, "gc-i", 50n, "gc-i-1", undefined, g),
    topUp(db.orm, "gc-j", 60n, "gc-j-1", undefined, g),
  ]);
  t.is(results.length, 4);
  // gc-h's second top-up ran on its own; the other three together.
  t.deepEqual(batches, [{ members: 3, committed: true }]);
  const wallet = await getWallet(db.orm.em.fork(), "gc-h");
  t.is(wallet.balanceMinor, 300n);
  t.is(wallet.version, 2);
});

test.serial("a call that is over before its batch starts leaves it and writes nothing", async (t) => {
  const { group: g, batches } = group();
  const cancelled = new AbortController();
  const over = new Error("the call was cancelled");
  const pending = Promise.allSettled([
    topUp(db.orm, "gc-k", 100n, "gc-k-1", { signal: cancelled.signal }, g),
    topUp(db.orm, "gc-l", 100n, "gc-l-1", undefined, g),
    topUp(db.orm, "gc-m", 100n, "gc-m-1", undefined, g),
  ]);
  cancelled.abort(over);
  const [first, second, third] = await pending;
  t.is((first as PromiseRejectedResult).reason, over);
  t.is(second!.status, "fulfilled");
  t.is(third!.status, "fulfilled");
  t.deepEqual(batches, [{ members: 2, committed: true }]);
  t.is((await getWallet(db.orm.em.fork(), "gc-k")).version, 0);
});

test.serial(
  "a call that ends while its batch runs commits nothing, the others commit, and its replay tells the truth",
  async (t) => {
    await topUp(db.orm, "gc-n", 100n, "gc-n-0");
    const { group: g, batches } = group();
    const cancelled = new AbortController();
    const over = new Error("the call was cancelled");
    // The test holds gc-n's wallet row, so the batch waits on it with every member's work under way.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query("begin");
      await blocker.query("select 1 from wallet where user_id = 'gc-n' for update");
      const pending = Promise.allSettled([
        topUp(db.orm, "gc-n", 500n, "gc-n-1", { signal: cancelled.signal }, g),
        topUp(db.orm, "gc-o", 100n, "gc-o-1", undefined, g),
        topUp(db.orm, "gc-p", 100n, "gc-p-1", undefined, g),
      ]);
      const pid = (await blocker.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
      await waitForLockWaiters(db.url, pid, 1);
      cancelled.abort(over);
      await blocker.query("commit");
      const [first, second, third] = await pending;
      t.is((first as PromiseRejectedResult).reason, over);
      t.is(second!.status, "fulfilled");
      t.is(third!.status, "fulfilled");
      // The first batch rolled back at its COMMIT; the other two ran again together.
      t.deepEqual(batches, [
        { members: 3, committed: false },
        { members: 2, committed: true },
      ]);
    } finally {
      await blocker.query("rollback").catch(() => undefined);
      await blocker.end();
    }
    t.deepEqual(await ledgerOf(db.orm, "gc-n"), { sum: 100n, rows: 1 });
    t.is((await getWallet(db.orm.em.fork(), "gc-n")).version, 1);
    t.deepEqual(await ledgerOf(db.orm, "gc-o"), { sum: 100n, rows: 1 });
    t.deepEqual(await ledgerOf(db.orm, "gc-p"), { sum: 100n, rows: 1 });

    // The replay with its key finds no top-up done, so it does it, once; a second replay returns that.
    const replay = await topUp(db.orm, "gc-n", 500n, "gc-n-1", undefined, g);
    t.is(replay.wallet.balanceMinor, 600n);
    t.deepEqual(await topUp(db.orm, "gc-n", 500n, "gc-n-1", undefined, g), replay);
    t.deepEqual(await ledgerOf(db.orm, "gc-n"), { sum: 600n, rows: 2 });
  },
);
