// The baseline of the booking benchmark: ReserveSeat and PayReservation written against a bare
// `pg` Pool, issuing the same SQL statements in the same order as the MikroORM code in
// src/booking/seat-hold.ts and src/wallet/reservation-payment.ts (compare with debug logging on),
// with the same checks. Only the happy path and the outcomes the benchmark provokes are kept;
// the idempotent-replay branches return early exactly where the real code does.

import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { ReserveSeatInput } from "../src/booking/seat-hold.js";
import type { PayInput } from "../src/wallet/reservation-payment.js";
import { fingerprint } from "../src/wallet/wallet-ledger.js";

/** A refusal the benchmark expects (lost seat race, no balance); anything else is an error. */
export class Rejection extends Error {}

const SEAT_LIMIT_LOCK_CLASS = 0x5ea7;

async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const result = await work(client);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback");
    throw error;
  } finally {
    client.release();
  }
}

export function createRawBooking(pool: pg.Pool, policy: { holdSeconds: number; maxSeatsPerUser: number }) {
  return {
    async reserveSeat({ scheduleId, seatId, userId, requestId }: ReserveSeatInput): Promise<string> {
      const now = new Date();
      return inTransaction(pool, async (client) => {
        await client.query("select pg_advisory_xact_lock($1, hashtext($2))", [
          SEAT_LIMIT_LOCK_CLASS,
          `${userId} ${scheduleId}`,
        ]);
        const mine = await client.query(
          `select * from reservation where user_id = $1 and (request_id = $2 or (schedule_id = $3 and status in ('HELD', 'CONFIRMED')))`,
          [userId, requestId, scheduleId],
        );
        const earlier = mine.rows.find((r) => r.request_id === requestId);
        if (earlier) return earlier.id as string;
        const live = mine.rows.filter(
          (r) => r.status === "CONFIRMED" || (r.status === "HELD" && r.expire_time > now),
        ).length;
        if (live >= policy.maxSeatsPerUser) throw new Rejection("SEAT_LIMIT_REACHED");
        const { rows: seats } = await client.query(
          "select schedule_id, status, held_until, price_minor from seat where id = $1 limit 1 for update",
          [seatId],
        );
        const seat = seats[0];
        if (!seat || seat.schedule_id !== scheduleId) throw new Rejection("SEAT_NOT_FOUND");
        if (seat.status === "RESERVED" || (seat.status === "HELD" && seat.held_until > now))
          throw new Rejection("SEAT_UNAVAILABLE");
        if (seat.status === "HELD")
          await client.query("update reservation set status = 'EXPIRED' where seat_id = $1 and status = 'HELD'", [
            seatId,
          ]);
        const id = randomUUID();
        const expireTime = new Date(now.getTime() + policy.holdSeconds * 1000);
        await client.query(
          `with hold as (insert into reservation (id, schedule_id, seat_id, user_id, status, price_minor, created_at, expire_time, confirmed_at, request_id)
             values ($1, $2, $3, $4, 'HELD', $5, $6, $7, null, $8) returning created_at)
           update seat set status = 'HELD', held_until = $7 where id = $3`,
          [id, scheduleId, seatId, userId, seat.price_minor, now, expireTime, requestId],
        );
        return id;
      });
    },

    async payReservation({ reservationId, userId, idempotencyKey }: PayInput): Promise<string> {
      const now = new Date();
      return inTransaction(pool, async (client) => {
        const { rows: reservations } = await client.query("select * from reservation where id = $1 limit 1", [
          reservationId,
        ]);
        const reservation = reservations[0];
        // As in the real code, the key is looked up only when the reservation is not payable as it stands.
        if (reservation?.user_id !== userId || reservation.status !== "HELD" || reservation.expire_time <= now) {
          const { rows: previous } = await client.query(
            "select id, reservation_id, user_id, amount_minor, created_at from payment where user_id = $1 and idempotency_key = $2 limit 1",
            [userId, idempotencyKey],
          );
          if (previous[0]) return previous[0].id as string;
          throw new Rejection(reservation?.user_id !== userId ? "RESERVATION_NOT_FOUND" : "RESERVATION_NOT_PAYABLE");
        }
        await client.query(
          "select schedule_id, status, held_until, price_minor from seat where id = $1 limit 1 for update",
          [reservation.seat_id],
        );
        const { rows: wallets } = await client.query(
          "select user_id, balance_minor, version, updated_at from wallet where user_id = $1 limit 1",
          [userId],
        );
        const wallet = wallets[0];
        const price = BigInt(reservation.price_minor);
        if (!wallet || BigInt(wallet.balance_minor) < price) throw new Rejection("INSUFFICIENT_BALANCE");
        const balanceAfter = BigInt(wallet.balance_minor) - price;
        const paymentId = randomUUID();
        const payload = {
          payment_id: paymentId,
          reservation_id: reservationId,
          user_id: userId,
          schedule_id: reservation.schedule_id,
          seat_id: reservation.seat_id,
          amount_minor: price.toString(),
          currency_code: "JPY",
          paid_at: now.toISOString(),
        };
        // One statement for the reservation, the seat, the payment, its ledger entry and the event, as recordPaymentRows.
        const confirmed = await client.query(
          `with confirmed as (update reservation set status = 'CONFIRMED', confirmed_at = $1 where id = $2 and status = 'HELD' and expire_time > $1 returning id, confirmed_at),
             sold as (update seat set status = 'RESERVED', held_until = null where id = $3),
             paid as (insert into payment (id, reservation_id, user_id, amount_minor, created_at, idempotency_key) values ($4, $2, $5, $6, $1, $7) returning created_at),
             entry as (insert into ledger_entry (user_id, kind, amount_minor, balance_after_minor, idempotency_key, request_fingerprint, reservation_id, created_at)
               values ($5, 'PAYMENT', $8, $9, $7, $10, $2, $1) returning id, created_at),
             event as (insert into outbox (event_id, event_type, aggregate_type, aggregate_id, payload, created_at)
               values ($11, 'payment.completed', 'reservation', $2, $12, $1) returning id, created_at)
           select (select coalesce(json_agg(distinct h.schedule_id), '[]') from reservation h, confirmed c
                    where h.user_id = r.user_id and h.status = 'HELD' and h.expire_time > c.confirmed_at and h.id <> r.id) as held
           from reservation r where r.id = $2 and exists (select 1 from confirmed)`,
          [
            now,
            reservationId,
            reservation.seat_id,
            paymentId,
            userId,
            price.toString(),
            idempotencyKey,
            (-price).toString(),
            balanceAfter.toString(),
            fingerprint("PAYMENT", userId, reservationId),
            randomUUID(),
            JSON.stringify(payload),
          ],
        );
        if (confirmed.rowCount === 0) throw new Rejection("RESERVATION_NOT_PAYABLE");
        const updated = await client.query(
          "update wallet set balance_minor = $1, version = $2, updated_at = $3 where user_id = $4 and version = $5",
          [balanceAfter.toString(), wallet.version + 1, now, userId, wallet.version],
        );
        // Each benchmark user pays from their own wallet, so a version conflict would be a bug here.
        if (updated.rowCount !== 1) throw new Error(`wallet ${userId} changed concurrently`);
        return paymentId;
      });
    },
  };
}
