// The sale-start prequeue end to end, on two server processes sharing PostgreSQL, Redis and a
// stepped clock: joins before the opening see PREQUEUE (on the gRPC and the Connect port), the
// seed's hash is published before the opening and the seed after it, nobody is admitted before
// it, and at the opening the line is the prequeue in the seed's order (whatever the join order)
// followed by later joiners in FIFO order, each admitted once by whichever process ticks. The
// admission timers are an hour apart: the test runs each step itself.

import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import test from "ava";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { QueueService, QueueState, type QueueStatus } from "../../gen/concert/v1/queue_pb.js";
import { startApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/platform/logger.js";
import { createGrpcClient, type GrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { prequeueSeq } from "../../src/queue/prequeue-order.js";
import type { TestApp } from "../helpers/app.js";
import { steppedClock } from "../helpers/clock.js";
import { SERVER_START_TIMEOUT_MS, waitFor } from "../helpers/wait.js";
import { adminClient, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const ops = bearer(OPS_SECRET);
const clock = steppedClock();
const CAP = 3;
let a: TestApp;
let b: App;
let queueB: GrpcClient<typeof QueueService>;

test.before(async () => {
  a = await startAdminTestApp("prequeue", { admissionIntervalMs: 3_600_000, maxActiveUsers: CAP }, { clock });
  b = await startApp({ ...a.config }, createLogger("silent"), { clock });
  queueB = createGrpcClient(QueueService, `127.0.0.1:${b.grpcPort}`);
});

test.after.always(async () => {
  queueB?.close();
  await b?.stop();
  await a?.stop();
});

function verifyShuffle(concertId: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      ["--import", "tsx", "src/tools/verify-shuffle.ts", "--concert", concertId],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: a.config.databaseUrl }, timeout: SERVER_START_TIMEOUT_MS },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test.serial(
  "joins before the opening form a prequeue that opens in the seed's order, ahead of later joiners",
  async (t) => {
    const admin = adminClient(a);
    const queueA = a.grpc(QueueService);
    const { concert } = await admin.createConcert({ title: "Pre", artist: "A", venue: "V", requestId: "pre" }, ops);
    const concertId = concert!.id;
    // A few real seconds ahead, so that verify-shuffle (its own process, on the real clock) finds
    // the opening passed by the end; the servers' stepped clock stands still until the test moves it.
    const opensAtMs = Date.now() + 3000;
    await admin.createSchedule(
      {
        concertId,
        startsAt: { seconds: BigInt(Math.floor(opensAtMs / 1000) + 86_400) },
        saleOpensAt: { seconds: BigInt(Math.floor(opensAtMs / 1000)), nanos: (opensAtMs % 1000) * 1_000_000 },
        sections: [{ name: "A", grade: "S", rows: 1, seatsPerRow: 10, price: { amountMinor: 1000n } }],
        requestId: "pre-schedule",
      },
      ops,
    );

    const before = (await admin.getQueueSettings({ concertId }, ops)).settings!;
    t.regex(before.prequeueSeedSha256, /^[0-9a-f]{64}$/, "the seed's hash is published before the opening");
    t.is(before.prequeueSeed, "", "the seed itself is not");
    t.is(timestampDate(before.saleOpensAt!).getTime(), opensAtMs);

    // The test peeks at the committed seed (the servers' database is its own) only to make the
    // users join in the reverse of the order it will give them: the earliest joiner ends last.
    const [{ seed }] = await a.app.orm.em
      .fork()
      .getConnection()
      .execute<[{ seed: string }]>("select seed from prequeue_seed where concert_id = ?", [concertId]);
    const users = Array.from({ length: 8 }, (_, i) => `fan-${i}`);
    const seedOrder = [...users].sort((x, y) => (prequeueSeq(seed, x) < prequeueSeq(seed, y) ? -1 : 1));
    const joinOrder = [...seedOrder].reverse();
    const tokens = new Map<string, string>();
    for (const [i, userId] of joinOrder.entries()) {
      const { token, status } = await (i % 2 === 0 ? queueA : queueB).joinQueue({ concertId, userId });
      t.is(status!.state, QueueState.PREQUEUE, `${userId} joins the prequeue`);
      t.is(status!.position, 0n, "no position in the prequeue");
      t.is(timestampDate(status!.saleOpenTime!).getTime(), opensAtMs, "the status tells when the sale opens");
      t.false(status!.waitTimeKnown);
      tokens.set(userId, token);
    }
    const again = await queueB.joinQueue({ concertId, userId: joinOrder[0]! });
    t.is(again.token, tokens.get(joinOrder[0]!)!, "joining again keeps the place");

    const stats = (await admin.getQueueStats({ concertId }, ops)).stats!;
    t.deepEqual([stats.prequeue, stats.waiting], [8n, 0n], "the stats count the prequeue");

    // A stream on each port: PREQUEUE first, then WAITING with the place once the sale opens.
    const watchers = new AbortController();
    const grpcSeen: QueueStatus[] = [];
    const connectSeen: QueueStatus[] = [];
    const watchUntilWaiting = async (stream: AsyncIterable<{ status?: QueueStatus }>, seen: QueueStatus[]) => {
      for await (const { status } of stream) {
        seen.push(status!);
        if (status!.state !== QueueState.PREQUEUE) return;
      }
    };
    const watched = Promise.all([
      watchUntilWaiting(
        queueA.watchQueue({ token: tokens.get(seedOrder[0]!)! }, { signal: watchers.signal }),
        grpcSeen,
      ),
      watchUntilWaiting(
        a.connect(QueueService).watchQueue({ token: tokens.get(seedOrder[1]!)! }, { signal: watchers.signal }),
        connectSeen,
      ),
    ]);
    await waitFor(() => grpcSeen.length > 0 && connectSeen.length > 0);
    t.is(grpcSeen[0]!.state, QueueState.PREQUEUE);
    t.is(connectSeen[0]!.state, QueueState.PREQUEUE);
    t.is(timestampDate(connectSeen[0]!.saleOpenTime!).getTime(), opensAtMs);

    await a.app.waitingRoom.admission.admitWaitingUsers();
    await b.waitingRoom.admission.admitWaitingUsers();
    const held = await queueB.getQueueStatus({ token: tokens.get(seedOrder[0]!)! });
    t.is(held.status!.state, QueueState.PREQUEUE, "nobody is admitted before the opening");

    clock.advance(opensAtMs - clock().getTime() + 1);
    const later = ["late-0", "late-1", "late-2"];
    for (const [i, userId] of later.entries()) {
      const { token, status } = await (i % 2 === 0 ? queueB : queueA).joinQueue({ concertId, userId });
      t.is(status!.state, QueueState.WAITING, "after the opening a join lines up");
      t.is(status!.position, BigInt(users.length + i + 1), "behind the whole prequeue, in FIFO order");
      tokens.set(userId, token);
    }
    await watched;
    t.is(grpcSeen.at(-1)!.state, QueueState.WAITING);
    t.is(grpcSeen.at(-1)!.position, 1n, "the stream turns WAITING with the seed's place");
    t.is(connectSeen.at(-1)!.position, 2n);

    const after = (await admin.getQueueSettings({ concertId }, ops)).settings!;
    t.is(after.prequeueSeed, seed, "the seed is published once the sale opened");
    t.is(createHash("sha256").update(Buffer.from(after.prequeueSeed, "hex")).digest("hex"), before.prequeueSeedSha256);
    const open = (await admin.getQueueStats({ concertId }, ops)).stats!;
    t.deepEqual([open.prequeue, open.waiting], [0n, 11n]);

    // Admission, CAP at a time, alternating between the processes: the seed's order, then FIFO.
    const line = [...seedOrder, ...later];
    const admitted: string[] = [];
    for (let round = 0; admitted.length < line.length; round++) {
      t.true(round < 10, "every user admitted within a few rounds");
      await (round % 2 === 0 ? b.waitingRoom : a.app.waitingRoom).admission.admitWaitingUsers();
      const active: string[] = [];
      for (const userId of line) {
        const { status } = await queueA.getQueueStatus({ token: tokens.get(userId)! });
        if (status!.state === QueueState.ACTIVE) active.push(userId);
      }
      t.deepEqual(active, line.slice(admitted.length, admitted.length + CAP), `round ${round} admits the next ${CAP}`);
      for (const userId of active) await queueB.leaveQueue({ token: tokens.get(userId)! });
      admitted.push(...active);
    }
    t.deepEqual(admitted, line);
    // Let the admission steps copy the last admissions and leaves to PostgreSQL.
    await a.app.waitingRoom.admission.admitWaitingUsers();

    const db = a.app.orm.em.fork().getConnection();
    const [once] = await db.execute<{ rows: string; admitted: string }[]>(
      `select count(*) as rows, count(admitted_at) as admitted from queue_entry where concert_id = ?`,
      [concertId],
    );
    t.deepEqual(once, { rows: "11", admitted: "11" }, "one entry per user, each admitted once");

    await waitFor(() => Date.now() > opensAtMs + 100);
    const verified = await verifyShuffle(concertId);
    t.is(verified.code, 0, verified.stdout + verified.stderr);
    t.regex(verified.stdout, /^OK: /m);
    const places = verified.stdout
      .split("\n")
      .map((line) => /^\s+(\d+)\s+(\S+)\s/.exec(line))
      .filter((m) => m !== null)
      .map((m) => m[2]);
    t.deepEqual(places, seedOrder, "verify-shuffle prints the seed's order");

    // The check can fail: one place moved in PostgreSQL is caught.
    await db.execute(`update queue_entry set seq = seq + 1 where concert_id = ? and user_id = ?`, [
      concertId,
      seedOrder[3],
    ]);
    const tampered = await verifyShuffle(concertId);
    t.is(tampered.code, 1);
    t.regex(tampered.stdout, new RegExp(`FAIL: ${seedOrder[3]} \\(token`));
  },
);

test.serial("verify-shuffle refuses before the opening and for a concert without a prequeue", async (t) => {
  const admin = adminClient(a);
  const { concert } = await admin.createConcert({ title: "Soon", artist: "A", venue: "V", requestId: "soon" }, ops);
  const opensAt = BigInt(Math.floor(Date.now() / 1000) + 86_400);
  await admin.createSchedule(
    {
      concertId: concert!.id,
      startsAt: { seconds: opensAt + 86_400n },
      saleOpensAt: { seconds: opensAt },
      sections: [{ name: "A", grade: "S", rows: 1, seatsPerRow: 1, price: { amountMinor: 1000n } }],
      requestId: "soon-schedule",
    },
    ops,
  );
  const early = await verifyShuffle(concert!.id);
  t.is(early.code, 1);
  t.regex(early.stderr, /its seed \(SHA-256 [0-9a-f]{64}\) is published then/);
  t.notRegex(early.stdout + early.stderr, /^seed /m);

  const { concert: plain } = await admin.createConcert(
    { title: "Now", artist: "A", venue: "V", requestId: "now" },
    ops,
  );
  const none = await verifyShuffle(plain!.id);
  t.is(none.code, 1);
  t.regex(none.stderr, /has no sale-start prequeue/);
  t.is((await admin.getQueueSettings({ concertId: plain!.id }, ops)).settings!.prequeueSeedSha256, "");
});
