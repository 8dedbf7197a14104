import { Migration } from "@mikro-orm/migrations";

// The committed seed of each concert's sale-start prequeue (src/queue/prequeue-seed.entity.ts).
export class Migration20261206074500_prequeue_seed extends Migration {
  override name = "Migration20261206074500_prequeue_seed";

  override up(): void | Promise<void> {
    this.addSql(
      `create table "prequeue_seed" ("concert_id" uuid not null, "seed" text not null, "seed_sha256" text not null, "opens_at" timestamptz not null, "committed_at" timestamptz not null default now(), primary key ("concert_id"));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "prequeue_seed" cascade;`);
  }
}
