// Query-builder statements compiled once and run many times. MikroORM's query builder turns
// criteria objects into SQL on every call, and on the booking hot path that is a large share of
// the ORM's CPU time (docs/benchmarks.md): the same few statement shapes, rebuilt for every
// transaction. A compiled query builds its statement once,
// with marker values in place of the parameters, keeps the SQL MikroORM generated (table and
// column names from the entity metadata, quoting, operators) and the positions of the markers,
// and from then on runs that SQL with the new values bound, inside the caller's transaction, as
// a named prepared statement (prepared-statements.ts): PostgreSQL need not parse and plan it
// again. Rows come back as the query builder's plain rows do, through the same result
// mapper: property names, dates as Date, bigint columns as strings.
//
// Only for statements whose shape does not depend on the values (no optional criteria, no
// arrays whose length varies). Compiling keeps MikroORM's own SQL for the two mechanisms the
// design names: a seat lock is the query builder's LockMode.PESSIMISTIC_WRITE (FOR UPDATE, which
// needs the builder to run inside a transaction, so it compiles at its first use in one), and the
// wallet's write its versioned UPDATE … WHERE version = ? (wallet-writes.ts).

import { isRaw, type EntityMetadata, type EntityName } from "@mikro-orm/core";
import type { EntityManager, QueryBuilder } from "@mikro-orm/postgresql";
import { prepareStatements } from "./prepared-statements.js";

type Value = string | number | bigint | boolean | Date | null | Record<string, unknown>;
/** Named parameter values; interfaces qualify too (no index signature needed). */
type Params<P> = { [K in keyof P]: Value };

/** What compileQuery needs of a query builder (select, insert, update and delete builders all have it). */
interface Compilable {
  toQuery(): { sql: string; params: readonly unknown[] };
}

type Slot = { name: string; json?: boolean } | { value: unknown };

interface Compiled {
  sql: string;
  /** The SQL with `$n` placeholders, as it is prepared (prepared-statements.ts). */
  text: string;
  /** Per placeholder: the parameter name, or a constant the builder put there. */
  slots: Slot[];
  /** The statement's entity: its result mapper turns rows into the query builder's plain rows. */
  meta: EntityMetadata;
}

const MARK = "\u0001compiled-query:";
const marker = (name: string) => `${MARK}${name}\u0001`;

/** SQL with `?` placeholders and its values. */
export interface LeadStatement {
  sql: string;
  params: readonly unknown[];
}

export interface CompiledQuery<P extends Params<P>> {
  /** Every row, with property names. */
  all<R>(em: EntityManager, params: P): Promise<R[]>;
  /**
   * Every row, with `lead` sent ahead in the same round trip (statement-folding.ts): statements
   * that must run first, e.g. taking a lock. Each statement has a snapshot of its own, so this one
   * sees what was committed before `lead`'s locks were granted.
   */
  allAfter<R>(em: EntityManager, lead: LeadStatement, params: P): Promise<R[]>;
  /** The first row, or undefined. */
  get<R>(em: EntityManager, params: P): Promise<R | undefined>;
  /** Rows changed (INSERT/UPDATE/DELETE). */
  run(em: EntityManager, params: P): Promise<number>;
  /** The SQL with the values filled in, as the query builder would format it (tests compare the two). */
  format(em: EntityManager, params: P): string;
}

/**
 * `build` receives a query builder's entity manager and the parameters and returns the query
 * builder; it runs once per ORM with marker strings as parameter values, so it must pass every
 * parameter through unchanged (criteria values, update values), never compute with them.
 */
export function compileQuery<P extends Params<P>>(
  names: readonly (keyof P & string)[],
  build: (em: EntityManager, params: P) => Compilable,
): CompiledQuery<P> {
  // Per metadata storage: tests run several ORMs in one process.
  const cache = new WeakMap<object, Compiled>();

  const compiled = (em: EntityManager): Compiled => {
    const metadata = em.getMetadata();
    let entry = cache.get(metadata);
    if (entry) return entry;
    const markers = Object.fromEntries(names.map((name) => [name, marker(name)])) as unknown as P;
    const qb = build(em, markers);
    const { sql, params } = inlineRawParams(em, qb.toQuery());
    const slots = params.map((value): Slot => {
      if (typeof value !== "string") return { value };
      if (value.startsWith(MARK)) return { name: value.slice(MARK.length, -1) };
      // A JSON property: the builder serialized the marker string, so serialize the value likewise.
      const json = names.find((name) => value === JSON.stringify(marker(name)));
      return json ? { name: json, json: true } : { value };
    });
    const used = new Set(slots.flatMap((slot) => ("name" in slot ? [slot.name] : [])));
    const lost = names.filter((name) => !used.has(name));
    // A parameter the builder transformed (or dropped) cannot be substituted: fail at first use, loudly.
    if (lost.length > 0 || slots.length !== (sql.match(/\?/g)?.length ?? 0)) {
      throw new Error(
        `compileQuery: parameters ${lost.join(", ") || "(placeholder count)"} did not survive the query builder in: ${sql}`,
      );
    }
    const meta = (qb as unknown as { mainAlias: { meta: EntityMetadata } }).mainAlias.meta;
    entry = { sql, text: prepareStatements(sql), slots, meta };
    cache.set(metadata, entry);
    return entry;
  };

  const values = (entry: Compiled, params: P): unknown[] =>
    entry.slots.map((slot) =>
      "name" in slot
        ? slot.json
          ? JSON.stringify(params[slot.name as keyof P])
          : params[slot.name as keyof P]
        : slot.value,
    );

  // The driver's own mapper, as the query builder's execute() uses it: column names to property
  // names, and dates, which the driver returns as text, to Date.
  const mapRow = (em: EntityManager, entry: Compiled, row: Record<string, unknown>) =>
    em.getDriver().mapResult(row, entry.meta);

  return {
    async all<R>(em: EntityManager, params: P): Promise<R[]> {
      const entry = compiled(em);
      const { rows } = await executePrepared(em, entry.text, values(entry, params));
      return rows.map((row) => mapRow(em, entry, row) as R);
    },
    async allAfter<R>(em: EntityManager, lead: LeadStatement, params: P): Promise<R[]> {
      const entry = compiled(em);
      const { rows } = await executePrepared(em, leadText(lead.sql, entry), [...lead.params, ...values(entry, params)]);
      return rows.map((row) => mapRow(em, entry, row) as R);
    },
    async get<R>(em: EntityManager, params: P): Promise<R | undefined> {
      const entry = compiled(em);
      const { rows } = await executePrepared(em, entry.text, values(entry, params));
      return rows[0] ? (mapRow(em, entry, rows[0]) as R) : undefined;
    },
    async run(em: EntityManager, params: P): Promise<number> {
      const entry = compiled(em);
      const { numAffectedRows } = await executePrepared(em, entry.text, values(entry, params));
      return Number(numAffectedRows ?? 0);
    },
    format(em: EntityManager, params: P): string {
      const entry = compiled(em);
      return em.getPlatform().formatQuery(entry.sql, values(entry, params));
    },
  };
}

/** What Kysely's transaction (or database) object offers to run a statement with bound values. */
interface KyselyExecutor {
  executeQuery(query: {
    sql: string;
    parameters: readonly unknown[];
    query: { kind: string };
    queryId: object;
  }): Promise<{ rows: Record<string, unknown>[]; numAffectedRows?: bigint }>;
}

/**
 * Runs a prepared statement's text with bound values on the entity manager's transaction (or
 * the pool, outside one), through the Kysely object MikroORM itself runs statements on; the
 * driver sends it under its name (statement-folding.ts). MikroORM's own execute would inline
 * the values into the text.
 */
function executePrepared(em: EntityManager, text: string, parameters: readonly unknown[]) {
  const executor = (em.getTransactionContext() ?? em.getConnection().getClient()) as unknown as KyselyExecutor;
  // MikroORM's exceptions, as its own execute throws them (UniqueConstraintViolationException, …).
  return executor
    .executeQuery({ sql: text, parameters, query: { kind: "RawNode" }, queryId: {} })
    .catch((error: unknown) => {
      throw em.getDriver().convertException(error as Error);
    });
}

/**
 * The query builder passes a raw fragment among the values (a join on another column, say), which
 * its formatter writes into the text; here it goes into the statement's text once, as the
 * formatter writes it, since a bound value cannot stand for SQL.
 */
function inlineRawParams(em: EntityManager, query: { sql: string; params: readonly unknown[] }) {
  if (!query.params.some((value) => isRaw(value))) return query;
  const pieces = query.sql.split("?");
  if (pieces.length !== query.params.length + 1) return query; // the count check after this reports it
  const params: unknown[] = [];
  let sql = pieces[0]!;
  query.params.forEach((value, i) => {
    if (isRaw(value)) sql += em.getPlatform().formatQuery(value.sql, value.params);
    else {
      sql += "?";
      params.push(value);
    }
    sql += pieces[i + 1]!;
  });
  return { sql, params };
}

const leadTexts = new Map<string, string>();

/** The text that runs `lead` and then the compiled statement, each prepared (its SQL is a constant of its caller). */
function leadText(lead: string, entry: Compiled): string {
  const key = `${lead}\u0000${entry.sql}`;
  let text = leadTexts.get(key);
  if (text === undefined) {
    text = prepareStatements(lead, entry.sql);
    leadTexts.set(key, text);
  }
  return text;
}

/**
 * The builder of an INSERT of `fields` (each a parameter of the same name) plus `constants`:
 * the column list is written once, as the parameter names. compileQuery(fields, builder)
 * compiles it alone; a larger statement can use it as one of its data-modifying WITH queries.
 */
export function insertBuilder<P extends Params<P>>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any entity: its metadata gives the columns
  entity: EntityName<any>,
  fields: readonly (keyof P & string)[],
  constants: Record<string, Value> = {},
) {
  return (em: EntityManager, p: P) =>
    em
      .createQueryBuilder(entity)
      .insert({ ...Object.fromEntries(fields.map((field) => [field, p[field]])), ...constants });
}

/**
 * An insert or update builder as a data-modifying WITH query of a larger statement (several rows
 * written in one round trip). QueryBuilder.with() renders any builder, but its typings name only
 * the select builder.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- with() is typed to take a QueryBuilder<any>
export const dataModifying = (qb: object) => qb as QueryBuilder<any>;
