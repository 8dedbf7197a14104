// Read-only SQL of the integrity audit. $1 is always the run's user-id prefix ("lt-<run>-"), so
// the figures cover this run's users only; seat checks cover the whole schedule and the cap check
// the whole concert, because those invariants hold across every user.

export const LEDGER_TOTALS = `
select coalesce(sum(amount_minor) filter (where kind = 'TOP_UP'), 0)::text as top_ups_minor,
       count(*) filter (where kind = 'TOP_UP') as top_ups,
       coalesce(-sum(amount_minor) filter (where kind = 'PAYMENT'), 0)::text as ledger_payments_minor,
       count(*) filter (where kind = 'PAYMENT') as ledger_payments,
       coalesce(sum(amount_minor) filter (where kind = 'REFUND'), 0)::text as refunds_minor
from ledger_entry where starts_with(user_id, $1)`;

export const WALLET_TOTALS = `
select coalesce(sum(balance_minor), 0)::text as balances_minor,
       count(*) as wallets,
       count(*) filter (where balance_minor < 0) as negative_wallets
from wallet where starts_with(user_id, $1)`;

/** Wallets whose balance differs from the sum of their ledger entries. */
export const WALLETS_OFF_LEDGER = `
select count(*) as wallets
from wallet w
left join (select user_id, sum(amount_minor) as total from ledger_entry where starts_with(user_id, $1) group by user_id) l using (user_id)
where starts_with(w.user_id, $1) and w.balance_minor <> coalesce(l.total, 0)`;

export const PAYMENT_TOTALS = `
select count(*) as payments, coalesce(sum(amount_minor), 0)::text as payments_minor
from payment where starts_with(user_id, $1)`;

export const RESERVATION_TOTALS = `
select count(*) filter (where status = 'CONFIRMED') as confirmed,
       count(*) filter (where status = 'HELD' and expire_time > now()) as held_live,
       count(*) as reservations
from reservation where starts_with(user_id, $1)`;

/** Payments whose reservation is not CONFIRMED, and CONFIRMED reservations without a payment. */
export const PAYMENT_RESERVATION_MISMATCHES = `
select (select count(*) from payment p left join reservation r on r.id = p.reservation_id
        where starts_with(p.user_id, $1) and (r.id is null or r.status <> 'CONFIRMED')) as payments_unconfirmed,
       (select count(*) from reservation r left join payment p on p.reservation_id = r.id
        where starts_with(r.user_id, $1) and r.status = 'CONFIRMED' and p.id is null) as confirmed_unpaid`;

/** $1 here is the schedule id: seats with more than one live reservation. */
export const DOUBLE_BOOKED_SEATS = `
select count(*) as seats from (
  select seat_id from reservation
  where schedule_id = $1 and (status = 'CONFIRMED' or (status = 'HELD' and expire_time > now()))
  group by seat_id having count(*) > 1) d`;

/** $1 is the schedule id: sold seats without exactly one CONFIRMED reservation, and the reverse. */
export const SEAT_ROW_MISMATCHES = `
select count(*) as seats from seat s
where s.schedule_id = $1
  and (s.status = 'RESERVED') <> exists (select 1 from reservation r where r.seat_id = s.id and r.status = 'CONFIRMED')`;

/**
 * payment.completed outbox rows of the run's reservations. The ids go in as one array, which pins
 * the plan to outbox_aggregate_idx: the tables are young when the audit runs, their statistics
 * still say "empty", and a join (even a lateral one, which the planner flattens) was planned as a
 * nested loop over two sequential scans, quadratic in the run's events.
 */
export const RUN_PAYMENT_EVENTS = `
select o.event_id, o.aggregate_id, o.published_at is not null as published
from outbox o
where o.aggregate_type = 'reservation' and o.event_type = 'payment.completed'
  and o.aggregate_id = any (array(select id::text from reservation where starts_with(user_id, $1)))`;

/** $1 is the concert id, $2 the run start: every admission that overlapped the run, from the queue's DB copy. */
export const ACTIVE_INTERVALS = `
select (extract(epoch from admitted_at) * 1000)::float8 as from_ms,
       (extract(epoch from least(coalesce(ended_at, active_expire_at), active_expire_at)) * 1000)::float8 as to_ms
from queue_entry
where concert_id = $1 and admitted_at is not null
  and coalesce(ended_at, active_expire_at, 'infinity') >= $2`;

/**
 * Admitted-looking rows of the run's virtual users: how many carry the admission time the cap
 * check needs. The scout (user "<prefix>scout", which found the catalog) is not one of them.
 */
export const RUN_ADMISSION_ROWS = `
select count(*) filter (where admitted_at is not null) as with_admission,
       count(*) filter (where ended_at is not null) as ended,
       count(*) as tokens
from queue_entry where starts_with(user_id, $1) and user_id <> ($1 || 'scout')`;
