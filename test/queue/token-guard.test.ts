import { Code } from "@connectrpc/connect";
import test from "ava";
import { randomBytes } from "node:crypto";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";
import { admitUser, withToken, withTokenHeader } from "../helpers/queue.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;
let concertId: string;
/** Admitted first; its slot ends after ACTIVE_TOKEN_TTL (4 s). */
let blocker: string;
const ACTIVE_TTL_S = 20;
/**
 * For the waiting tokens: its only slot is held for ten minutes, so nobody behind is admitted
 * however slow the machine, and a waiting user not seen for 3 s loses the place.
 */
let full: TestApp;

test.before(async () => {
  // The blocker's token must stay ACTIVE through the first tests (4 s was too short beside a full
  // CI run) and then expire for the expiry test, which waits for it.
  app = await startTestApp("queue_guard", {
    maxActiveUsers: 1,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: ACTIVE_TTL_S,
    waitingTokenTtlSeconds: 1,
  });
  await seedSmallCatalog(app, 4);
  concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  full = await startTestApp("queue_guard_full", {
    maxActiveUsers: 1,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 3,
  });
  await seedSmallCatalog(full, 4);
});

test.after.always(async () => {
  await app?.stop();
  await full?.stop();
});

const rowState = async (token: string, on = app) =>
  (
    await on.app.orm.em
      .getConnection()
      .execute<{ state: string }[]>("select state from queue_entry where token = ?", [token])
  )[0]?.state;

test.serial(
  "an ACTIVE token opens the catalog; missing, malformed and forged tokens are UNAUTHENTICATED",
  async (t) => {
    blocker = await admitUser(app, concertId, "blocker");
    const grpc = app.grpc(BookingService);
    const connect = app.connect(BookingService);
    t.is((await grpc.listSchedules({ concertId }, withToken(blocker))).schedules.length, 2);
    t.is((await connect.listSchedules({ concertId }, withTokenHeader(blocker))).schedules.length, 2);
    t.is((await grpc.listConcerts({})).concerts.length, 1, "ListConcerts needs no token");
    await expectError(t, grpc.listSchedules({ concertId }), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
    await expectError(t, connect.listSchedules({ concertId }), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
    await expectError(
      t,
      grpc.listSchedules({ concertId }, withToken("not-a-token")),
      Code.Unauthenticated,
      "QUEUE_TOKEN_INVALID",
    );
    await expectError(
      t,
      grpc.listSchedules({ concertId }, withToken(randomBytes(16).toString("hex"))),
      Code.Unauthenticated,
      "QUEUE_TOKEN_INVALID",
    );
    await expectError(
      t,
      connect.listSchedules({ concertId }, withTokenHeader(randomBytes(16).toString("hex"))),
      Code.Unauthenticated,
      "QUEUE_TOKEN_INVALID",
    );
  },
);

test.serial("a token of another concert or user is PERMISSION_DENIED QUEUE_TOKEN_MISMATCH", async (t) => {
  const grpc = app.grpc(BookingService);
  await expectError(
    t,
    grpc.listSchedules({ concertId: "00000000-0000-4000-8000-000000000000" }, withToken(blocker)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
  const { schedules } = await grpc.listSchedules({ concertId }, withToken(blocker));
  const { seats } = await grpc.listSeats({ scheduleId: schedules[0]!.id }, withToken(blocker));
  const reserve = grpc.reserveSeat(
    { scheduleId: schedules[0]!.id, seatId: seats[0]!.id, userId: "someone-else", requestId: "r1" },
    withToken(blocker),
  );
  await expectError(t, reserve, Code.PermissionDenied, "QUEUE_TOKEN_MISMATCH");
});

test.serial("WalletService guards PayReservation only", async (t) => {
  const wallet = app.grpc(WalletService);
  t.is((await wallet.getBalance({ userId: "blocker" })).wallet!.balance!.amountMinor, 0n);
  const pay = wallet.payReservation({
    reservationId: "00000000-0000-4000-8000-000000000000",
    userId: "blocker",
    idempotencyKey: "k",
  });
  await expectError(t, pay, Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
});

test.serial(
  "a waiting token is NOT_ACTIVE; an unpolled one is dropped after WAITING_TOKEN_TTL; a watched one stays",
  async (t) => {
    const queue = full.grpc(QueueService);
    const grpc = full.grpc(BookingService);
    const fullConcert = (await grpc.listConcerts({})).concerts[0]!.id;
    await admitUser(full, fullConcert, "holder");
    const idle = await queue.joinQueue({ concertId: fullConcert, userId: "idle" });
    const watched = await queue.joinQueue({ concertId: fullConcert, userId: "watched" });
    t.is(idle.status!.state, QueueState.WAITING);
    await expectError(
      t,
      grpc.listSchedules({ concertId: fullConcert }, withToken(idle.token)),
      Code.PermissionDenied,
      "QUEUE_TOKEN_NOT_ACTIVE",
    );

    const abort = new AbortController();
    const states: QueueState[] = [];
    const watching = (async () => {
      for await (const update of queue.watchQueue({ token: watched.token }, { signal: abort.signal }))
        states.push(update.status!.state);
    })().catch(() => undefined);

    // The guard's own read never counts as a sign of life, so the idle user is dropped.
    await waitFor(
      async () => {
        const outcome = await grpc
          .listSchedules({ concertId: fullConcert }, withToken(idle.token))
          .catch((e: Error) => e.message);
        return typeof outcome === "string" && outcome.includes("expired");
      },
      { timeoutMs: 30_000, message: () => "idle waiting token dropped" },
    );
    await expectError(
      t,
      grpc.listSchedules({ concertId: fullConcert }, withToken(idle.token)),
      Code.PermissionDenied,
      "QUEUE_TOKEN_EXPIRED",
    );
    await waitFor(async () => (await rowState(idle.token, full)) === "EXPIRED", {
      message: () => "abandonment recorded",
    });
    t.is(
      (await queue.getQueueStatus({ token: watched.token })).status!.state,
      QueueState.WAITING,
      "the watched user is still in line",
    );
    abort.abort();
    await watching;
    t.true(states.every((s) => s === QueueState.WAITING));
  },
);

test.serial("an ACTIVE token expires after ACTIVE_TOKEN_TTL: QUEUE_TOKEN_EXPIRED", async (t) => {
  const grpc = app.grpc(BookingService);
  await waitFor(
    async () => (await app.grpc(QueueService).getQueueStatus({ token: blocker })).status!.state === QueueState.EXPIRED,
    { timeoutMs: (ACTIVE_TTL_S + 30) * 1000 },
  );
  await expectError(
    t,
    grpc.listSchedules({ concertId }, withToken(blocker)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  await expectError(
    t,
    app.connect(BookingService).listSchedules({ concertId }, withTokenHeader(blocker)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  await waitFor(async () => (await rowState(blocker)) === "EXPIRED", { message: () => "expiry recorded" });
});

test.serial("a left token is QUEUE_TOKEN_EXPIRED at once", async (t) => {
  const token = await admitUser(app, concertId, "leaver");
  const grpc = app.grpc(BookingService);
  t.is((await grpc.listSchedules({ concertId }, withToken(token))).schedules.length, 2);
  await app.grpc(QueueService).leaveQueue({ token });
  await expectError(
    t,
    grpc.listSchedules({ concertId }, withToken(token)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  t.is(await rowState(token), "EXPIRED");
});
