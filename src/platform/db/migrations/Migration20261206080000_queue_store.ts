import { Migration } from "@mikro-orm/migrations";

// One row saying which store serves the waiting room (src/queue/queue-store.ts), in place of a
// mark per process in fallback.
export class Migration20261206080000_queue_store extends Migration {
  override name = "Migration20261206080000_queue_store";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "queue_store" ("id" int not null, "store" text not null default 'redis', "cut_off_at" timestamptz null, "cut_off_by" text null, primary key ("id"));`,
    );
    this.addSql(`insert into "queue_store" ("id") values (1);`);
    this.addSql(`drop table if exists "queue_fallback" cascade;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "queue_store" cascade;`);
    this.addSql(
      `create table "queue_fallback" ("process_id" text not null, "since" timestamptz not null, "seen_at" timestamptz not null, "following" boolean not null default false, primary key ("process_id"));`,
    );
  }
}
