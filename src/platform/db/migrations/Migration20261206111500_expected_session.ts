import { Migration } from "@mikro-orm/migrations";

// A concert's own expected session, the wait estimate's prior (src/queue/wait-estimate.ts); null: EXPECTED_SESSION_SECONDS.
export class Migration20261206111500_expected_session extends Migration {
  override name = "Migration20261206111500_expected_session";

  override up(): void | Promise<void> {
    this.addSql(`alter table "queue_settings" add column "expected_session_seconds" int null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "queue_settings" drop column "expected_session_seconds";`);
  }
}
