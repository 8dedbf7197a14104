// Overload is refused early and says when to come back: a concert's line past MAX_WAITING_USERS
// and a service past MAX_IN_FLIGHT_CALLS answer RESOURCE_EXHAUSTED with ErrorInfo OVERLOADED, a
// google.rpc.RetryInfo and, on the gRPC port, the grpc-retry-pushback-ms trailer. Nothing already
// acknowledged is dropped: a user in line who joins again keeps their place, calls let in finish.

import { Code, ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import test, { type ExecutionContext } from "ava";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { waitForLockWaiters } from "../helpers/database.js";
import { expectError } from "../helpers/errors.js";

const MAX_WAITING = 3;
const MAX_IN_FLIGHT = 2;
let app: TestApp;
let concerts: string[];

test.before(async () => {
  app = await startTestApp("overload", {
    maxWaitingUsers: MAX_WAITING,
    // No admission during the test: whoever joins stays in the line, so its length is exact.
    admissionIntervalMs: 3_600_000,
  });
  await seedCatalog(app.app.orm.em.fork(), { concerts: 3, schedules: 1, seats: 4 });
  const rows = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ id: string }[]>("select id from concert order by id");
  concerts = rows.map((r) => r.id);
});

test.after.always(async () => {
  await app?.stop();
});

/** Expects OVERLOADED with a RetryInfo of at least a moment, and the pushback trailer when it came over gRPC. */
async function expectOverloaded(t: ExecutionContext, call: Promise<unknown>, port: "grpc" | "connect") {
  const error = await expectError(t, call, Code.ResourceExhausted, "OVERLOADED");
  const [retry] = error.findDetails(RetryInfoSchema);
  const delayMs = Number(retry?.retryDelay?.seconds ?? 0n) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6;
  t.true(delayMs > 0, "RetryInfo says when to come back");
  if (port === "grpc") {
    const trailer = (error.cause as grpc.ServiceError).metadata.get("grpc-retry-pushback-ms");
    t.deepEqual(trailer, [String(Math.round(delayMs))]);
  }
  return error;
}

test.serial(
  "a full line refuses new users with a retry delay; users in it keep their place when they join again",
  async (t) => {
    const queue = app.grpc(QueueService);
    const concertId = concerts[0]!;
    const inLine = [];
    for (let i = 0; i < MAX_WAITING; i++) inLine.push(await queue.joinQueue({ concertId, userId: `fan-${i}` }));
    await expectOverloaded(t, queue.joinQueue({ concertId, userId: "late" }), "grpc");
    await expectOverloaded(t, app.connect(QueueService).joinQueue({ concertId, userId: "late" }), "connect");
    for (const [i, first] of inLine.entries()) {
      const again = await queue.joinQueue({ concertId, userId: `fan-${i}` });
      t.is(again.token, first.token);
      t.is(again.status?.position, first.status?.position);
    }
    // Another concert's line is not full.
    t.is((await queue.joinQueue({ concertId: concerts[1]!, userId: "late" })).status?.state, QueueState.WAITING);
    // Leaving makes room.
    await queue.leaveQueue({ token: inLine[0]!.token });
    await queue.joinQueue({ concertId, userId: "late" });
    await expectOverloaded(t, queue.joinQueue({ concertId, userId: "later" }), "grpc");
  },
);

test.serial("20 users joining one line at once: exactly the limit get places, the others OVERLOADED", async (t) => {
  const queue = app.grpc(QueueService);
  const concertId = concerts[2]!;
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      queue.joinQueue({ concertId, userId: `rush-${i}` }).then(
        (response) => response.token,
        (error: unknown) => (error instanceof ConnectError ? Code[error.code] : String(error)),
      ),
    ),
  );
  const tokens = answers.filter((a) => /^[0-9a-f]{32}$/.test(a));
  t.is(tokens.length, MAX_WAITING);
  t.deepEqual(new Set(answers.filter((a) => !tokens.includes(a))), new Set(["ResourceExhausted"]));
  for (const token of tokens)
    t.is((await queue.getQueueStatus({ token })).status?.state, QueueState.WAITING, "every acknowledged join kept");
});

test.serial(
  "past MAX_IN_FLIGHT_CALLS a service refuses at once with a retry delay; the calls let in complete",
  async (t) => {
    // An app of its own: its limit would get in the way of the line tests' concurrent joins.
    const busy = await startTestApp("in_flight", { maxInFlightCalls: MAX_IN_FLIGHT });
    t.teardown(() => busy.stop());
    const wallet = busy.grpc(WalletService);
    const userId = "busy";
    await wallet.topUp({ userId, amount: { amountMinor: 1n }, idempotencyKey: "opening" });
    // Two top-ups wait behind the test's lock on the wallet row: the service's limit is reached.
    const lock = new pg.Client({ connectionString: busy.config.databaseUrl });
    await lock.connect();
    await lock.query("begin");
    await lock.query("select 1 from wallet where user_id = $1 for update", [userId]);
    const { rows } = await lock.query<{ pid: number }>("select pg_backend_pid() as pid");
    const held = [1, 2].map((n) =>
      wallet.topUp({ userId, amount: { amountMinor: 10n }, idempotencyKey: `held-${n}` }, { deadlineMs: 60_000 }),
    );
    try {
      await waitForLockWaiters(busy.config.databaseUrl, rows[0]!.pid, MAX_IN_FLIGHT);
      await expectOverloaded(t, wallet.getBalance({ userId }), "grpc");
      await expectOverloaded(t, busy.connect(WalletService).getBalance({ userId }), "connect");
      // Another service has its own bound.
      t.true(Array.isArray((await busy.grpc(BookingService).listConcerts({})).concerts));
    } finally {
      await lock.query("rollback");
      await lock.end();
    }
    for (const response of await Promise.all(held)) t.is(response.entry?.amount?.amountMinor, 10n);
    t.is((await wallet.getBalance({ userId })).wallet?.balance?.amountMinor, 21n);
  },
);
