import { Migration } from "@mikro-orm/migrations";

// Per-concert waiting-room settings set through AdminService (src/admin/queue-settings.entity.ts).
export class Migration20261206054000_queue_settings extends Migration {
  override name = "Migration20261206054000_queue_settings";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "queue_settings" ("concert_id" uuid not null, "max_active_users" int null, "admission_interval_ms" int null, "users_per_tick" int null, "active_ttl_seconds" int null, "waiting_ttl_seconds" int null, "admission_state" text not null default 'OPEN', "state_reason" text not null default '', "updated_at" timestamptz not null default now(), primary key ("concert_id"));`,
    );
    this.addSql(
      `alter table "queue_settings" add constraint "queue_settings_admission_state_check" check ("admission_state" in ('OPEN', 'PAUSED', 'CLOSED'));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "queue_settings" cascade;`);
  }
}
