// compileQuery: a statement compiled once must be exactly the statement the query builder would
// build for the same values, for every kind of value the hot path passes (uuid and text, Date,
// null, bigint, JSON, constants next to parameters), and must run in the caller's transaction.

import { randomUUID } from "node:crypto";
import test from "ava";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { Reservation } from "../../src/booking/reservation.entity.js";
import { Seat, type SeatStatus } from "../../src/booking/seat.entity.js";
import { compileQuery, insertBuilder } from "../../src/platform/db/compiled-query.js";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp } from "../../src/platform/db/orm.js";
import { Outbox } from "../../src/platform/db/outbox.entity.js";
import { LedgerEntry } from "../../src/wallet/ledger-entry.entity.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
let orm: MikroORM;

test.before(async () => {
  database = await createTestDatabase("compiledquery");
  ({ orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax: 4 }));
  await migrateUp(orm);
});

test.after.always(async () => {
  if (orm) await closeORM(orm);
  if (database) await database.drop();
});

const formatted = (em: EntityManager, qb: { toQuery(): { sql: string; params: readonly unknown[] } }) => {
  const { sql, params } = qb.toQuery();
  return em.getPlatform().formatQuery(sql, [...params]);
};

test("a compiled select with $or and $in constants formats like the query builder, for every set of values", (t) => {
  const build = (em: EntityManager, p: { userId: string; requestId: string; scheduleId: string }) =>
    em
      .createQueryBuilder(Reservation)
      .select("*")
      .where({
        userId: p.userId,
        $or: [{ requestId: p.requestId }, { scheduleId: p.scheduleId, status: { $in: ["HELD", "CONFIRMED"] } }],
      });
  const compiled = compileQuery(["userId", "requestId", "scheduleId"], build);
  const em = orm.em.fork();
  for (const values of [
    { userId: "u1", requestId: "r1", scheduleId: randomUUID() },
    { userId: "o'brien", requestId: "a?b", scheduleId: randomUUID() },
  ]) {
    t.is(compiled.format(em, values), formatted(em, build(em, values)));
  }
});

test("Date, null and bigint values in updates and inserts format like the query builder", (t) => {
  const em = orm.em.fork();
  const update = (em: EntityManager, p: { id: string; status: SeatStatus; heldUntil: Date | null }) =>
    em.createQueryBuilder(Seat).update({ status: p.status, heldUntil: p.heldUntil }).where({ id: p.id });
  const compiledUpdate = compileQuery(["id", "status", "heldUntil"], update);
  for (const values of [
    { id: randomUUID(), status: "HELD" as const, heldUntil: new Date() },
    { id: randomUUID(), status: "AVAILABLE" as const, heldUntil: null },
  ]) {
    t.is(compiledUpdate.format(em, values), formatted(em, update(em, values)));
  }
  const insert = (
    em: EntityManager,
    p: { userId: string; amountMinor: bigint; reservationId: string | null; createdAt: Date },
  ) =>
    em.createQueryBuilder(LedgerEntry).insert({
      userId: p.userId,
      kind: "PAYMENT",
      amountMinor: p.amountMinor,
      balanceAfterMinor: 0n,
      idempotencyKey: "k",
      requestFingerprint: "f",
      reservationId: p.reservationId,
      createdAt: p.createdAt,
    });
  const compiledInsert = compileQuery(["userId", "amountMinor", "reservationId", "createdAt"], insert);
  const values = { userId: "u", amountMinor: -12_000n, reservationId: null, createdAt: new Date() };
  t.is(compiledInsert.format(em, values), formatted(em, insert(em, values)));
});

test("a JSON property is serialized as the query builder serializes it", (t) => {
  const em = orm.em.fork();
  const insert = (em: EntityManager, p: { eventId: string; payload: Record<string, unknown> }) =>
    em.createQueryBuilder(Outbox).insert({
      eventId: p.eventId,
      eventType: "t",
      aggregateType: "a",
      aggregateId: "x",
      payload: p.payload,
      createdAt: new Date(0),
    });
  const compiled = compileQuery(["eventId", "payload"], insert);
  const values = { eventId: randomUUID(), payload: { amount_minor: "12000", quote: "it's", nested: { a: [1, 2] } } };
  t.is(compiled.format(em, values), formatted(em, insert(em, values)));
});

test("insertBuilder writes the listed properties plus the constants, as the query builder would", (t) => {
  const em = orm.em.fork();
  type Hold = {
    id: string;
    scheduleId: string;
    seatId: string;
    userId: string;
    priceMinor: bigint;
    expireTime: Date;
    requestId: string;
  };
  const fields = ["id", "scheduleId", "seatId", "userId", "priceMinor", "expireTime", "requestId"] as const;
  const compiled = compileQuery<Hold>(fields, insertBuilder<Hold>(Reservation, fields, { status: "HELD" }));
  const values: Hold = {
    id: randomUUID(),
    scheduleId: randomUUID(),
    seatId: randomUUID(),
    userId: "u",
    priceMinor: 12_000n,
    expireTime: new Date(),
    requestId: "r",
  };
  t.is(
    compiled.format(em, values),
    formatted(em, em.createQueryBuilder(Reservation).insert({ ...values, status: "HELD" })),
  );
});

test("a parameter the builder does not pass through unchanged is refused at first use", (t) => {
  const compiled = compileQuery<{ userId: string }>(["userId"], (em, p) =>
    em.createQueryBuilder(Reservation).select("*").where({ userId: p.userId.toUpperCase() }),
  );
  t.throws(() => compiled.format(orm.em.fork(), { userId: "u" }), {
    message: /userId did not survive the query builder/,
  });
});

test("compiled statements run inside the caller transaction and map columns to property names", async (t) => {
  const seatId = randomUUID();
  const scheduleId = randomUUID();
  const byId = compileQuery<{ id: string }>(["id"], (em, p) =>
    em
      .createQueryBuilder(Seat)
      .select(["id", "scheduleId", "seatNo", "priceMinor", "heldUntil"])
      .where({ id: p.id })
      .limit(1),
  );
  const setStatus = compileQuery<{ id: string; status: SeatStatus; heldUntil: Date }>(
    ["id", "status", "heldUntil"],
    (em, p) => em.createQueryBuilder(Seat).update({ status: p.status, heldUntil: p.heldUntil }).where({ id: p.id }),
  );
  const heldUntil = new Date(Date.now() + 60_000);
  await orm.em
    .fork()
    .insert(Seat, { id: seatId, scheduleId, seatNo: 1, label: "A-1", grade: "S", priceMinor: 12_000n });

  await t.throwsAsync(
    orm.em.fork().transactional(async (em) => {
      t.is(await setStatus.run(em, { id: seatId, status: "HELD", heldUntil }), 1);
      const row = await byId.get<{ heldUntil: unknown }>(em, { id: seatId });
      t.like(row, { id: seatId, scheduleId, seatNo: 1, priceMinor: "12000" });
      // Dates come back as Date, as from the query builder (the driver itself returns text).
      t.deepEqual(row?.heldUntil, heldUntil);
      throw new Error("roll back");
    }),
    { message: "roll back" },
  );
  // The update ran in the rolled-back transaction, not on a connection of its own.
  const [row] = await orm.em
    .fork()
    .getConnection()
    .execute<{ status: string }[]>("select status from seat where id = ?", [seatId]);
  t.is(row?.status, "AVAILABLE");
  t.is(await byId.get(orm.em.fork(), { id: randomUUID() }), undefined);
});

test("a compiled statement runs as a named prepared statement with bound values, and fails as MikroORM reports failures", async (t) => {
  const id = randomUUID();
  const insert = compileQuery<{ id: string; scheduleId: string; seatNo: number; priceMinor: bigint }>(
    ["id", "scheduleId", "seatNo", "priceMinor"],
    insertBuilder(Seat, ["id", "scheduleId", "seatNo", "priceMinor"], { label: "B-1", grade: "S" }),
  );
  const values = { id, scheduleId: randomUUID(), seatNo: 2, priceMinor: 9_000_000_000n };
  await orm.em.fork().transactional(async (em) => {
    t.is(await insert.run(em, values), 1);
    // Prepared on this transaction's connection, under its name, with placeholders for the values.
    const prepared = await em.execute<{ name: string; statement: string }[]>(
      "select name, statement from pg_prepared_statements where name like 'compiled\\_%'",
    );
    t.true(
      prepared.some((p) => p.statement.startsWith('insert into "seat"') && /\(\$1, \$2, \$3, \$4, /.test(p.statement)),
      JSON.stringify(prepared),
    );
  });
  // The bigint went in exactly; a second insert of the same id is MikroORM's unique violation.
  const [row] = await orm.em
    .fork()
    .execute<{ price_minor: string }[]>("select price_minor from seat where id = ?", [id]);
  t.is(row?.price_minor, "9000000000");
  await t.throwsAsync(insert.run(orm.em.fork(), values), { instanceOf: UniqueConstraintViolationException });
});

test("a lead statement goes out with the compiled one; its failure is the one reported", async (t) => {
  const byId = compileQuery<{ id: string }>(["id"], (em, p) =>
    em.createQueryBuilder(Seat).select(["id"]).where({ id: p.id }),
  );
  const em = orm.em.fork();
  const rows = await em.transactional((tx) =>
    byId.allAfter(tx, { sql: "select pg_advisory_xact_lock(?, ?)", params: [7, 7] }, { id: randomUUID() }),
  );
  t.deepEqual(rows, []);
  await t.throwsAsync(
    orm.em
      .fork()
      .transactional((tx) => byId.allAfter(tx, { sql: "select 1 / (? - 1)", params: [1] }, { id: randomUUID() })),
    { message: /division by zero/ },
  );
});
