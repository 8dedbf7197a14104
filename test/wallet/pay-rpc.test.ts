// PayReservation over the wire (real server, queue-token guard, outbox relay, real PostgreSQL
// and Redis): the event reaches the stream once, the queue slot is given back, money is
// conserved under concurrency, and every refusal has its code and reason and charges nothing.

import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, ReservationStatus } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { LedgerEntryKind, WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { eventStreamKey, fromStreamFields } from "../../src/platform/redis/event-stream.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { admitUsers, balanceOf, ledgerOf, loadCatalog, withToken, type Catalog } from "../helpers/booking.js";
import { errorReason, expectError, fieldViolations } from "../helpers/errors.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;
let concert: Catalog;
let otherConcertId: string;
let nextSeat = 0;

test.before(async () => {
  app = await startTestApp("pay_rpc", { maxActiveUsers: 1000, admissionIntervalMs: 50, maxSeatsPerUser: 100 });
  await seedCatalog(app.app.orm.em.fork(), { concerts: 2, schedules: 1, seats: 200 });
  const [a, b] = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ id: string }[]>("select id from concert order by id");
  concert = await loadCatalog(app.app.orm.em.fork(), a!.id);
  otherConcertId = b!.id;
});

test.after.always(async () => {
  await app?.stop();
});

const booking = () => app.grpc(BookingService);
const wallet = () => app.grpc(WalletService);

async function admit(userId: string, concertId = concert.concertId): Promise<string> {
  return (await admitUsers(app, concertId, [userId])).get(userId)!;
}

async function hold(userId: string, token: string) {
  const seatId = concert.schedules[0]!.seatIds[nextSeat++]!;
  const { reservation } = await booking().reserveSeat(
    { scheduleId: concert.schedules[0]!.id, seatId, userId, requestId: `h-${seatId}` },
    withToken(token),
  );
  return reservation!;
}

async function streamEventsOf(aggregateId: string) {
  const entries = (await app.app.redis.xrange(eventStreamKey(app.config.redisKeyPrefix), "-", "+")) as [
    string,
    string[],
  ][];
  return entries.map(([, fields]) => fromStreamFields(fields)!).filter((e) => e.aggregateId === aggregateId);
}

// Serial, so it runs first, while the handler's schedule → concert cache is still cold: the
// concert check inside each payment transaction must not need a second pool connection.
test.serial("more first payments at once than pool connections all complete", async (t) => {
  const users = Array.from({ length: 3 * app.config.databasePoolMax }, (_, i) => `early-${i}`);
  const tokens = await admitUsers(app, concert.concertId, users);
  const holds = [];
  for (const userId of users) {
    await wallet().topUp({ userId, amount: { amountMinor: 50_000n }, idempotencyKey: "t" });
    holds.push(await hold(userId, tokens.get(userId)!));
  }
  const paid = await Promise.all(
    holds.map((h) =>
      wallet().payReservation(
        { reservationId: h.id, userId: h.userId, idempotencyKey: "p" },
        { ...withToken(tokens.get(h.userId)), deadlineMs: 20_000 },
      ),
    ),
  );
  t.is(paid.filter((p) => p.reservation?.status === ReservationStatus.CONFIRMED).length, users.length);
});

test("a payment confirms the hold, publishes one payment.completed event and gives the queue slot back", async (t) => {
  const token = await admit("payer");
  await wallet().topUp({ userId: "payer", amount: { amountMinor: 50_000n }, idempotencyKey: "t1" });
  const held = await hold("payer", token);
  const paid = await wallet().payReservation(
    { reservationId: held.id, userId: "payer", idempotencyKey: "pay-1" },
    withToken(token),
  );
  t.like(paid.payment, { reservationId: held.id, userId: "payer" });
  t.is(paid.payment?.amount?.amountMinor, held.price!.amountMinor);
  t.is(paid.reservation?.status, ReservationStatus.CONFIRMED);
  t.truthy(paid.reservation?.confirmTime);
  t.is(paid.wallet?.balance?.amountMinor, 50_000n - held.price!.amountMinor);

  await waitFor(async () => (await streamEventsOf(held.id)).length > 0, {
    message: () => "payment.completed never reached the stream",
  });
  const events = await streamEventsOf(held.id);
  t.is(new Set(events.map((e) => e.eventId)).size, 1);
  t.like(events[0], { eventType: "payment.completed" });
  t.like(events[0]!.payload, { payment_id: paid.payment!.id, amount_minor: held.price!.amountMinor.toString() });

  await expectError(
    t,
    booking().getReservation({ reservationId: held.id }, withToken(token)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
});

test("a double-submitted payment charges once; the slot stays while another seat is still held", async (t) => {
  const token = await admit("double");
  await wallet().topUp({ userId: "double", amount: { amountMinor: 50_000n }, idempotencyKey: "t1" });
  const [first, second] = [await hold("double", token), await hold("double", token)];
  const request = { reservationId: first.id, userId: "double", idempotencyKey: "same" };
  const results = await Promise.all(
    Array.from({ length: 5 }, () => wallet().payReservation(request, withToken(token))),
  );
  t.is(new Set(results.map((r) => r.payment?.id)).size, 1);
  const charged = first.price!.amountMinor;
  t.is(await balanceOf(app.app.orm, "double"), 50_000n - charged);
  await expectError(
    t,
    wallet().payReservation({ ...request, reservationId: second.id }, withToken(token)),
    Code.InvalidArgument,
    "IDEMPOTENCY_KEY_REUSED",
  );
  await expectError(
    t,
    wallet().payReservation({ ...request, idempotencyKey: "other" }, withToken(token)),
    Code.FailedPrecondition,
    "RESERVATION_NOT_PAYABLE",
  );
  // Still admitted: the second seat is held and unpaid. Paying it releases the slot.
  await wallet().payReservation(
    { reservationId: second.id, userId: "double", idempotencyKey: "second" },
    withToken(token),
  );
  await expectError(
    t,
    booking().getReservation({ reservationId: second.id }, withToken(token)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  t.is(await balanceOf(app.app.orm, "double"), 50_000n - charged - second.price!.amountMinor);
});

test("100 concurrent payments and top-ups on one wallet keep balance = Σ ledger, never negative", async (t) => {
  const user = "busy";
  const token = await admit(user);
  await wallet().topUp({ userId: user, amount: { amountMinor: 100_000n }, idempotencyKey: "seed" });
  const holds: Awaited<ReturnType<typeof hold>>[] = [];
  for (let i = 0; i < 50; i++) holds.push(await hold(user, token));
  const client = wallet();
  const settle = (p: Promise<unknown>) =>
    p.then(
      () => "OK",
      (e: unknown) => `${Code[(e as { code: Code }).code]} ${errorReason(e)}`,
    );
  const calls = holds.flatMap((h, i) => [
    settle(client.payReservation({ reservationId: h.id, userId: user, idempotencyKey: `p-${i}` }, withToken(token))),
    settle(client.topUp({ userId: user, amount: { amountMinor: 5_000n }, idempotencyKey: `t-${i}` })),
  ]);
  const outcomes = await Promise.all(calls);
  const pays = outcomes.filter((_, i) => i % 2 === 0);
  const topUps = outcomes.filter((_, i) => i % 2 === 1);
  t.deepEqual(new Set(topUps), new Set(["OK"]));
  t.deepEqual(
    [...new Set(pays)].filter((o) => o !== "OK" && o !== "FailedPrecondition INSUFFICIENT_BALANCE"),
    [],
  );
  const paidCount = pays.filter((o) => o === "OK").length;
  t.true(paidCount > 0 && paidCount < 50, `${paidCount} paid`);

  const balance = await balanceOf(app.app.orm, user);
  t.true(balance >= 0n);
  t.deepEqual(await ledgerOf(app.app.orm, user), { sum: balance, rows: 1 + 50 + paidCount });
  const [row] = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ payments: number; confirmed: number }[]>(
      "select (select count(*)::int from payment where user_id = ?) as payments, (select count(*)::int from reservation where user_id = ? and status = 'CONFIRMED') as confirmed",
      [user, user],
    );
  t.deepEqual(row, { payments: paidCount, confirmed: paidCount });
});

test("refusals have their code and reason and charge nothing", async (t) => {
  const token = await admit("picky");
  const otherToken = await admit("picky", otherConcertId);
  const held = await hold("picky", token);
  const pay = (
    request: Partial<{ reservationId: string; userId: string; idempotencyKey: string }>,
    options = withToken(token),
  ) => wallet().payReservation({ reservationId: held.id, userId: "picky", idempotencyKey: "k", ...request }, options);

  await expectError(t, pay({}, withToken(undefined)), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
  await expectError(t, pay({ userId: "payer" }), Code.PermissionDenied, "QUEUE_TOKEN_MISMATCH");
  await expectError(t, pay({}, withToken(otherToken)), Code.PermissionDenied, "QUEUE_TOKEN_MISMATCH");
  const invalid = await expectError(
    t,
    pay({ reservationId: "nope", idempotencyKey: "" }),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(invalid), ["reservation_id", "idempotency_key"]);
  await expectError(
    t,
    pay({ reservationId: "00000000-0000-0000-0000-000000000000" }),
    Code.NotFound,
    "RESERVATION_NOT_FOUND",
  );
  await expectError(t, pay({}), Code.FailedPrecondition, "INSUFFICIENT_BALANCE");
  await wallet().topUp({
    userId: "picky",
    amount: { amountMinor: held.price!.amountMinor - 1n },
    idempotencyKey: "almost",
  });
  await expectError(t, pay({}), Code.FailedPrecondition, "INSUFFICIENT_BALANCE");
  await booking().cancelReservation({ reservationId: held.id, userId: "picky" }, withToken(token));
  await expectError(t, pay({}), Code.FailedPrecondition, "RESERVATION_NOT_PAYABLE");
  t.is(await balanceOf(app.app.orm, "picky"), held.price!.amountMinor - 1n);
});

test("cancelling a paid reservation refunds it through the ledger and publishes payment.refunded", async (t) => {
  const token = await admit("refundee");
  await wallet().topUp({ userId: "refundee", amount: { amountMinor: 20_000n }, idempotencyKey: "t1" });
  const held = await hold("refundee", token);
  const paid = await wallet().payReservation(
    { reservationId: held.id, userId: "refundee", idempotencyKey: "p1" },
    withToken(token),
  );
  // Paying gave the slot back; coming back to cancel means queueing again.
  const again = await admit("refundee");
  const { reservation } = await booking().cancelReservation(
    { reservationId: held.id, userId: "refundee" },
    withToken(again),
  );
  t.is(reservation?.status, ReservationStatus.CANCELLED);
  // A retry of the payment after the refund answers what the first call answered (the wallet's
  // update time then is the payment's, a few milliseconds before its flush).
  const retried = await wallet().payReservation(
    { reservationId: held.id, userId: "refundee", idempotencyKey: "p1" },
    withToken(again),
  );
  const withoutUpdateTime = (r: typeof paid) => ({ ...r, wallet: { ...r.wallet!, updateTime: undefined } });
  t.deepEqual(withoutUpdateTime(retried), withoutUpdateTime(paid));
  t.is(retried.reservation?.status, ReservationStatus.CONFIRMED);
  const { entries } = await wallet().listTransactions({ userId: "refundee" });
  t.deepEqual(
    entries.map((e) => e.kind),
    [LedgerEntryKind.REFUND, LedgerEntryKind.PAYMENT, LedgerEntryKind.TOP_UP],
  );
  t.is(entries[0]!.amount?.amountMinor, held.price!.amountMinor);
  t.is((await wallet().getBalance({ userId: "refundee" })).wallet?.balance?.amountMinor, 20_000n);
  await waitFor(async () => (await streamEventsOf(held.id)).length === 2, {
    message: () => "payment.refunded never reached the stream",
  });
  t.deepEqual(
    (await streamEventsOf(held.id)).map((e) => e.eventType),
    ["payment.completed", "payment.refunded"],
  );
});

/** A user admitted, funded with 50,000, holding a seat and paying it with `idempotencyKey`; resolves once the payment released the token. */
async function paidWithUsedUpToken(userId: string, idempotencyKey: string) {
  const token = await admit(userId);
  await wallet().topUp({ userId, amount: { amountMinor: 50_000n }, idempotencyKey: "t" });
  const reservation = await hold(userId, token);
  const request = { reservationId: reservation.id, userId, idempotencyKey };
  const paid = await wallet().payReservation(request, withToken(token));
  await waitFor(
    async () => (await app.grpc(QueueService).getQueueStatus({ token })).status?.state === QueueState.EXPIRED,
  );
  return { token, request, paid };
}

test("a retried payment after the token was used up replays the first payment", async (t) => {
  // The payment released the token: a retry whose answer was lost must still get it.
  const { token, request, paid: first } = await paidWithUsedUpToken("replayer", "pay-once");
  const replay = await wallet().payReservation(request, withToken(token));
  t.deepEqual(replay.payment, first.payment);
  // The wallet as the payment left it, exactly as the first answer had it.
  t.deepEqual(replay.wallet, first.wallet);
  t.deepEqual(await ledgerOf(app.app.orm, "replayer"), { sum: 50_000n - first.payment!.amount!.amountMinor, rows: 2 });
  // Anything but a replay still needs an ACTIVE token; and the used-up token stays its user's.
  await expectError(
    t,
    wallet().payReservation({ ...request, idempotencyKey: "pay-twice" }, withToken(token)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  await expectError(
    t,
    wallet().payReservation({ ...request, userId: "someone-else" }, withToken(token)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
});

test("a payment retried with a later token for the same concert replays it and leaves that token ACTIVE", async (t) => {
  const { token: first, request, paid } = await paidWithUsedUpToken("returner", "pay-returner");
  const later = await admit("returner");
  t.not(later, first);
  const replay = await wallet().payReservation(request, withToken(later));
  t.is(replay.payment?.id, paid.payment?.id);
  t.is((await app.grpc(QueueService).getQueueStatus({ token: later })).status?.state, QueueState.ACTIVE);
});

test("a payment replay with another user's token is QUEUE_TOKEN_MISMATCH, ACTIVE or used up", async (t) => {
  const { request } = await paidWithUsedUpToken("owner", "pay-owner");
  const stranger = await admit("stranger");
  const refused = async (state: string) => {
    const error = await expectError(
      t,
      wallet().payReservation(request, withToken(stranger)),
      Code.PermissionDenied,
      "QUEUE_TOKEN_MISMATCH",
    );
    t.false(error.message.includes(request.reservationId), state);
  };
  await refused("ACTIVE");
  await app.grpc(QueueService).leaveQueue({ token: stranger });
  await refused("used up");
});

test("a payment replay with a token for another concert is QUEUE_TOKEN_MISMATCH, whether ACTIVE or used up", async (t) => {
  const { request } = await paidWithUsedUpToken("wanderer", "pay-wanderer");
  const elsewhere = await admit("wanderer", otherConcertId);
  const refused = await expectError(
    t,
    wallet().payReservation(request, withToken(elsewhere)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
  t.false(refused.message.includes(request.reservationId));
  // That token is not spent by the refusal.
  t.is((await app.grpc(QueueService).getQueueStatus({ token: elsewhere })).status?.state, QueueState.ACTIVE);
  // Once it is used up (the user left that line) it is let through for replays only, and still refused.
  await app.grpc(QueueService).leaveQueue({ token: elsewhere });
  await expectError(
    t,
    wallet().payReservation(request, withToken(elsewhere)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
});
