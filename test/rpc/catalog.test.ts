import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, SeatStatus } from "../../gen/concert/v1/booking_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";
import { admitUser, withToken, withTokenHeader } from "../helpers/queue.js";

let app: TestApp;
/** An ACTIVE queue token: everything but ListConcerts needs one. */
let token: string;

test.before(async () => {
  app = await startTestApp("catalog", { admissionIntervalMs: 100 });
  await seedSmallCatalog(app, 120);
  const { concerts } = await app.grpc(BookingService).listConcerts({});
  token = await admitUser(app, concerts[0]!.id, "catalog-reader");
});

test.after.always(async () => {
  await app?.stop();
});

for (const transport of ["grpc", "connect", "grpc-web"] as const) {
  const client = () =>
    transport === "grpc"
      ? app.grpc(BookingService)
      : app.connect(BookingService, transport === "grpc-web" ? "grpc-web" : "connect");
  const admitted = () => (transport === "grpc" ? withToken(token) : withTokenHeader(token));

  test(`${transport}: ListConcerts pages through every concert`, async (t) => {
    const first = await client().listConcerts({});
    t.is(first.concerts.length, 1);
    t.is(first.nextPageToken, "");
    t.truthy(first.concerts[0]!.title);
  });

  test(`${transport}: ListSchedules counts available seats`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id }, admitted());
    t.is(schedules.length, 2);
    for (const schedule of schedules) {
      t.is(schedule.totalSeats, 120n);
      t.is(schedule.availableSeats, 120n);
      t.truthy(schedule.startTime);
    }
    t.true(schedules[0]!.startTime!.seconds <= schedules[1]!.startTime!.seconds);
  });

  test(`${transport}: ListSeats paginates in seat order without gaps`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id }, admitted());
    const labels: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await client().listSeats({ scheduleId: schedules[0]!.id, pageSize: 50, pageToken }, admitted());
      labels.push(...page.seats.map((s) => s.label));
      for (const seat of page.seats) {
        t.is(seat.status, SeatStatus.AVAILABLE);
        t.true(seat.price!.amountMinor > 0n);
        t.is(seat.price!.currencyCode, "JPY");
      }
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    t.is(pages, 3);
    t.is(labels.length, 120);
    t.is(new Set(labels).size, 120);
    t.is(labels[0], "A-1");
    t.is(labels[50], "B-1");
  });

  test(`${transport}: bad catalog requests are INVALID_ARGUMENT or NOT_FOUND, never INTERNAL`, async (t) => {
    const error = await expectError(
      t,
      client().listSchedules({ concertId: "" }, admitted()),
      Code.InvalidArgument,
      "INVALID_FIELD",
    );
    t.deepEqual(fieldViolations(error), ["concert_id"]);
    await expectError(
      t,
      client().listSchedules({ concertId: "not-a-uuid" }, admitted()),
      Code.InvalidArgument,
      "INVALID_FIELD",
    );
    // The token is checked against the concert before the concert is looked up.
    await expectError(
      t,
      client().listSchedules({ concertId: "00000000-0000-0000-0000-000000000000" }, admitted()),
      Code.PermissionDenied,
      "QUEUE_TOKEN_MISMATCH",
    );
    await expectError(
      t,
      client().listSeats({ scheduleId: "00000000-0000-0000-0000-000000000000" }, admitted()),
      Code.NotFound,
      "SCHEDULE_NOT_FOUND",
    );
    await expectError(t, client().listConcerts({ pageSize: -1 }), Code.InvalidArgument, "INVALID_FIELD");
    await expectError(t, client().listConcerts({ pageSize: 10_000 }), Code.InvalidArgument, "INVALID_FIELD");
    await expectError(t, client().listConcerts({ pageToken: "garbage!" }), Code.InvalidArgument, "INVALID_FIELD");
  });

  test(`${transport}: hand-made page tokens whose keys do not fit their columns are INVALID_FIELD, not INTERNAL`, async (t) => {
    // A token is base64url JSON: anyone can write one with the right filter and a bad key.
    const token = (filter: string, after: unknown) =>
      Buffer.from(JSON.stringify({ f: filter, a: after })).toString("base64url");
    const { concerts } = await client().listConcerts({});
    const concertId = concerts[0]!.id;
    const { schedules } = await client().listSchedules({ concertId }, admitted());
    const scheduleId = schedules[0]!.id;
    const crafted = [
      client().listConcerts({ pageToken: token("concerts", "not-a-uuid") }),
      client().listSchedules(
        { concertId, pageToken: token(`schedules:${concertId}`, ["2024-01-01T00:00:00.000Z", "x"]) },
        admitted(),
      ),
      client().listSchedules(
        { concertId, pageToken: token(`schedules:${concertId}`, ["-271821-04-20T00:00:00.000Z", scheduleId]) },
        admitted(),
      ),
      // Year 0000 is a date to JavaScript, none to PostgreSQL.
      client().listSchedules(
        { concertId, pageToken: token(`schedules:${concertId}`, ["0000-01-01T00:00:00.000Z", scheduleId]) },
        admitted(),
      ),
      client().listSeats({ scheduleId, pageToken: token(`seats:${scheduleId}`, 2 ** 40) }, admitted()),
    ];
    for (const call of crafted)
      t.deepEqual(fieldViolations(await expectError(t, call, Code.InvalidArgument, "INVALID_FIELD")), ["page_token"]);
  });

  test(`${transport}: ids in uppercase are INVALID_FIELD, not another spelling of the same id`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const upper = concerts[0]!.id.toUpperCase();
    const error = await expectError(
      t,
      client().listSchedules({ concertId: upper }, admitted()),
      Code.InvalidArgument,
      "INVALID_FIELD",
    );
    t.deepEqual(fieldViolations(error), ["concert_id"]);
  });

  test(`${transport}: a page token is refused for another schedule`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id }, admitted());
    const page = await client().listSeats({ scheduleId: schedules[0]!.id, pageSize: 10 }, admitted());
    const error = await expectError(
      t,
      client().listSeats({ scheduleId: schedules[1]!.id, pageToken: page.nextPageToken }, admitted()),
      Code.InvalidArgument,
      "INVALID_FIELD",
    );
    t.deepEqual(fieldViolations(error), ["page_token"]);
  });
}
