// A slot given back after payment whose PostgreSQL end failed (a dropped connection, say) is
// released again in the background: otherwise the record counts it taken until the token's TTL,
// and with a small cap one PostgreSQL blip stops the line that long. Real PostgreSQL and Redis;
// the end is made to fail by a trigger while a flag row exists.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { seedSmallCatalog, startTestApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;

test.before(async () => {
  // One slot, and only the test's own steps admit: the app's loop would first tick after an hour.
  app = await startTestApp("release_retry", {
    maxActiveUsers: 1,
    admissionIntervalMs: 3_600_000,
    activeTokenTtlSeconds: 3600,
    waitingTokenTtlSeconds: 3600,
  });
  await seedSmallCatalog(app, 1);
  const connection = app.app.orm.em.getConnection();
  await connection.execute("create table refuse_end (on_purpose boolean)");
  await connection.execute(`create function refuse_end() returns trigger language plpgsql as $$
    begin if new.state = 'EXPIRED' and exists (select 1 from refuse_end) then raise exception 'refused for the test'; end if;
    return new; end $$`);
  await connection.execute(
    "create trigger refuse_end before update on queue_entry for each row execute function refuse_end()",
  );
});

test.after.always(async () => {
  await app?.stop();
});

test("a release that failed in PostgreSQL is retried until it lands, and the next user gets the slot", async (t) => {
  const connection = app.app.orm.em.getConnection();
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const queue = app.grpc(QueueService);
  const first = await queue.joinQueue({ concertId, userId: "payer" });
  await app.app.waitingRoom.admission.admitWaitingUsers();
  t.is((await queue.getQueueStatus({ token: first.token })).status?.state, QueueState.ACTIVE);

  await connection.execute("insert into refuse_end values (true)");
  await t.throwsAsync(app.app.waitingRoom.release(first.token));
  await connection.execute("delete from refuse_end");

  const stateOf = async (token: string) =>
    ((await connection.execute("select state from queue_entry where token = ?", [token])) as { state: string }[])[0]
      ?.state;
  let state: string | undefined;
  await waitFor(async () => (state = await stateOf(first.token)) === "EXPIRED", {
    timeoutMs: 30_000,
    message: () => `the released token's row is still ${state}`,
  });
  const next = await queue.joinQueue({ concertId, userId: "next" });
  await app.app.waitingRoom.admission.admitWaitingUsers();
  t.is((await queue.getQueueStatus({ token: next.token })).status?.state, QueueState.ACTIVE);
});
