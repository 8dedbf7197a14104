// A concert's waiting room in numbers, read from PostgreSQL, which holds every queue entry (joins
// before they are acknowledged, admissions and ends within the admission tick that made them),
// every hold and every payment. Rates count the last minute. Abandonments are entries that ended
// without being admitted (a user who left counts too); expiries are admitted entries that ended
// when their active time ran out (not by paying or leaving).

import type { ORM } from "../platform/db/orm.js";

export interface QueueCounts {
  waiting: number;
  active: number;
  admissionsPerMinute: number;
  joinsPerMinute: number;
  abandonmentsPerMinute: number;
  expiriesPerMinute: number;
  holdsPerMinute: number;
  paymentsPerMinute: number;
  observedAt: Date;
}

const COUNTS = `
  with q as (select * from queue_entry where concert_id = ?), at as (select now() as now, now() - interval '1 minute' as since)
  select at.now as observed_at,
    (select count(*) from q where state = 'WAITING') as waiting,
    (select count(*) from q, at where state = 'ACTIVE' and active_expire_at > at.now) as active,
    (select count(*) from q, at where admitted_at > at.since) as admissions,
    (select count(*) from q, at where joined_at > at.since) as joins,
    (select count(*) from q, at where ended_at > at.since and admitted_at is null) as abandonments,
    (select count(*) from q, at where ended_at > at.since and admitted_at is not null and ended_at >= active_expire_at) as expiries,
    (select count(*) from reservation r join schedule s on s.id = r.schedule_id, at
      where s.concert_id = ? and r.created_at > at.since) as holds,
    (select count(*) from payment p join reservation r on r.id = p.reservation_id join schedule s on s.id = r.schedule_id, at
      where s.concert_id = ? and p.created_at > at.since) as payments
  from at`;

interface CountsRow {
  observed_at: Date | string;
  waiting: string;
  active: string;
  admissions: string;
  joins: string;
  abandonments: string;
  expiries: string;
  holds: string;
  payments: string;
}

export async function readQueueCounts(orm: ORM, concertId: string): Promise<QueueCounts> {
  const [row] = await orm.em.fork().execute<CountsRow[]>(COUNTS, [concertId, concertId, concertId]);
  return {
    waiting: Number(row!.waiting),
    active: Number(row!.active),
    admissionsPerMinute: Number(row!.admissions),
    joinsPerMinute: Number(row!.joins),
    abandonmentsPerMinute: Number(row!.abandonments),
    expiriesPerMinute: Number(row!.expiries),
    holdsPerMinute: Number(row!.holds),
    paymentsPerMinute: Number(row!.payments),
    observedAt: new Date(row!.observed_at),
  };
}
