import { Migration } from "@mikro-orm/migrations";

// The admission step counts each concert's ends of the last few seconds at every tick
// (pg-admission.ts): without this it read every ended row of the concert.
export class Migration20261207120000_queue_entry_ended_index extends Migration {
  override name = "Migration20261207120000_queue_entry_ended_index";

  override up(): void | Promise<void> {
    this.addSql(`create index "queue_entry_concert_ended_idx" on "queue_entry" ("concert_id", "ended_at");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "queue_entry_concert_ended_idx";`);
  }
}
