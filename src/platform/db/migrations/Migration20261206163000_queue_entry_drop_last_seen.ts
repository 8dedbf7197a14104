import { Migration } from "@mikro-orm/migrations";

// queue_entry.last_seen_at: written at every join, read by nothing (Redis keeps who was seen
// when). Processes of the previous version still insert it: stop them before this runs.
export class Migration20261206163000_queue_entry_drop_last_seen extends Migration {
  override name = "Migration20261206163000_queue_entry_drop_last_seen";

  override up(): void | Promise<void> {
    this.addSql(`alter table "queue_entry" drop column "last_seen_at";`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "queue_entry" add column "last_seen_at" timestamptz not null default now();`);
    this.addSql(`alter table "queue_entry" alter column "last_seen_at" drop default;`);
  }
}
