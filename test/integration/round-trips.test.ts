// The statements each booking transaction sends to PostgreSQL and the round trips, both counted
// in the pg driver: a statement is every text the driver is given (a compiled one goes out as a
// prepared statement, compiled-query.ts), minus BEGIN and COMMIT; a round trip is a query given
// while the connection has none in flight, and the queries given before its answer go out with
// it (the clients pipeline; a BEGIN goes out with the first statement: statement-folding.ts). Round trips are most of what a
// transaction costs on both sides of the connection (docs/benchmarks.md), so a change that adds
// one should fail here, not go unnoticed. The two mechanisms the design asks for are pinned too:
// the seat lock is a SELECT … FOR UPDATE, the wallet write is versioned.

import test from "ava";
import pg from "pg";
import { reserveSeat, type HoldPolicy } from "../../src/booking/seat-hold.js";
import { payReservation } from "../../src/wallet/reservation-payment.js";
import { topUp } from "../../src/wallet/wallet-writes.js";
import { openBookingDb, type BookingDb } from "../helpers/booking.js";

let db: BookingDb;
const policy: HoldPolicy = { holdSeconds: 300, maxSeatsPerUser: 4 };
let statements: string[] | undefined;
let roundTrips: string[] | undefined;

const inFlight = new WeakMap<pg.Client, number>();

// Before any connection exists: the pool's clients bind this method when they connect.
const driverQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: typeof driverQuery }).query = function (this: pg.Client, ...args) {
  const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: string } | null)?.text;
  const result = driverQuery.apply(this, args);
  if (text === undefined || !roundTrips || !statements) return result;
  const pending = inFlight.get(this) ?? 0;
  if (pending === 0) roundTrips.push(text);
  else roundTrips[roundTrips.length - 1] += `;\n${text}`;
  statements.push(...text.split(/;\s*/).filter((s) => s.trim() !== "" && !/^(begin|commit|set local)\b/.test(s)));
  inFlight.set(this, pending + 1);
  const settled = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
  (result as Promise<unknown>).then(settled, settled);
  return result;
};

test.before(async () => {
  db = await openBookingDb("round_trips", 20);
});

test.after.always(async () => {
  await db?.stop();
});

async function counted<T>(work: () => Promise<T>): Promise<{ result: T; sql: string[]; sent: string[] }> {
  statements = [];
  roundTrips = [];
  try {
    const result = await work();
    return { result, sql: statements, sent: roundTrips };
  } finally {
    statements = undefined;
    roundTrips = undefined;
  }
}

const schedule = () => db.catalog.schedules[0]!;

test.serial("a first top-up is 3 round trips; a later one too", async (t) => {
  const first = await counted(() => topUp(db.orm, "counted", 50_000n, "k1"));
  t.is(first.sent.length, 3, first.sent.join("\n"));
  t.regex(first.sent[0]!, /^begin;\s*select /);
  t.is(first.sent.at(-1), "commit");
  const second = await counted(() => topUp(db.orm, "counted", 50_000n, "k2"));
  t.is(second.sent.length, 3, second.sent.join("\n"));
  // The ledger entry and the versioned write of the wallet, in one statement.
  t.regex(
    second.sql.at(-1)!,
    /^with "entry" as \(insert into "ledger_entry" .*"credited" as \(update "wallet" .* where .*"version" = /,
  );
});

test.serial("a hold is 4 round trips, one of them the seat's SELECT … FOR UPDATE", async (t) => {
  const { sql, sent } = await counted(() =>
    reserveSeat(
      db.orm,
      { scheduleId: schedule().id, seatId: schedule().seatIds[0]!, userId: "counted", requestId: "h1" },
      policy,
    ),
  );
  t.is(sent.length, 4, sent.join("\n"));
  // BEGIN, the user's and the schedule's advisory locks, then the read that must follow them.
  t.regex(sent[0]!, /^begin;\s*select pg_advisory_xact_lock\(.*;\s*select .* from "reservation" /s);
  // The locks, the read, the seat lock, and the insert of the hold with its seat's update.
  t.is(sql.length, 4, sql.join("\n"));
  // The seat row alone: the schedule's sale, read in the same statement, is not locked (sale-gate.ts).
  t.is(sql.filter((s) => /^select .* from "seat" .* for update of "s"$/.test(s)).length, 1, sql.join("\n"));
});

test.serial(
  "a payment is 4 round trips: reservation, seat lock with the wallet, the rows with the versioned wallet update, commit",
  async (t) => {
    const held = await reserveSeat(
      db.orm,
      { scheduleId: schedule().id, seatId: schedule().seatIds[1]!, userId: "counted", requestId: "h2" },
      policy,
    );
    const { result, sql, sent } = await counted(() =>
      payReservation(db.orm, { reservationId: held.id, userId: "counted", idempotencyKey: "p1" }),
    );
    t.false(result.replayed);
    t.is(sql.length, 3, sql.join("\n"));
    t.is(sent.length, 4, sent.join("\n"));
    t.regex(sent[0]!, /^begin;\s*select .* from "reservation" /s);
    t.regex(sql[1]!, /^select .* from "seat" .* left join "wallet" .* for update of "s"$/);
    t.regex(
      sql[2]!,
      /^with "confirmed" as \(update "reservation".*"debited" as \(update "wallet" .* where .*"version" = /,
    );
    // The other hold of this user (h1) is still live: the payment says so without a further query.
    t.deepEqual(result.heldScheduleIds, [schedule().id]);
  },
);
