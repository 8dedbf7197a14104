// A hold's locks and reads in one round trip (with its BEGIN): the user's advisory lock in the
// schedule and the schedule's shared sale lock in a first statement; then, as a statement of its
// own that sees what was committed before those locks were granted, the seat lock (sale-gate.ts:
// the seat row alone, FOR UPDATE through MikroORM, with its schedule's sale) with the user's
// reservations in the schedule read as one column. The user's lock keeps their reservations from
// changing under the seat lock's wait, except for expiries, which the limit check reads by time.

import { raw } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { compileQuery, getAfter } from "../platform/db/compiled-query.js";
import type { ReservationRow } from "./reservation-rows.js";
import { Reservation } from "./reservation.entity.js";
import {
  asDate,
  SHARED_SALE_LOCK_SQL,
  seatOnSaleQuery,
  toSeatOnSale,
  type SeatOnSale,
  type SeatOnSaleRow,
} from "./sale-gate.js";

/** Namespace of the (user, schedule) advisory locks; the two-int4 form keeps them apart from any bigint-keyed lock. */
const SEAT_LIMIT_LOCK_CLASS = 0x5ea7;

interface HoldKeys {
  userId: string;
  requestId: string;
  scheduleId: string;
}

/** The user's reservation made with this request id, and their live ones in the schedule. */
const mineIn = (em: EntityManager, alias: string, p: HoldKeys) =>
  em.createQueryBuilder(Reservation, alias).where({
    userId: p.userId,
    $or: [{ requestId: p.requestId }, { scheduleId: p.scheduleId, status: { $in: ["HELD", "CONFIRMED"] } }],
  });

const userReservations = compileQuery<HoldKeys>(["userId", "requestId", "scheduleId"], (em, p) =>
  mineIn(em, "r", p).select("*"),
);

/** A reservation row as json_agg writes it: column names, the bigint as a number, times as text. */
interface ReservationJson {
  id: string;
  schedule_id: string;
  seat_id: string;
  user_id: string;
  status: ReservationRow["status"];
  price_minor: number | string;
  request_id: string;
  created_at: string;
  expire_time: string;
  confirmed_at: string | null;
}

const fromJson = (r: ReservationJson): ReservationRow => ({
  id: r.id,
  scheduleId: r.schedule_id,
  seatId: r.seat_id,
  userId: r.user_id,
  status: r.status,
  priceMinor: BigInt(r.price_minor),
  requestId: r.request_id,
  createdAt: asDate(r.created_at)!,
  expireTime: asDate(r.expire_time)!,
  confirmedAt: asDate(r.confirmed_at),
});

export interface HoldLocks {
  /** Null when the seat does not exist. */
  seat: SeatOnSale | null;
  /** The user's reservation with this request id, and their live ones in the schedule. */
  mine: ReservationRow[];
}

/** Takes the hold's locks (see above) and reads what the hold decides on. */
export async function lockForHold(em: EntityManager, seatId: string, keys: HoldKeys): Promise<HoldLocks> {
  const { userId, scheduleId } = keys;
  const locks = {
    sql: `select pg_advisory_xact_lock(?, hashtext(?)), ${SHARED_SALE_LOCK_SQL}`,
    params: [SEAT_LIMIT_LOCK_CLASS, `${userId} ${scheduleId}`, scheduleId],
  };
  const mine = mineIn(em, "m", keys).select(raw("coalesce(json_agg(m), '[]')")).as("mine");
  const row = await getAfter<SeatOnSaleRow & { mine: ReservationJson[] }>(
    em,
    locks,
    seatOnSaleQuery(em, seatId).addSelect(mine),
  );
  // No seat: the locks are taken; the user's reservations still answer a replayed request id.
  if (!row) return { seat: null, mine: await userReservations.all<ReservationRow>(em, keys) };
  return { seat: toSeatOnSale(row), mine: row.mine.map(fromJson) };
}
