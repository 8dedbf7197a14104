import pg from "pg";
import { closeORM, initORM, migrateUp } from "../src/platform/db/orm.js";
import { seedCatalog } from "../src/platform/db/seed.js";
import { payReservation } from "../src/wallet/reservation-payment.js";
import { loadCatalog } from "../test/helpers/booking.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { closedLoop } from "./closed-loop.js";
import { createRawBooking } from "./raw-pg-booking.js";
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";

const database = await createTestDatabase("bench_payprof");
const { orm } = await initORM({ databaseUrl: database.url, poolMax: 16 });
const pool = new pg.Pool({ connectionString: database.url, max: 16 });
const raw = createRawBooking(pool, { holdSeconds: 3600, maxSeatsPerUser: 4 });
try {
  await migrateUp(orm);
  await seedCatalog(orm.em.fork(), { concerts: 1, schedules: 1, seats: 30000 });
  const catalog = await loadCatalog(orm.em.fork());
  const scheduleId = catalog.schedules[0]!.id;
  const { rows } = await pool.query<{ id: string; user_id: string }>(
    `with picked as (select id, price_minor, row_number() over (order by seat_no) as n from seat where schedule_id = $1 order by seat_no),
     held as (update seat set status = 'HELD', held_until = now() + interval '1 hour' where id in (select id from picked))
     insert into reservation (id, schedule_id, seat_id, user_id, status, price_minor, request_id, expire_time)
     select gen_random_uuid(), $1, id, 'u' || n, 'HELD', price_minor, 'bench', now() + interval '1 hour' from picked returning id, user_id`, [scheduleId]);
  await pool.query("insert into wallet (user_id, balance_minor) select unnest($1::text[]), 1000000", [rows.map((r) => r.user_id)]);
  await pool.query("vacuum analyze seat, reservation, wallet");
  let next = 0;
  const op = () => { const r = rows[next++]!; const input = { reservationId: r.id, userId: r.user_id, idempotencyKey: "p" }; return process.env.RAW ? raw.payReservation(input) : payReservation(orm, input); };
  await closedLoop({ concurrency: 64, durationMs: 2000, op, limit: 4000, isRefusal: () => false });
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  const cpu0 = process.cpuUsage();
  const res = await closedLoop({ concurrency: 64, durationMs: 8000, op, limit: 25000, isRefusal: () => false });
  const cpu = process.cpuUsage(cpu0);
  const { profile } = await session.post("Profiler.stop");
  writeFileSync(`/tmp/exp/pay${process.env.RAW ? "-raw" : ""}.cpuprofile`, JSON.stringify(profile));
  console.log(res.callsPerSec, "tx/s", ((cpu.user + cpu.system) / (res.ok ?? 1)).toFixed(0), "µs/tx", res.ok, res.errors, String(res.firstError ?? ""));
} finally {
  await pool.end();
  await closeORM(orm);
  await database.drop();
}
