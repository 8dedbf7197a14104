import { Migration } from "@mikro-orm/migrations";

// The audit log of AdminService (src/admin/admin-action.entity.ts).
export class Migration20261206053000_admin_action extends Migration {
  override name = "Migration20261206053000_admin_action";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "admin_action" ("id" bigserial primary key, "created_at" timestamptz not null default now(), "token_name" text not null, "method" text not null, "concert_id" uuid null, "request" jsonb not null, "outcome" text not null, "error_reason" text null);`,
    );
    this.addSql(`create index "admin_action_concert_id_idx" on "admin_action" ("concert_id", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "admin_action" cascade;`);
  }
}
