// Group commit of booking transactions (holds, top-ups, payments): the requests of one kind that
// arrive within a short window share one transaction on one connection. Each runs its own
// statements (the same compiled statements, seat locks and versioned wallet writes as alone), all
// members at once, so the connection pipelines them: a round trip carries every member's next
// statement, and one COMMIT ends them all.
//
// Each request keeps its own outcome. A member's work may refuse (a DomainError) only before its
// first write, having read and written nothing that another member needs: the others commit
// without it. Anything else (a version conflict, a unique violation, a deadlock: PostgreSQL then
// aborts the whole transaction) rolls the batch back, and every member runs again on its own,
// with its own transaction and retries, as it would have without the batch. Members that would
// meet on a row in one transaction (same user, same seat) are never in one batch together.
//
// Nothing is acknowledged before its commit, and nothing commits for a call that is over. A call
// over before its batch starts leaves it. Members share one transaction, so one whose call ended
// while the batch ran cannot be rolled back alone: the batch rolls back and the others run again
// together without it (rare, and cheaper than a savepoint per member, which pipelined statements
// from several members could not use anyway). A call that ends after the COMMIT went out may
// still have committed; a retry with its key replays that.

import type { EntityManager, PostgreSqlConnection } from "@mikro-orm/postgresql";
import type { Pool, PoolClient } from "pg";
import { createBatcher } from "../batcher.js";
import { DomainError } from "../domain-error.js";
import { withinDeadline, type CallBound } from "./call-bound.js";
import type { ORM } from "./orm.js";

export interface GroupMember<T> {
  /** Rows the work locks or writes that no other member of its batch may touch (e.g. `user:…`, `seat:…`). */
  keys: readonly string[];
  /** One attempt inside the shared transaction; may throw a DomainError only before its first write. */
  work(em: EntityManager): Promise<T>;
  /** The whole operation on its own (own transaction, own retries), when the batch cannot carry it. */
  alone(): Promise<T>;
  bound?: CallBound | undefined;
}

export interface GroupCommitOptions {
  maxItems: number;
  maxDelayMs: number;
  /** Called with the size of each batch that ran together, and whether it committed. */
  onBatch?: (members: number, committed: boolean) => void;
}

export interface GroupCommit {
  run<T>(member: GroupMember<T>): Promise<T>;
  drain(): Promise<void>;
}

type Member = GroupMember<unknown>;

const asError = (reason: unknown) => (reason instanceof Error ? reason : new Error(String(reason)));

export function createGroupCommit(orm: ORM, options: GroupCommitOptions): GroupCommit {
  const batcher = createBatcher<Member, unknown>({
    maxItems: options.maxItems,
    maxDelayMs: options.maxDelayMs,
    run: async (members) => {
      const outcomes: unknown[] = new Array(members.length);
      const together: number[] = [];
      const alone: number[] = [];
      const taken = new Set<string>();
      members.forEach((member, i) => {
        if (member.bound?.signal.aborted) outcomes[i] = asError(member.bound.signal.reason);
        else if (member.keys.some((key) => taken.has(key))) alone.push(i);
        else {
          for (const key of member.keys) taken.add(key);
          together.push(i);
        }
      });
      // Members send their statements in this order, step by step: two batches that want the
      // same two seats then lock them in one order instead of deadlocking.
      const lockOrder = (i: number) => members[i]!.keys.at(-1) ?? "";
      together.sort((a, b) => (lockOrder(a) < lockOrder(b) ? -1 : lockOrder(a) > lockOrder(b) ? 1 : 0));
      // A batch rolled back for members whose calls ended runs again without them; one rolled back
      // for any other reason leaves each member to run on its own.
      let batch = together;
      while (batch.length > 1) {
        const ran = await runTogether(
          orm,
          batch.map((i) => members[i]!),
        );
        options.onBatch?.(batch.length, "outcomes" in ran);
        if ("outcomes" in ran) {
          ran.outcomes.forEach((outcome, j) => (outcomes[batch[j]!] = outcome));
          batch = [];
        } else if (ran.ended.length === 0) break;
        else {
          for (const j of ran.ended) outcomes[batch[j]!] = asError(members[batch[j]!]!.bound!.signal.reason);
          batch = batch.filter((_, j) => !ran.ended.includes(j));
        }
      }
      alone.push(...batch);
      await Promise.all(
        alone.map(async (i) => {
          outcomes[i] = await members[i]!.alone().catch(asError);
        }),
      );
      return outcomes;
    },
  });
  return { run: <T>(member: GroupMember<T>) => batcher.submit(member) as Promise<T>, drain: () => batcher.drain() };
}

/** Kysely's query result, as MikroORM and the compiled statements read it. */
interface Executed {
  rows: Record<string, unknown>[];
  numAffectedRows?: bigint;
}

/**
 * The members' transaction context: statements go straight to the pg client, which pipelines
 * them (Kysely's transaction would send one at a time). It offers what the members' statements
 * use (compiled statements, em.execute, query builders' execute): executeQuery.
 */
function pipelinedContext(client: PoolClient) {
  return {
    async executeQuery(query: { sql: string; parameters: readonly unknown[] }): Promise<Executed> {
      const result = await client.query(query.sql, query.parameters as unknown[]);
      return ["INSERT", "UPDATE", "DELETE", "MERGE"].includes(result.command)
        ? { rows: result.rows ?? [], numAffectedRows: BigInt(result.rowCount ?? 0) }
        : { rows: result.rows ?? [] };
    },
  };
}

/**
 * Every member's outcome once the batch committed; else it rolled back, and `ended` lists the
 * members whose calls ended while it ran (the others may run together again), or is empty when
 * each member must run on its own.
 */
type Together = { outcomes: unknown[] } | { ended: number[] };

const ALONE: Together = { ended: [] };

async function runTogether(orm: ORM, members: Member[]): Promise<Together> {
  const connection = orm.em.getConnection() as unknown as PostgreSqlConnection;
  const pool = (await connection.getNativeClient().catch(() => undefined)) as unknown as Pool | undefined;
  if (!pool) return ALONE;
  // The batch waits for a row lock until the last of its calls' deadlines, none if one has none.
  const deadlines = members.map((member) => member.bound?.deadlineAt);
  const deadlineAt = deadlines.includes(undefined) ? undefined : Math.max(...(deadlines as number[]));
  // No connection to be had: each member asks for one on its own, with its call's error handling.
  const client = await pool.connect().catch(() => undefined);
  if (!client) return ALONE;
  let broken: Error | undefined;
  try {
    // statement-folding.ts sends the BEGIN (with its lock timeout) ahead of the first statement.
    await withinDeadline(deadlineAt, () => client.query("begin"));
    const context = pipelinedContext(client);
    const settled = await Promise.allSettled(
      members.map(async (member) => {
        const em = orm.em.fork();
        em.setTransactionContext(context as never);
        return member.work(em);
      }),
    );
    if (settled.some((s) => s.status === "rejected" && !(s.reason instanceof DomainError))) {
      await client.query("rollback");
      return ALONE;
    }
    // A refused member wrote nothing: only one that wrote and whose call ended must not commit.
    const ended = members.flatMap((member, j) =>
      member.bound?.signal.aborted && settled[j]!.status === "fulfilled" ? [j] : [],
    );
    if (ended.length > 0) {
      await client.query("rollback");
      return { ended };
    }
    // A statement error that a member caught still aborted the transaction: its COMMIT rolls back.
    const { command } = await client.query("commit");
    if (command !== "COMMIT") return ALONE;
    return { outcomes: settled.map((s) => (s.status === "fulfilled" ? s.value : asError(s.reason))) };
  } catch (error) {
    // The COMMIT's fate is unknown, or the connection failed: each member runs again on its own,
    // where a committed one finds its own result by its key.
    await client.query("rollback").catch((rollbackError: Error) => (broken = rollbackError ?? asError(error)));
    return ALONE;
  } finally {
    client.release(broken);
  }
}
