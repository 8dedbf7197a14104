import { Migration } from "@mikro-orm/migrations";

export class Migration20261126183000_queue_fallback_following extends Migration {
  override name = "Migration20261126183000_queue_fallback_following";

  override up(): void | Promise<void> {
    this.addSql(`alter table "queue_fallback" add column "following" boolean not null default false;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "queue_fallback" drop column "following";`);
  }
}
