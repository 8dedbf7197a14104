// The integrity audit after a run, read back from the stores rather than trusted from the
// client's counters: money conservation (exact, bigint), one live reservation per seat,
// payments = confirmed reservations = distinct payment.completed events in the Redis stream,
// and the admission cap replayed from the queue's PostgreSQL copy. PostgreSQL is read in one
// READ ONLY snapshot; nothing is written anywhere.

import pg from "pg";
import {
  connectRedis,
  createRedisClient,
  describeRedis,
  type RedisClient,
  type RedisNode,
} from "../platform/redis/client.js";
import * as sql from "./audit-queries.js";
import { capCheck, check, eventCheck, type AuditCheck, type EventEvidence, type Row } from "./audit-checks.js";
import { maxOverlap, readPaymentEvents } from "./audit-sources.js";

export type { AuditCheck, CheckStatus } from "./audit-checks.js";

export interface AuditInput {
  databaseUrl: string;
  redisUrl: string;
  /** Set when the server runs on a Redis Cluster (REDIS_CLUSTER_NODES). */
  redisClusterNodes?: readonly RedisNode[];
  redisKeyPrefix: string;
  /** User-id prefix of this run, e.g. "lt-3f9a1c-". */
  userPrefix: string;
  concertId: string;
  scheduleId: string;
  /** The server's MAX_ACTIVE_USERS. */
  cap: number;
  runStartedAt: Date;
  /** What the server acknowledged to the virtual users. */
  acknowledged: { toppedUpMinor: bigint; payments: number; paidMinor: bigint; ambiguousMutations: number };
  /** How long to wait for the outbox relay to publish the run's events. */
  publishWaitMs: number;
  /** Virtual users that saw their token ACTIVE (the scout not included). */
  activatedUsers: number;
  /** Client-observed sub-intervals of the users' active time (see RunStats.activeSpans). */
  clientActiveSpans: readonly { from_ms: number; to_ms: number }[];
  /** Largest active set sampled in Redis during the run, when it was sampled. */
  serverMaxActiveSampled?: number;
  log?: (line: string) => void;
}

export interface AuditResult {
  checks: AuditCheck[];
  /** Raw figures (money as decimal strings). */
  figures: Record<string, string | number>;
  passed: boolean;
}

/** A Redis connection for reading, or the reason there is none (the checks that need it say so). */
async function openRedis(input: AuditInput): Promise<{ redis?: RedisClient; error?: string }> {
  const redis = createRedisClient({
    url: input.redisUrl,
    clusterNodes: input.redisClusterNodes,
    name: "loadtest-audit",
    commandTimeoutMs: 30_000,
  });
  try {
    await connectRedis(redis, describeRedis(input.redisUrl, input.redisClusterNodes));
    return { redis };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

export async function auditRun(input: AuditInput): Promise<AuditResult> {
  // Read-only for the whole session, not just the snapshot: the audit must never write.
  const client = new pg.Client({
    connectionString: input.databaseUrl,
    application_name: "loadtest-audit",
    options: "-c default_transaction_read_only=on",
  });
  await client.connect();
  const { redis, error: redisError } = await openRedis(input);
  try {
    const one = async (text: string, params: unknown[]): Promise<Row> =>
      (await client.query<Row>(text, params)).rows[0] ?? {};
    const started = performance.now();
    const seconds = (from: number) => `${((performance.now() - from) / 1000).toFixed(1)} s`;
    const events = await waitForPublishedEvents(client, redis, redisError, input);
    input.log?.(`audit: outbox relay and event stream read in ${seconds(started)}`);
    const rowsStarted = performance.now();
    await waitForQueueRows(client, input);
    input.log?.(`audit: queue rows settled in ${seconds(rowsStarted)}`);
    const queriesStarted = performance.now();

    await client.query("begin transaction isolation level repeatable read read only");
    const p = [input.userPrefix];
    const ledger = await one(sql.LEDGER_TOTALS, p);
    const wallets = await one(sql.WALLET_TOTALS, p);
    const offLedger = await one(sql.WALLETS_OFF_LEDGER, p);
    const payments = await one(sql.PAYMENT_TOTALS, p);
    const reservations = await one(sql.RESERVATION_TOTALS, p);
    const mismatches = await one(sql.PAYMENT_RESERVATION_MISMATCHES, p);
    const doubleBooked = await one(sql.DOUBLE_BOOKED_SEATS, [input.scheduleId]);
    const seatRows = await one(sql.SEAT_ROW_MISMATCHES, [input.scheduleId]);
    const admissionRows = await one(sql.RUN_ADMISSION_ROWS, p);
    const intervals = (
      await client.query<{ from_ms: number; to_ms: number }>(sql.ACTIVE_INTERVALS, [
        input.concertId,
        input.runStartedAt,
      ])
    ).rows;
    await client.query("commit");
    input.log?.(`audit: PostgreSQL snapshot read in ${seconds(queriesStarted)}`);

    const big = (value: unknown) => BigInt(String(value ?? 0));
    const num = (value: unknown) => Number(value ?? 0);
    const topUps = big(ledger.top_ups_minor);
    const refunds = big(ledger.refunds_minor);
    const balances = big(wallets.balances_minor);
    const paid = big(payments.payments_minor);
    const paymentCount = num(payments.payments);
    const confirmed = num(reservations.confirmed);
    const ack = input.acknowledged;
    const exactAck = ack.ambiguousMutations === 0;

    const checks: AuditCheck[] = [
      check(
        "money conserved: top-ups + refunds = balances + payments",
        topUps + refunds === balances + paid,
        `${topUps} + ${refunds} = ${topUps + refunds}; ${balances} + ${paid} = ${balances + paid}`,
      ),
      check(
        "every wallet equals its ledger, none negative",
        num(offLedger.wallets) === 0 && num(wallets.negative_wallets) === 0,
        `${num(wallets.wallets)} wallets, ${num(offLedger.wallets)} off their ledger, ${num(wallets.negative_wallets)} negative`,
      ),
      check(
        "payment ledger entries = payment rows",
        big(ledger.ledger_payments_minor) === paid && num(ledger.ledger_payments) === paymentCount,
        `${num(ledger.ledger_payments)} entries for ${big(ledger.ledger_payments_minor)}; ${paymentCount} payments for ${paid}`,
      ),
      check(
        "acknowledged top-ups and payments are in PostgreSQL",
        exactAck
          ? topUps === ack.toppedUpMinor && paymentCount === ack.payments && paid === ack.paidMinor
          : topUps >= ack.toppedUpMinor && paymentCount >= ack.payments && paid >= ack.paidMinor,
        `top-ups ${topUps} (acknowledged ${ack.toppedUpMinor}); payments ${paymentCount} for ${paid} (acknowledged ${ack.payments} for ${ack.paidMinor})` +
          (exactAck
            ? ""
            : `; ${ack.ambiguousMutations} calls ended with an unknown outcome, so PostgreSQL may hold more`),
      ),
      check(
        "no seat with two live reservations",
        num(doubleBooked.seats) === 0,
        `${num(doubleBooked.seats)} seats of schedule ${input.scheduleId} double-booked`,
      ),
      check(
        "sold seats = seats with a confirmed reservation",
        num(seatRows.seats) === 0,
        `${num(seatRows.seats)} seat rows disagree with their reservations`,
      ),
      check(
        "payments = confirmed reservations",
        paymentCount === confirmed &&
          num(mismatches.payments_unconfirmed) === 0 &&
          num(mismatches.confirmed_unpaid) === 0,
        `${paymentCount} payments, ${confirmed} confirmed; ${num(mismatches.payments_unconfirmed)} payments without a confirmed reservation, ${num(mismatches.confirmed_unpaid)} confirmed without a payment`,
      ),
      eventCheck(events, paymentCount),
      capCheck(intervals, admissionRows, input),
    ];
    const figures = {
      topUpsMinor: topUps.toString(),
      topUps: num(ledger.top_ups),
      refundsMinor: refunds.toString(),
      balancesMinor: balances.toString(),
      paymentsMinor: paid.toString(),
      payments: paymentCount,
      confirmedReservations: confirmed,
      liveHeldReservations: num(reservations.held_live),
      wallets: num(wallets.wallets),
      outboxPaymentEvents: events.outbox.length,
      streamPaymentEvents: events.stream?.entries ?? -1,
      streamDistinctEventIds: events.stream?.distinctEventIds ?? -1,
      maxConcurrentlyActive: maxOverlap(intervals),
      clientLowerBoundActive: maxOverlap(input.clientActiveSpans),
      cap: input.cap,
    };
    // An invariant that could not be checked does not hold as far as this run can tell.
    return { checks, figures, passed: checks.every((c) => c.status === "pass") };
  } finally {
    redis?.disconnect();
    await client.end();
  }
}

/** Polls until the relay has published every payment.completed row of the run (or time runs out), then reads the stream. */
async function waitForPublishedEvents(
  client: pg.Client,
  redis: RedisClient | undefined,
  redisError: string | undefined,
  input: AuditInput,
): Promise<EventEvidence> {
  const deadline = Date.now() + input.publishWaitMs;
  let outbox: EventEvidence["outbox"];
  for (;;) {
    outbox = (await client.query<EventEvidence["outbox"][number]>(sql.RUN_PAYMENT_EVENTS, [input.userPrefix])).rows;
    if (outbox.every((row) => row.published) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (!redis) return { outbox, streamError: redisError };
  try {
    return { outbox, stream: await readPaymentEvents(redis, input.redisKeyPrefix, outbox, input.runStartedAt) };
  } catch (error) {
    return { outbox, streamError: (error as Error).message };
  }
}

/**
 * Waits until every admitted user's row has its admission time and the ended rows stop changing
 * (an admission tick or a leave of the run's last moments may still be committing), or the wait
 * runs out (the cap check then says what is missing).
 */
async function waitForQueueRows(client: pg.Client, input: AuditInput): Promise<void> {
  const deadline = Date.now() + input.publishWaitMs;
  let previous = "";
  for (;;) {
    const row = (await client.query<Row>(sql.RUN_ADMISSION_ROWS, [input.userPrefix])).rows[0] ?? {};
    const current = `${row.with_admission}/${row.ended}`;
    const settled = Number(row.with_admission ?? 0) >= input.activatedUsers && current === previous;
    if (settled || Date.now() > deadline) return;
    previous = current;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
