// DEFAULT_DEADLINE_MS bounds a unary call whose client set no deadline, on both ports: a
// ReserveSeat stuck behind a seat row that another transaction keeps locked answers
// DEADLINE_EXCEEDED after the default deadline instead of waiting as long as the lock lasts. The
// transaction behind it may still complete once the lock goes; a retry with the same request id
// then gets that hold back, never a second one.

import { Code } from "@connectrpc/connect";
import test from "ava";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { admitUsers, loadCatalog, withToken, type Catalog } from "../helpers/booking.js";
import { expectError } from "../helpers/errors.js";

/** Seconds, so that the calls which should succeed (admission, the retries) do so on a busy machine too. */
const DEADLINE_MS = 2000;

let app: TestApp;
let catalog: Catalog;
let tokens: Map<string, string>;

test.before(async () => {
  app = await startTestApp("default_deadline", {
    defaultDeadlineMs: DEADLINE_MS,
    maxActiveUsers: 10,
    admissionIntervalMs: 50,
  });
  await seedCatalog(app.app.orm.em.fork(), { concerts: 1, schedules: 1, seats: 10 });
  catalog = await loadCatalog(app.app.orm.em.fork());
  tokens = await admitUsers(app, catalog.concertId, ["grpc-user", "connect-user"]);
});

test.after.always(async () => {
  await app?.stop();
});

test("a call without a deadline that outlasts DEFAULT_DEADLINE_MS is DEADLINE_EXCEEDED on the gRPC and the Connect port", async (t) => {
  const scheduleId = catalog.schedules[0]!.id;
  const seats = { grpc: catalog.schedules[0]!.seatIds[0]!, connect: catalog.schedules[0]!.seatIds[1]! };
  /** Without a deadline of its own (the default applies), or with a generous one for the retries. */
  const reserve = (transport: "grpc" | "connect", clientDeadlineMs?: number) => {
    const userId = `${transport}-user`;
    const token = tokens.get(userId)!;
    const request = { scheduleId, seatId: seats[transport], userId, requestId: "r" };
    return transport === "grpc"
      ? app.grpc(BookingService).reserveSeat(request, { ...withToken(token), deadlineMs: clientDeadlineMs })
      : app
          .connect(BookingService)
          .reserveSeat(request, { headers: { "x-queue-token": token }, timeoutMs: clientDeadlineMs });
  };
  const locker = new pg.Client({ connectionString: app.config.databaseUrl });
  await locker.connect();
  try {
    await locker.query("begin");
    await locker.query("select 1 from seat where id = any($1) for update", [Object.values(seats)]);
    for (const transport of ["grpc", "connect"] as const) {
      const started = Date.now();
      await expectError(t, reserve(transport), Code.DeadlineExceeded);
      const took = Date.now() - started;
      // The seats stay locked until the test rolls back: an answer within seconds is the deadline's.
      t.true(took >= DEADLINE_MS - 20 && took < DEADLINE_MS + 20_000, `${transport}: answered after ${took} ms`);
    }
  } finally {
    await locker.query("rollback");
    await locker.end();
  }
  for (const transport of ["grpc", "connect"] as const) {
    const { reservation } = await reserve(transport, 60_000);
    t.is(reservation?.seatId, seats[transport]);
  }
  const [{ holds }] = (await app.app.orm.em
    .fork()
    .getConnection()
    .execute("select count(*)::int as holds from reservation where request_id = 'r'")) as [{ holds: number }];
  t.is(holds, 2);
});
