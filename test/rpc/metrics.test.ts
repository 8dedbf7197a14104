// GET /metrics as an operator reads it: the waiting room per concert (waiting, active against
// the cap, admissions, expiries and abandonments), the outbox (published, pending, how old the
// oldest pending event is) and the hold sweeper, from real calls on real ports.

import test from "ava";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, startTestAppOnPrivateRedis, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { admitUsers, endHoldNow, loadCatalog, withToken, type Catalog } from "../helpers/booking.js";
import { waitFor } from "../helpers/wait.js";
import type { GrpcClient } from "../../src/platform/rpc/grpc-client.js";

let queueApp: TestApp;
let bookingApp: TestApp;

test.before(async () => {
  [queueApp, bookingApp] = await Promise.all([
    // One active user at a time, for 15 s; a waiting user who stops polling leaves after 10 s.
    // Real time (the queue reads Redis's clock), so the TTLs are the windows in which the tests
    // read the gauges: seconds wide, for a busy machine.
    startTestApp("metrics_queue", {
      maxActiveUsers: 1,
      admissionIntervalMs: 50,
      activeTokenTtlSeconds: 15,
      waitingTokenTtlSeconds: 10,
    }),
    // Holds of the default length: a test that needs one over ends it with endHoldNow.
    startTestApp("metrics_booking", {
      maxActiveUsers: 10,
      admissionIntervalMs: 50,
      holdSweepIntervalMs: 100,
    }),
  ]);
  await Promise.all([seedSmallCatalog(queueApp, 4), seedSmallCatalog(bookingApp, 10)]);
});

test.after.always(async () => {
  await Promise.all([queueApp?.stop(), bookingApp?.stop()]);
});

/** Polls a token's status every 300 ms (a user who has not left) until stopped. */
function keepPolling(queue: GrpcClient<typeof QueueService>, token: string): { stop(): Promise<void> } {
  let polling = true;
  const loop = (async () => {
    while (polling) {
      await queue.getQueueStatus({ token }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    async stop() {
      polling = false;
      await loop;
    },
  };
}

const describe = (samples: Map<string, number> | undefined) =>
  [...(samples ?? [])].filter(([k]) => k.startsWith("queue_")).join(" ");

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

test("the waiting room per concert: waiting and active against the cap, expiries told from abandonments, gauges gone once the line is empty", async (t) => {
  const concert: Catalog = await loadCatalog(queueApp.app.orm.em.fork());
  const label = `{concert_id="${concert.concertId}"}`;
  const queue = queueApp.grpc(QueueService);
  const joined = new Map<string, string>();
  for (const userId of ["first", "quitter-a", "quitter-b", "second"])
    joined.set(userId, (await queue.joinQueue({ concertId: concert.concertId, userId })).token);
  // "second" keeps polling; the quitters never do again. With cap 1: "first" is admitted, then
  // expires after 15 s; the quitters are dropped after 10 s; then "second" is admitted.
  const poller = keepPolling(queue, joined.get("second")!);
  try {
    let samples!: Map<string, number>;
    await waitFor(
      async () => {
        samples = await scrape(queueApp);
        return samples.get(`queue_active_users${label}`) === 1 && samples.get(`queue_waiting_users${label}`) === 3;
      },
      { timeoutMs: 30_000, message: () => describe(samples) },
    );
    t.is(samples.get(`queue_active_cap${label}`), 1);

    await waitFor(
      async () => {
        samples = await scrape(queueApp);
        return (
          (samples.get('queue_tokens_ended_total{reason="abandoned"}') ?? 0) >= 2 &&
          (samples.get('queue_tokens_ended_total{reason="expired"}') ?? 0) >= 1
        );
      },
      { timeoutMs: 60_000, message: () => describe(samples) },
    );
    // "second" is admitted now and expires only 15 s later: the counts are exact until then.
    t.is(samples.get('queue_tokens_ended_total{reason="abandoned"}'), 2, describe(samples));
    t.is(samples.get('queue_tokens_ended_total{reason="expired"}'), 1, describe(samples));
    t.true((samples.get(`queue_active_users${label}`) ?? 2) <= 1, "never above the cap");
  } finally {
    await poller.stop();
  }
  await queue.leaveQueue({ token: joined.get("second")! });
  await waitFor(async () => !(await scrape(queueApp)).has(`queue_waiting_users${label}`), {
    timeoutMs: 30_000,
    message: () => "the empty concert's gauges removed",
  });
  const after = await scrape(queueApp);
  t.false(after.has(`queue_active_users${label}`));
  t.false(after.has(`queue_active_cap${label}`));
});

test("while Redis is down: the store gauge says postgres, nobody is admitted or dropped; back on Redis the gauges count again", async (t) => {
  t.timeout(120_000);
  const { app, redis, stop } = await startTestAppOnPrivateRedis("metrics_fallback", {
    maxActiveUsers: 1,
    admissionIntervalMs: 50,
    waitingTokenTtlSeconds: 10,
  });
  try {
    const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    const label = `{concert_id="${concertId}"}`;
    const queue = app.grpc(QueueService);
    await redis.kill();
    const joined = new Map<string, string>();
    for (const userId of ["first", "second"]) joined.set(userId, (await queue.joinQueue({ concertId, userId })).token);
    let samples = await scrape(app);
    t.is(samples.get('queue_store_mode{mode="postgres"}'), 1);
    t.is(samples.get('queue_store_mode{mode="redis"}'), 0);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    samples = await scrape(app);
    t.is(samples.get("queue_admitted_total") ?? 0, 0, describe(samples));
    t.is(samples.get('queue_tokens_ended_total{reason="abandoned"}') ?? 0, 0, describe(samples));

    await redis.start();
    await waitFor(
      async () =>
        (samples = await scrape(app)).get('queue_store_mode{mode="redis"}') === 1 &&
        samples.get(`queue_active_users${label}`) === 1 &&
        samples.get(`queue_waiting_users${label}`) === 1,
      { timeoutMs: 30_000, message: () => describe(samples) },
    );
    t.is(samples.get("queue_admitted_total"), 1, describe(samples));
    for (const userId of ["first", "second"]) await queue.leaveQueue({ token: joined.get(userId)! });
    await waitFor(async () => !(samples = await scrape(app)).has(`queue_active_users${label}`), {
      timeoutMs: 30_000,
      message: () => describe(samples),
    });
    t.false(samples.has(`queue_waiting_users${label}`));
  } finally {
    await stop();
  }
});

test("the outbox: published events, nothing pending once relayed, and the backlog while an event is held back", async (t) => {
  const concert = await loadCatalog(bookingApp.app.orm.em.fork());
  const tokens = await admitUsers(bookingApp, concert.concertId, ["payer"]);
  const token = tokens.get("payer")!;
  const schedule = concert.schedules[0]!;
  await bookingApp
    .grpc(WalletService)
    .topUp({ userId: "payer", amount: { amountMinor: 1_000_000n }, idempotencyKey: "metrics-topup" });
  const { reservation } = await bookingApp
    .grpc(BookingService)
    .reserveSeat(
      { scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "payer", requestId: "m1" },
      withToken(token),
    );
  await bookingApp
    .grpc(WalletService)
    .payReservation(
      { reservationId: reservation!.id, userId: "payer", idempotencyKey: "metrics-pay" },
      withToken(token),
    );
  let samples!: Map<string, number>;
  await waitFor(async () => ((samples = await scrape(bookingApp)).get("outbox_events_published_total") ?? 0) >= 1, {
    message: () => "the payment event published",
  });
  // The backlog is read at most once a second: a read from before the relay ran may still be served.
  await waitFor(async () => (samples = await scrape(bookingApp)).get("outbox_pending_events") === 0, {
    message: () => `pending ${samples.get("outbox_pending_events")}`,
  });
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
      held =
        (await blocker.query("select 1 from outbox where id = $1 and published_at is null for update", [rows[0]!.id]))
          .rowCount === 1;
      if (!held) await blocker.query("rollback");
    }
    t.true(held);
    // Scrapes within a second share one read: the next fresh one sees the held event.
    await waitFor(async () => (samples = await scrape(bookingApp)).get("outbox_pending_events") === 1, {
      message: () => `pending ${samples.get("outbox_pending_events")}`,
    });
    t.true(samples.get("outbox_oldest_pending_seconds")! >= 30, `${samples.get("outbox_oldest_pending_seconds")} s`);
    await blocker.query("commit");
    await waitFor(async () => (await scrape(bookingApp)).get("outbox_pending_events") === 0, {
      message: () => "the held event published once released",
    });
  } finally {
    await blocker.end();
  }
});

test("the hold sweeper counts the holds it expired", async (t) => {
  const concert = await loadCatalog(bookingApp.app.orm.em.fork());
  const token = (await admitUsers(bookingApp, concert.concertId, ["holder"])).get("holder")!;
  const schedule = concert.schedules[1]!;
  const { reservation } = await bookingApp
    .grpc(BookingService)
    .reserveSeat(
      { scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "holder", requestId: "unpaid" },
      withToken(token),
    );
  await endHoldNow(bookingApp.app.orm, reservation!.id);
  await waitFor(async () => ((await scrape(bookingApp)).get("hold_sweeper_expired_total") ?? 0) >= 1, {
    timeoutMs: 30_000,
    message: () => "the unpaid hold swept",
  });
  t.is((await scrape(bookingApp)).get("hold_sweeper_failures_total"), 0);
});
