// GetQueueStats and WatchQueueStats after a scripted run (joins, admissions, a leave from the line
// and from a slot, a hold and a payment, expiries), compared with what Redis and PostgreSQL hold.
// Admission steps are run by the test (timers an hour apart); only the expiry waits for a clock,
// with a generous bound.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { AdmissionState, QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import type { TestApp } from "../helpers/app.js";
import { withToken } from "../helpers/queue.js";
import { waitFor } from "../helpers/wait.js";
import { adminClient, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";
import { grpcurl } from "./grpcurl.js";

const ops = bearer(OPS_SECRET);
let app: TestApp;

test.before(async () => {
  app = await startAdminTestApp("adminstats", { admissionIntervalMs: 3_600_000 });
});

test.after.always(async () => {
  await app?.stop();
});

test("the stats match Redis and PostgreSQL after a scripted run", async (t) => {
  const admin = adminClient(app);
  const queue = app.grpc(QueueService);
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();
  const { concert } = await admin.createConcert({ title: "Stats", artist: "A", venue: "V", requestId: "stats" }, ops);
  const concertId = concert!.id;
  const { schedule } = await admin.createSchedule(
    {
      concertId,
      startsAt: timestampFromDate(new Date(Date.now() + 30 * 86_400_000)),
      sections: [{ name: "A", grade: "A", rows: 1, seatsPerRow: 10, price: { amountMinor: 500n } }],
      requestId: "stats-schedule",
    },
    ops,
  );
  await admin.updateQueueSettings(
    { settings: { concertId, maxActiveUsers: 3 }, updateMask: { paths: ["max_active_users"] } },
    ops,
  );
  const tokens: string[] = [];
  for (let i = 0; i < 6; i++) tokens.push((await queue.joinQueue({ concertId, userId: `stats-${i}` })).token);
  await step(); // stats-0, -1, -2 admitted

  await queue.leaveQueue({ token: tokens[0]! }); // leaves a slot
  await queue.leaveQueue({ token: tokens[5]! }); // leaves the line: an abandonment
  const wallet = app.grpc(WalletService);
  await wallet.topUp({ userId: "stats-1", amount: { amountMinor: 1000n }, idempotencyKey: "stats-top" });
  const { seats } = await app.grpc(BookingService).listSeats({ scheduleId: schedule!.id }, withToken(tokens[1]!));
  const { reservation } = await app
    .grpc(BookingService)
    .reserveSeat(
      { scheduleId: schedule!.id, seatId: seats[0]!.id, userId: "stats-1", requestId: "stats-hold" },
      withToken(tokens[1]!),
    );
  await wallet.payReservation(
    { reservationId: reservation!.id, userId: "stats-1", idempotencyKey: "stats-pay" },
    withToken(tokens[1]!),
  );

  // The next two admitted get one second each, and run out.
  await admin.updateQueueSettings(
    {
      settings: { concertId, activeTtl: { seconds: 1n }, expectedSession: { seconds: 45n } },
      updateMask: { paths: ["active_ttl", "expected_session"] },
    },
    ops,
  );
  await step(); // stats-3, -4 admitted for a second
  await waitFor(
    async () => {
      await step();
      return (await queue.getQueueStatus({ token: tokens[4]! })).status!.state === QueueState.EXPIRED;
    },
    { timeoutMs: 30_000, intervalMs: 250, message: () => "the one-second slots ran out" },
  );
  // A status reads a slot past its end as EXPIRED before any step has recorded the expiry: one
  // more step records both.
  await step();

  const { stats } = await admin.getQueueStats({ concertId }, ops);
  const db = app.app.orm.em.fork().getConnection();
  const [truth] = await db.execute<{ waiting: string; active: string }[]>(
    `select count(*) filter (where state = 'WAITING') as waiting, count(*) filter (where state = 'ACTIVE') as active
     from queue_entry where concert_id = ?`,
    [concertId],
  );
  const redisStatus = (await queue.getQueueStatus({ token: tokens[2]! })).status!;
  t.is(redisStatus.state, QueueState.ACTIVE);
  t.deepEqual(
    {
      waiting: stats!.waiting,
      active: stats!.active,
      cap: stats!.maxActiveUsers,
      state: stats!.admissionState,
      joins: stats!.joinsPerMinute,
      admissions: stats!.admissionsPerMinute,
      abandonments: stats!.abandonmentsPerMinute,
      expiries: stats!.expiriesPerMinute,
      holds: stats!.holdsPerMinute,
      payments: stats!.paymentsPerMinute,
      freeSlots: stats!.estimateInputs!.freeSlots,
    },
    {
      waiting: redisStatus.totalWaiting,
      active: 1n,
      cap: 3,
      state: AdmissionState.OPEN,
      joins: 6,
      admissions: 5,
      abandonments: 1,
      expiries: 2,
      holds: 1,
      payments: 1,
      freeSlots: 2n,
    },
  );
  t.deepEqual([truth!.waiting, truth!.active], ["0", "1"]);
  t.is(stats!.estimateInputs!.activeTtl!.seconds, 1n);
  t.is(stats!.estimateInputs!.expectedSession?.seconds, 45n, "the concert's own prior, not the default");

  // Watching: a message a second, until the caller stops.
  const watched: bigint[] = [];
  for await (const message of admin.watchQueueStats({ concertId }, ops)) {
    watched.push(message.stats!.observeTime!.seconds);
    if (watched.length === 2) break;
  }
  t.is(watched.length, 2);
  t.true(watched[1]! >= watched[0]!);

  const result = await grpcurl([
    "-plaintext",
    "-max-time",
    "3",
    "-H",
    `authorization: Bearer ${OPS_SECRET}`,
    "-d",
    JSON.stringify({ concertId }),
    app.grpcAddress,
    "concert.v1.AdminService/WatchQueueStats",
  ]);
  t.true((result.stdout.match(/"observeTime"/g) ?? []).length >= 2, result.stdout + result.stderr);
});
