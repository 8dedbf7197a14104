import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, SeatStatus } from "../../gen/concert/v1/booking_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("catalog");
  await seedSmallCatalog(app, 120);
});

test.after.always(async () => {
  await app?.stop();
});

for (const transport of ["grpc", "connect", "grpc-web"] as const) {
  const client = () => (transport === "grpc" ? app.grpc(BookingService) : app.connect(BookingService, transport === "grpc-web" ? "grpc-web" : "connect"));

  test(`${transport}: ListConcerts pages through every concert`, async (t) => {
    const first = await client().listConcerts({});
    t.is(first.concerts.length, 1);
    t.is(first.nextPageToken, "");
    t.truthy(first.concerts[0]!.title);
  });

  test(`${transport}: ListSchedules counts available seats`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id });
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
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id });
    const labels: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await client().listSeats({ scheduleId: schedules[0]!.id, pageSize: 50, pageToken });
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
    const error = await expectError(t, client().listSchedules({ concertId: "" }), Code.InvalidArgument, "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), ["concert_id"]);
    await expectError(t, client().listSchedules({ concertId: "not-a-uuid" }), Code.InvalidArgument, "INVALID_FIELD");
    await expectError(t, client().listSchedules({ concertId: "00000000-0000-0000-0000-000000000000" }), Code.NotFound, "CONCERT_NOT_FOUND");
    await expectError(t, client().listSeats({ scheduleId: "00000000-0000-0000-0000-000000000000" }), Code.NotFound, "SCHEDULE_NOT_FOUND");
    await expectError(t, client().listConcerts({ pageSize: -1 }), Code.InvalidArgument, "INVALID_FIELD");
    await expectError(t, client().listConcerts({ pageSize: 10_000 }), Code.InvalidArgument, "INVALID_FIELD");
    await expectError(t, client().listConcerts({ pageToken: "garbage!" }), Code.InvalidArgument, "INVALID_FIELD");
  });

  test(`${transport}: a page token is refused for another schedule`, async (t) => {
    const { concerts } = await client().listConcerts({});
    const { schedules } = await client().listSchedules({ concertId: concerts[0]!.id });
    const page = await client().listSeats({ scheduleId: schedules[0]!.id, pageSize: 10 });
    const error = await expectError(t, client().listSeats({ scheduleId: schedules[1]!.id, pageToken: page.nextPageToken }), Code.InvalidArgument, "INVALID_FIELD");
    t.deepEqual(fieldViolations(error), ["page_token"]);
  });
}
