// Booking suite: the seat-hold and payment transactions through our MikroORM code, side by side
// with the same transactions on a bare `pg` Pool (bench/raw-pg-booking.ts), in one process, in
// one run, against a scratch database. Workloads: ReserveSeat on distinct seats, ReserveSeat on
// one hot seat (one winner, every other attempt SEAT_UNAVAILABLE), PayReservation of prepared
// holds. Each figure is the median of interleaved rounds (implementation order alternates) after
// a discarded warm-up round. Calls are in-process domain calls: no gRPC, no queue-token check.
//
//   npm run bench -- --suite booking [--duration S] [--concurrency N]

import pg from "pg";
import { reserveSeat } from "../src/booking/seat-hold.js";
import { ENTITIES } from "../src/entities.js";
import { closeORM, initORM, migrateUp, type ORM } from "../src/platform/db/orm.js";
import { seedCatalog } from "../src/platform/db/seed.js";
import { DomainError } from "../src/platform/domain-error.js";
import { payReservation } from "../src/wallet/reservation-payment.js";
import { loadCatalog, type Catalog } from "../test/helpers/booking.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { createRawBooking, Rejection } from "./raw-pg-booking.js";
import { formatNumber, type BenchTable, type SuiteOptions } from "./report.js";
import { closedLoop, type ClosedLoopResult } from "./closed-loop.js";
import { median } from "./stats.js";

export interface BookingBenchOptions extends SuiteOptions {
  /** Measured rounds per figure (default 3). */
  rounds?: number;
  /** Connections per pool, the same for both implementations (default 16, the server default). */
  poolMax?: number;
}

export interface BookingRow {
  workload: Workload;
  implementation: Implementation;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time (user + system) of this Node process per transaction: the cost the ORM adds, whatever else runs on the machine. */
  cpuUsPerTx: number;
  ok: number;
  /** Expected refusals, e.g. SEAT_UNAVAILABLE on the hot seat. */
  rejected: number;
  errors: number;
}

const WORKLOADS = ["ReserveSeat, distinct seats", "ReserveSeat, one hot seat", "PayReservation"] as const;
type Workload = (typeof WORKLOADS)[number];
const IMPLEMENTATIONS = ["MikroORM (ours)", "raw pg (baseline)"] as const;
type Implementation = (typeof IMPLEMENTATIONS)[number];
const POLICY = { holdSeconds: 3600, maxSeatsPerUser: 4 };
/** Seats per schedule: enough that no run wraps around, whatever its speed. */
const seatsFor = (durationSec: number) => Math.min(900_000, 15_000 * durationSec);

type Run = ClosedLoopResult;

const isRejection = (error: unknown) =>
  error instanceof Rejection || (error instanceof DomainError && error.reason !== "CONCURRENT_UPDATE");

/** `op(i)` from `concurrency` callers; every attempt counts, lost races as refused. */
const drive = (
  concurrency: number,
  durationMs: number,
  op: (i: number) => Promise<unknown>,
  limit?: number,
): Promise<Run> => closedLoop({ concurrency, durationMs, op, limit, isRefusal: isRejection });

interface Subject {
  reserve(input: { scheduleId: string; seatId: string; userId: string; requestId: string }): Promise<unknown>;
  pay(input: { reservationId: string; userId: string; idempotencyKey: string }): Promise<unknown>;
}

function subjects(orm: ORM, pool: pg.Pool): Record<Implementation, Subject> {
  const raw = createRawBooking(pool, POLICY);
  return {
    "MikroORM (ours)": {
      reserve: (input) => reserveSeat(orm, input, POLICY),
      pay: (input) => payReservation(orm, input),
    },
    "raw pg (baseline)": { reserve: (input) => raw.reserveSeat(input), pay: (input) => raw.payReservation(input) },
  };
}

/** Puts a schedule back to all seats available and nothing booked, then vacuums so every run starts alike. */
async function resetSchedule(pool: pg.Pool, scheduleId: string): Promise<void> {
  await pool.query(
    "delete from outbox where aggregate_id in (select id::text from reservation where schedule_id = $1)",
    [scheduleId],
  );
  await pool.query(
    "delete from ledger_entry where reservation_id in (select id from reservation where schedule_id = $1)",
    [scheduleId],
  );
  await pool.query("delete from payment where reservation_id in (select id from reservation where schedule_id = $1)", [
    scheduleId,
  ]);
  await pool.query("delete from reservation where schedule_id = $1", [scheduleId]);
  await pool.query(
    "update seat set status = 'AVAILABLE', held_until = null where schedule_id = $1 and status <> 'AVAILABLE'",
    [scheduleId],
  );
  await pool.query("delete from wallet");
  await pool.query("vacuum analyze seat, reservation, payment, ledger_entry, outbox, wallet");
}

/** Creates `count` HELD reservations in a schedule, each of its own user with a funded wallet. */
async function prepareHolds(
  pool: pg.Pool,
  scheduleId: string,
  count: number,
  tag: string,
): Promise<{ id: string; userId: string }[]> {
  const { rows } = await pool.query<{ id: string; user_id: string }>(
    `with picked as (
       select id, price_minor, row_number() over (order by seat_no) as n
       from seat where schedule_id = $1 and status = 'AVAILABLE' order by seat_no limit $2),
     held as (update seat set status = 'HELD', held_until = now() + interval '1 hour' where id in (select id from picked))
     insert into reservation (id, schedule_id, seat_id, user_id, status, price_minor, request_id, expire_time)
     select gen_random_uuid(), $1, id, $3 || n, 'HELD', price_minor, 'bench', now() + interval '1 hour' from picked
     returning id, user_id`,
    [scheduleId, count, `pay-${tag}-`],
  );
  await pool.query("insert into wallet (user_id, balance_minor) select unnest($1::text[]), 1000000", [
    rows.map((r) => r.user_id),
  ]);
  await pool.query("vacuum analyze seat, reservation, wallet");
  return rows.map((r) => ({ id: r.id, userId: r.user_id }));
}

async function runOnce(
  workload: Workload,
  subject: Subject,
  context: { pool: pg.Pool; catalog: Catalog; concurrency: number; durationMs: number; tag: string; hotSeat: string },
): Promise<Run> {
  const { pool, catalog, concurrency, durationMs, tag } = context;
  const [distinct, hot, paid] = catalog.schedules as [
    Catalog["schedules"][0],
    Catalog["schedules"][0],
    Catalog["schedules"][0],
  ];
  switch (workload) {
    case "ReserveSeat, distinct seats":
      await resetSchedule(pool, distinct.id);
      return drive(
        concurrency,
        durationMs,
        (i) =>
          subject.reserve({
            scheduleId: distinct.id,
            seatId: distinct.seatIds[i]!,
            userId: `d-${tag}-${i}`,
            requestId: "r",
          }),
        distinct.seatIds.length,
      );
    case "ReserveSeat, one hot seat":
      await resetSchedule(pool, hot.id);
      return drive(concurrency, durationMs, (i) =>
        subject.reserve({ scheduleId: hot.id, seatId: context.hotSeat, userId: `h-${tag}-${i}`, requestId: "r" }),
      );
    case "PayReservation": {
      await resetSchedule(pool, paid.id);
      const holds = await prepareHolds(pool, paid.id, paid.seatIds.length, tag);
      return drive(
        concurrency,
        durationMs,
        (i) => subject.pay({ reservationId: holds[i]!.id, userId: holds[i]!.userId, idempotencyKey: "p" }),
        holds.length,
      );
    }
  }
}

/** Measures every workload with both implementations; one row per pair, medians over rounds. */
export async function measureBooking(options: BookingBenchOptions): Promise<BookingRow[]> {
  const rounds = options.rounds ?? 3;
  const poolMax = options.poolMax ?? 16;
  const database = await createTestDatabase("bench_booking");
  const { orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax });
  const pool = new pg.Pool({ connectionString: database.url, max: poolMax });
  // An idle client losing its connection must not crash the run; the next query reports it.
  pool.on("error", (error) => options.log(`booking: idle pg client error: ${error.message}`));
  try {
    await migrateUp(orm);
    const seats = seatsFor(options.durationSec);
    options.log(`booking: seeding 3 schedules of ${seats} seats`);
    await seedCatalog(orm.em.fork(), { concerts: 1, schedules: 3, seats });
    const catalog = await loadCatalog(orm.em.fork());
    const impls = subjects(orm, pool);
    const runs = new Map<string, Run[]>();
    let hotSeats = 0;
    for (let round = 0; round <= rounds; round++) {
      const warmUp = round === 0;
      for (const workload of WORKLOADS) {
        const order = round % 2 === 0 ? IMPLEMENTATIONS : [...IMPLEMENTATIONS].reverse();
        for (const implementation of order) {
          const context = {
            pool,
            catalog,
            concurrency: options.concurrency,
            durationMs: warmUp ? Math.min(1000, options.durationSec * 1000) : options.durationSec * 1000,
            tag: `${round}${implementation[0]}`,
            hotSeat: catalog.schedules[1]!.seatIds[hotSeats++]!,
          };
          const run = await runOnce(workload, impls[implementation], context);
          if (run.errors > 0)
            options.log(
              `booking: ${run.errors} errors in ${workload} / ${implementation}, first: ${String(run.firstError)}`,
            );
          if (warmUp) continue;
          options.log(
            `booking: round ${round} ${workload} / ${implementation}: ${formatNumber(run.callsPerSec)} ops/s`,
          );
          const key = `${workload}\u0000${implementation}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
        }
      }
    }
    return WORKLOADS.flatMap((workload) =>
      IMPLEMENTATIONS.map((implementation) => {
        const measured = runs.get(`${workload}\u0000${implementation}`)!;
        const typical = [...measured].sort((a, b) => a.callsPerSec - b.callsPerSec)[
          Math.ceil(measured.length / 2) - 1
        ]!;
        return {
          workload,
          implementation,
          opsPerSec: median(measured.map((r) => r.callsPerSec)),
          p50Ms: typical.p50Ms,
          p99Ms: typical.p99Ms,
          cpuUsPerTx: median(measured.map((r) => r.cpuUsPerCall)),
          ok: typical.ok,
          rejected: typical.refused,
          errors: measured.reduce((sum, r) => sum + r.errors, 0),
        };
      }),
    );
  } finally {
    await pool.end();
    await closeORM(orm);
    await database.drop();
  }
}

export async function runBookingBench(options: BookingBenchOptions): Promise<BenchTable[]> {
  const rows = await measureBooking(options);
  const baseline = (workload: Workload) =>
    rows.find((r) => r.workload === workload && r.implementation === "raw pg (baseline)")!.opsPerSec;
  return [
    {
      title: "Booking transactions: MikroORM vs raw pg, one process",
      note:
        `In-process domain calls, ${options.concurrency} in flight, pools of ${options.poolMax ?? 16} connections each, ${options.durationSec} s per run, ` +
        `median of ${options.rounds ?? 3} interleaved rounds after a warm-up; p50/p99 from the median run. ` +
        "The hot seat counts every attempt (one wins, the rest are SEAT_UNAVAILABLE under the row lock). ok/refused are from the median run. " +
        "Node CPU µs/tx is this process's CPU time per transaction (median over rounds): it shows the ORM's own cost even when other work on the machine skews tx/s.",
      columns: [
        "workload",
        "implementation",
        "tx/s",
        "of raw pg",
        "p50 ms",
        "p99 ms",
        "Node CPU µs/tx",
        "ok",
        "refused",
        "errors",
      ],
      rows: rows.map((r) => [
        r.workload,
        r.implementation,
        formatNumber(r.opsPerSec),
        `${formatNumber((100 * r.opsPerSec) / baseline(r.workload))} %`,
        formatNumber(r.p50Ms, 1),
        formatNumber(r.p99Ms, 1),
        formatNumber(r.cpuUsPerTx),
        r.ok,
        r.rejected,
        r.errors,
      ]),
    },
  ];
}
