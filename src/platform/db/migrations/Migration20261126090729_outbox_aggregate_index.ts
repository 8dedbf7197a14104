import { Migration } from "@mikro-orm/migrations";

export class Migration20261126090729_outbox_aggregate_index extends Migration {
  override name = "Migration20261126090729_outbox_aggregate_index";

  override up(): void | Promise<void> {
    this.addSql(`create index "outbox_aggregate_idx" on "outbox" ("aggregate_type", "aggregate_id", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "outbox_aggregate_idx";`);
  }
}
