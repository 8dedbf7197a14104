// CPU per booked seat of the booking transactions alone (top-up, hold, payment), on both sides of
// the connection: the PostgreSQL backends of the pool (their /proc CPU time) and this process.
// CPU seconds, not wall time, so it compares two versions of the code on a busy machine.
//
//   node --import tsx bench/op-cost.ts [--users 2000] [--concurrency 16]

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";
import { reserveSeat } from "../src/booking/seat-hold.js";
import { payReservation } from "../src/wallet/reservation-payment.js";
import { topUp } from "../src/wallet/wallet-writes.js";
import { openBookingDb } from "../test/helpers/booking.js";

const { values } = parseArgs({
  options: { users: { type: "string", default: "2000" }, concurrency: { type: "string", default: "16" } },
});
const users = Number(values.users);
const concurrency = Number(values.concurrency);
const policy = { holdSeconds: 300, maxSeatsPerUser: 4 };

const db = await openBookingDb("op_cost", users + 200, concurrency);
const seats = db.catalog.schedules[0]!.seatIds;
const scheduleId = db.catalog.schedules[0]!.id;
const ticks = 100;
const backendCpu = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticks;
};
const selfCpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

async function book(i: number): Promise<void> {
  const userId = `u${i}`;
  await topUp(db.orm, userId, 100_000n, randomUUID());
  const held = await reserveSeat(db.orm, { scheduleId, seatId: seats[i]!, userId, requestId: randomUUID() }, policy);
  await payReservation(db.orm, { reservationId: held.id, userId, idempotencyKey: randomUUID() });
}

async function run(from: number, to: number): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await book(next++);
    }),
  );
}

await run(users, users + 200); // warm-up: every pool connection open, statements prepared
const [{ pids }] = await db.orm.em
  .fork()
  .execute<[{ pids: number[] }]>(
    "select array_agg(pid) as pids from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
  );
const pgBefore = pids.map(backendCpu);
const selfBefore = selfCpu();
const started = Date.now();
await run(0, users);
const pg = pids.reduce((sum, pid, i) => sum + backendCpu(pid) - pgBefore[i]!, 0);
const self = selfCpu() - selfBefore;
console.log(
  `${users} seats, concurrency ${concurrency}, ${pids.length} backends: PostgreSQL ${((pg * 1000) / users).toFixed(2)} ms/seat, ` +
    `this process ${((self * 1000) / users).toFixed(2)} ms/seat, wall ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
await db.stop();
