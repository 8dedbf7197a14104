import { Migration } from "@mikro-orm/migrations";

// AdminService's catalog: schedules get a state and a sale window (existing ones stay PUBLISHED,
// always on sale), the seat map they were created with, and the creates' idempotency keys.
export class Migration20261206051500_admin_catalog extends Migration {
  override name = "Migration20261206051500_admin_catalog";

  override up(): void | Promise<void> {
    this.addSql(`alter table "concert" add "request_id" text null, add "request_fingerprint" text null;`);
    this.addSql(`alter table "concert" add constraint "concert_request_id_uq" unique ("request_id");`);
    this.addSql(
      `alter table "schedule" add "state" text not null default 'PUBLISHED', add "sale_opens_at" timestamptz null, add "sale_closes_at" timestamptz null, add "sections" jsonb null, add "request_id" text null, add "request_fingerprint" text null, add "created_at" timestamptz not null default now();`,
    );
    this.addSql(`alter table "schedule" add constraint "schedule_request_id_uq" unique ("request_id");`);
    this.addSql(
      `alter table "schedule" add constraint "schedule_state_check" check ("state" in ('DRAFT', 'PUBLISHED', 'CANCELLED'));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "concert" drop constraint "concert_request_id_uq";`);
    this.addSql(`alter table "concert" drop column "request_id", drop column "request_fingerprint";`);
    this.addSql(`alter table "schedule" drop constraint "schedule_request_id_uq";`);
    this.addSql(`alter table "schedule" drop constraint "schedule_state_check";`);
    this.addSql(
      `alter table "schedule" drop column "state", drop column "sale_opens_at", drop column "sale_closes_at", drop column "sections", drop column "request_id", drop column "request_fingerprint", drop column "created_at";`,
    );
  }
}
