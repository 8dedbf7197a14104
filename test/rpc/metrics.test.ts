// GET /metrics as an operator reads it: the waiting room per concert (waiting, active against
// the cap, admissions, expiries and abandonments), the outbox (published, pending, how old the
// oldest pending event is) and the hold sweeper, from real calls on real ports.

import test from "ava";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { admitUsers, loadCatalog, withToken, type Catalog } from "../helpers/booking.js";
import { waitFor } from "../helpers/wait.js";

let queueApp: TestApp;
let bookingApp: TestApp;

test.before(async () => {
  [queueApp, bookingApp] = await Promise.all([
    // One active user at a time, for two seconds; a waiting user who stops polling leaves after two.
    startTestApp("metrics_queue", { maxActiveUsers: 1, admissionIntervalMs: 50, activeTokenTtlSeconds: 2, waitingTokenTtlSeconds: 2 }),
    startTestApp("metrics_booking", { maxActiveUsers: 10, admissionIntervalMs: 50, seatHoldSeconds: 1, holdSweepIntervalMs: 100 }),
  ]);
  await Promise.all([seedSmallCatalog(queueApp, 4), seedSmallCatalog(bookingApp, 10)]);
});

test.after.always(async () => {
  await Promise.all([queueApp?.stop(), bookingApp?.stop()]);
});

/** Every sample of the exposition as "name{labels}" → value. */
async function scrape(app: TestApp): Promise<Map<string, number>> {
  const response = await fetch(`${app.connectUrl}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

test("the waiting room per concert: waiting and active against the cap, admissions, expiries and abandonments", async (t) => {
  const concert: Catalog = await loadCatalog(queueApp.app.orm.em.fork());
  const label = `{concert_id="${concert.concertId}"}`;
  const queue = queueApp.grpc(QueueService);
  const joined = [];
  for (const userId of ["first", "second", "quitter"]) joined.push(await queue.joinQueue({ concertId: concert.concertId, userId }));
  // "second" keeps polling; "quitter" never does again.
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await queue.getQueueStatus({ token: joined[1]!.token });
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  try {
    let first!: Map<string, number>;
    await waitFor(async () => ((first = await scrape(queueApp)).get(`queue_active_users${label}`) ?? 0) === 1, { message: () => "one user active" });
    t.is(first.get("queue_active_cap"), 1);
    t.is(first.get(`queue_waiting_users${label}`), 2, "second and quitter wait");

    // The first user's two seconds run out, the quitter is dropped, the second is admitted.
    let later!: Map<string, number>;
    await waitFor(
      async () => {
        later = await scrape(queueApp);
        return (later.get('queue_tokens_ended_total{reason="expired"}') ?? 0) >= 1 && (later.get('queue_tokens_ended_total{reason="abandoned"}') ?? 0) >= 1 && (later.get("queue_admitted_total") ?? 0) >= 2;
      },
      { timeoutMs: 15_000, message: () => [...later].filter(([k]) => k.startsWith("queue_")).join(" ") },
    );
    t.true((later.get(`queue_active_users${label}`) ?? 2) <= 1, "never above the cap");
  } finally {
    polling = false;
    await poller;
  }
});

test("the outbox: published events, nothing pending once relayed, and the backlog while an event is held back", async (t) => {
  const concert = await loadCatalog(bookingApp.app.orm.em.fork());
  const tokens = await admitUsers(bookingApp, concert.concertId, ["payer"]);
  const token = tokens.get("payer")!;
  const schedule = concert.schedules[0]!;
  await bookingApp.grpc(WalletService).topUp({ userId: "payer", amount: { amountMinor: 1_000_000n }, idempotencyKey: "metrics-topup" });
  const { reservation } = await bookingApp.grpc(BookingService).reserveSeat({ scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "payer", requestId: "m1" }, withToken(token));
  await bookingApp.grpc(WalletService).payReservation({ reservationId: reservation!.id, userId: "payer", idempotencyKey: "metrics-pay" }, withToken(token));
  let samples!: Map<string, number>;
  await waitFor(async () => ((samples = await scrape(bookingApp)).get("outbox_events_published_total") ?? 0) >= 1, { message: () => "the payment event published" });
  t.is(samples.get("outbox_pending_events"), 0);
  t.is(samples.get("outbox_oldest_pending_seconds"), 0);

  // An event the relay cannot take (its row locked by another transaction) is pending, and ages.
  const blocker = new pg.Client({ connectionString: bookingApp.config.databaseUrl });
  await blocker.connect();
  try {
    let held = false;
    for (let attempt = 0; attempt < 5 && !held; attempt++) {
      const { rows } = await blocker.query<{ id: string }>(
        `insert into outbox (event_id, event_type, aggregate_type, aggregate_id, payload, created_at)
         values (gen_random_uuid(), 'test.held', 'test', gen_random_uuid()::text, '{}', now() - interval '30 seconds') returning id`,
      );
      await blocker.query("begin");
      // The relay polls once a second: it may have taken the row in the moment before the lock.
      held = (await blocker.query("select 1 from outbox where id = $1 and published_at is null for update", [rows[0]!.id])).rowCount === 1;
      if (!held) await blocker.query("rollback");
    }
    t.true(held);
    samples = await scrape(bookingApp);
    t.is(samples.get("outbox_pending_events"), 1);
    t.true(samples.get("outbox_oldest_pending_seconds")! >= 30, `${samples.get("outbox_oldest_pending_seconds")} s`);
    await blocker.query("commit");
    await waitFor(async () => (await scrape(bookingApp)).get("outbox_pending_events") === 0, { message: () => "the held event published once released" });
  } finally {
    await blocker.end();
  }
});

test("the hold sweeper counts the holds it expired", async (t) => {
  const concert = await loadCatalog(bookingApp.app.orm.em.fork());
  const token = (await admitUsers(bookingApp, concert.concertId, ["holder"])).get("holder")!;
  const schedule = concert.schedules[1]!;
  await bookingApp.grpc(BookingService).reserveSeat({ scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "holder", requestId: "unpaid" }, withToken(token));
  await waitFor(async () => ((await scrape(bookingApp)).get("hold_sweeper_expired_total") ?? 0) >= 1, { timeoutMs: 10_000, message: () => "the unpaid hold swept" });
  t.is((await scrape(bookingApp)).get("hold_sweeper_failures_total"), 0);
});
