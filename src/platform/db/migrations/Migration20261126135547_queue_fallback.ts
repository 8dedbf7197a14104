import { Migration } from "@mikro-orm/migrations";

export class Migration20261126135547_queue_fallback extends Migration {
  override name = "Migration20261126135547_queue_fallback";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "queue_fallback" ("process_id" text not null, "since" timestamptz not null, "seen_at" timestamptz not null, primary key ("process_id"));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "queue_fallback" cascade;`);
  }
}
