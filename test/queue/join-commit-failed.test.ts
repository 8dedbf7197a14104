// A join whose PostgreSQL row could not be written (the group commit failed after Redis had given
// it a place) gives that place back, so the users behind it are admitted at the next step instead
// of waiting behind a token admission cannot find until WAITING_TOKEN_TTL. Real PostgreSQL and
// Redis; the commit is made to fail by a trigger that refuses one user's row. A place another call
// was answered with (a retry of the same user, same token) is not given back.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { seedSmallCatalog, startTestApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;

test.before(async () => {
  // Only the test's own steps admit: the app's loop would first tick after an hour.
  app = await startTestApp("join_commit_failed", {
    maxActiveUsers: 10,
    admissionIntervalMs: 3_600_000,
    waitingTokenTtlSeconds: 600,
  });
  await seedSmallCatalog(app, 1);
  const connection = app.app.orm.em.getConnection();
  await connection.execute(`create function refuse_doomed() returns trigger language plpgsql as $$
    begin if new.user_id = 'doomed' then raise exception 'refused for the test'; end if; return new; end $$`);
  await connection.execute(
    "create trigger refuse_doomed before insert on queue_entry for each row execute function refuse_doomed()",
  );
});

test.after.always(async () => {
  await app?.stop();
});

test("a join whose row was never written does not hold up the users behind it", async (t) => {
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const queue = app.grpc(QueueService);
  await t.throwsAsync(queue.joinQueue({ concertId, userId: "doomed" }));
  const next = await queue.joinQueue({ concertId, userId: "next" });
  await app.app.waitingRoom.admission.admitWaitingUsers();
  const { status } = await queue.getQueueStatus({ token: next.token });
  t.is(status?.state, QueueState.ACTIVE);
});

test.serial(
  "a join whose commit fails keeps its place when a retry of the same user was acknowledged with it",
  async (t) => {
    // The first commit for "dup" waits, then fails; a retry made meanwhile gets the same token from
    // Redis, commits and is answered. The failing call must not give that place back. Serial: a
    // batch shared with the other test's refused row would fail before this one's trigger ran.
    const connection = app.app.orm.em.getConnection();
    await connection.execute("create sequence dup_inserts");
    await connection.execute(`create function fail_first_dup() returns trigger language plpgsql as $$
    begin
      if new.user_id = 'dup' and nextval('dup_inserts') = 1 then
        perform pg_sleep(1.5);
        raise exception 'the first commit fails for the test';
      end if;
      return new;
    end $$`);
    await connection.execute(
      "create trigger fail_first_dup before insert on queue_entry for each row execute function fail_first_dup()",
    );
    const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    const queue = app.grpc(QueueService);
    const first = queue.joinQueue({ concertId, userId: "dup" });
    first.catch(() => undefined);
    // The retry once the first commit is under way (its INSERT sleeping in the trigger).
    await waitFor(
      async () =>
        (await connection.execute<{ started: boolean }[]>("select is_called as started from dup_inserts"))[0]!.started,
      { message: () => "the first commit never started" },
    );
    const retry = await queue.joinQueue({ concertId, userId: "dup" });
    await t.throwsAsync(first);
    const { status } = await queue.getQueueStatus({ token: retry.token });
    t.is(status?.state, QueueState.WAITING, "the acknowledged place is still in line");
    const row = await connection.execute<{ state: string }[]>("select state from queue_entry where token = ?", [
      retry.token,
    ]);
    t.deepEqual(row, [{ state: "WAITING" }]);
  },
);
