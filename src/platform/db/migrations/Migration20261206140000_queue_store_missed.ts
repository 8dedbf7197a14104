import { Migration } from "@mikro-orm/migrations";

// The tokens Redis misses (src/queue/queue-store.ts), in place of the row saying which store serves.
export class Migration20261206140000_queue_store_missed extends Migration {
  override name = "Migration20261206140000_queue_store_missed";

  override up(): void | Promise<void> {
    this.addSql(`create table "queue_missed" ("token" text not null, primary key ("token"));`);
    this.addSql(`drop table if exists "queue_store" cascade;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "queue_missed" cascade;`);
    this.addSql(
      `create table "queue_store" ("id" int not null, "store" text not null default 'redis', "cut_off_at" timestamptz null, "cut_off_by" text null, primary key ("id"));`,
    );
    this.addSql(`insert into "queue_store" ("id") values (1);`);
  }
}
