import { closeORM, initORM, migrateUp } from '../platform/db/orm.js';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const { orm } = await initORM({ databaseUrl, poolMax: 1 });
try {
  const applied = await migrateUp(orm);
  console.log(applied.length > 0 ? `migrate: applied ${applied.join(', ')}` : 'migrate: schema is up to date');
} finally {
  await closeORM(orm);
}
