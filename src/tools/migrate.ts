import { ENTITIES } from "../entities.js";
import { closeORM, initORM, migrateUp } from "../platform/db/orm.js";
import { databaseUrlFor } from "./database-url.js";

const databaseUrl = databaseUrlFor("migrate");
const { orm } = await initORM({ databaseUrl, entities: ENTITIES, poolMax: 1 });
try {
  const applied = await migrateUp(orm);
  console.log(applied.length > 0 ? `migrate: applied ${applied.join(", ")}` : "migrate: schema is up to date");
} finally {
  await closeORM(orm);
}
