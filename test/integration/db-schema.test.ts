import { randomUUID } from "node:crypto";
import test from "ava";
import {
  CheckConstraintViolationException,
  OptimisticLockError,
  UniqueConstraintViolationException,
  type EntityManager,
  type MikroORM,
} from "@mikro-orm/postgresql";
import { Concert } from "../../src/booking/concert.entity.js";
import { Reservation, type ReservationStatus } from "../../src/booking/reservation.entity.js";
import { Schedule } from "../../src/booking/schedule.entity.js";
import { Seat } from "../../src/booking/seat.entity.js";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp } from "../../src/platform/db/orm.js";
import { isCatalogEmpty, seedCatalog } from "../../src/platform/db/seed.js";
import { LedgerEntry } from "../../src/wallet/ledger-entry.entity.js";
import { Wallet } from "../../src/wallet/wallet.entity.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
let orm: MikroORM;
let em: EntityManager;

test.before(async () => {
  database = await createTestDatabase("dbschema");
  ({ orm, em } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax: 4 }));
  await migrateUp(orm);
});

test.after.always(async () => {
  if (orm) await closeORM(orm);
  if (database) await database.drop();
});

function reservationFor(seatId: string, status: ReservationStatus) {
  return {
    id: randomUUID(),
    scheduleId: randomUUID(),
    seatId,
    userId: `user-${randomUUID()}`,
    status,
    priceMinor: 12_000n,
    requestId: randomUUID(),
    expireTime: new Date(Date.now() + 5 * 60_000),
  };
}

test("a second migration run applies nothing", async (t) => {
  t.deepEqual(await migrateUp(orm), []);
});

test("the migrated schema matches the entities", async (t) => {
  // An entity change without a migration shows up here as pending DDL.
  t.is((await orm.schema.getUpdateSchemaSQL({ wrap: false })).trim(), "");
});

test("one seat can have only one live reservation", async (t) => {
  const fork = em.fork();
  const seatId = randomUUID();
  const heldId = await fork.insert(Reservation, reservationFor(seatId, "HELD"));

  for (const status of ["HELD", "CONFIRMED"] as const) {
    const error = await t.throwsAsync(fork.insert(Reservation, reservationFor(seatId, status)), {
      instanceOf: UniqueConstraintViolationException,
    });
    // pg's error fields survive on the exception, so callers can tell which rule was broken.
    t.is(
      (error as UniqueConstraintViolationException & { constraint?: string }).constraint,
      "reservation_live_seat_uq",
    );
  }

  t.is(await fork.nativeUpdate(Reservation, { id: heldId }, { status: "EXPIRED" }), 1);
  const secondId = await fork.insert(Reservation, reservationFor(seatId, "HELD"));
  await fork.nativeUpdate(Reservation, { id: secondId }, { status: "CANCELLED", cancelledAt: new Date() });
  await t.notThrowsAsync(fork.insert(Reservation, reservationFor(seatId, "CONFIRMED")));
});

test("a wallet balance can never go negative", async (t) => {
  const fork = em.fork();
  await t.throwsAsync(fork.insert(Wallet, { userId: `user-${randomUUID()}`, balanceMinor: -1n }), {
    instanceOf: CheckConstraintViolationException,
  });

  const userId = `user-${randomUUID()}`;
  await fork.insert(Wallet, { userId, balanceMinor: 500n });
  await t.throwsAsync(fork.nativeUpdate(Wallet, { userId }, { balanceMinor: -500n }), {
    instanceOf: CheckConstraintViolationException,
  });
});

test("a stale wallet copy cannot overwrite a newer one", async (t) => {
  const userId = `user-${randomUUID()}`;
  await em.fork().insert(Wallet, { userId, balanceMinor: 1_000n });

  const first = em.fork();
  const second = em.fork();
  const walletA = await first.findOneOrFail(Wallet, userId);
  const walletB = await second.findOneOrFail(Wallet, userId);
  t.is(typeof walletA.balanceMinor, "bigint");
  t.is(walletA.version, 1);

  walletA.balanceMinor -= 300n;
  await first.flush();
  walletB.balanceMinor -= 900n;
  await t.throwsAsync(second.flush(), { instanceOf: OptimisticLockError });

  const stored = await em.fork().findOneOrFail(Wallet, userId);
  t.is(stored.balanceMinor, 700n);
  t.is(stored.version, 2);
});

test("ledger ids come back as strings and money as bigint", async (t) => {
  const fork = em.fork();
  const userId = `user-${randomUUID()}`;
  const entry = {
    userId,
    kind: "TOP_UP" as const,
    amountMinor: 9_007_199_254_740_993n,
    balanceAfterMinor: 9_007_199_254_740_993n,
    requestFingerprint: "fp",
  };
  const id = await fork.insert(LedgerEntry, { ...entry, idempotencyKey: "k1" });
  t.is(typeof id, "string");

  const [stored] = await fork.find(LedgerEntry, { userId });
  t.is(stored?.id, id);
  t.is(stored?.amountMinor, 9_007_199_254_740_993n);
  await t.throwsAsync(fork.insert(LedgerEntry, { ...entry, idempotencyKey: "k1" }), {
    instanceOf: UniqueConstraintViolationException,
  });
});

test("seeding the catalog twice changes nothing the second time", async (t) => {
  const options = { concerts: 1, schedules: 2, seats: 120 };
  const counts = async () => ({
    concerts: await em.fork().count(Concert),
    schedules: await em.fork().count(Schedule),
    seats: await em.fork().count(Seat),
  });

  t.true(await isCatalogEmpty(em.fork()));
  const progress: number[] = [];
  const first = await seedCatalog(em.fork(), { ...options, onProgress: (p) => progress.push(p.schedule) });
  t.deepEqual(first, { concertsInserted: 1, schedulesInserted: 2, schedulesGrown: 0, seatsInserted: 240 });
  t.deepEqual(progress, [1, 2]);
  t.false(await isCatalogEmpty(em.fork()));
  const afterFirst = await counts();
  t.deepEqual(afterFirst, { concerts: 1, schedules: 2, seats: 240 });

  const second = await seedCatalog(em.fork(), options);
  t.deepEqual(second, { concertsInserted: 0, schedulesInserted: 0, schedulesGrown: 0, seatsInserted: 0 });
  t.deepEqual(await counts(), afterFirst);

  const lastSeat = await em.fork().findOneOrFail(Seat, { seatNo: 120 });
  t.like(lastSeat, { label: "C-20", grade: "B", priceMinor: 6_000n, status: "AVAILABLE", heldUntil: null });

  // More seats per schedule: the schedules grow (not counted as new), only the seats are new.
  const grown = await seedCatalog(em.fork(), { ...options, seats: 150 });
  t.deepEqual(grown, { concertsInserted: 0, schedulesInserted: 0, schedulesGrown: 2, seatsInserted: 60 });
  t.deepEqual(await counts(), { concerts: 1, schedules: 2, seats: 300 });
});
