import { join } from 'node:path';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { Concert } from '../../booking/concert.entity.js';
import { Reservation } from '../../booking/reservation.entity.js';
import { Schedule } from '../../booking/schedule.entity.js';
import { Seat } from '../../booking/seat.entity.js';
import { QueueEntry } from '../../queue/queue-entry.entity.js';
import { LedgerEntry } from '../../wallet/ledger-entry.entity.js';
import { Payment } from '../../wallet/payment.entity.js';
import { Wallet } from '../../wallet/wallet.entity.js';
import { Outbox } from './outbox.entity.js';

export type ORM = MikroORM;

export const ENTITIES = [Concert, Schedule, Seat, Reservation, Wallet, LedgerEntry, Payment, QueueEntry, Outbox];

/** Absolute, so tools and tests find the migrations whatever the working directory. */
export const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export interface OrmOptions {
  databaseUrl: string;
  poolMax: number;
  debug?: boolean;
}

export async function initORM(options: OrmOptions): Promise<{ orm: MikroORM; em: EntityManager }> {
  const orm = await MikroORM.init({
    clientUrl: options.databaseUrl,
    entities: ENTITIES,
    extensions: [Migrator],
    // MikroORM's default pool max is 10, too few for the booking hot path.
    pool: { max: options.poolMax },
    debug: options.debug ?? false,
    // Creating databases is the operator's job, not the application's.
    ensureDatabase: false,
    migrations: {
      // The same folder for both: everything runs from source under tsx, nothing is compiled.
      path: MIGRATIONS_DIR,
      pathTs: MIGRATIONS_DIR,
      glob: '!(*.d).{js,ts}',
      emit: 'ts',
      // Snapshot files are named after the database and would litter src/ for every test database.
      snapshot: false,
      // The application logs applied migrations itself.
      silent: true,
    },
  });
  return { orm, em: orm.em };
}

/** Applies pending migrations, all in one transaction, and returns the names applied. */
export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((migration) => migration.name);
}

export async function closeORM(orm: MikroORM): Promise<void> {
  await orm.close(true);
}
