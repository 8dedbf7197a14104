import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const LEDGER_KINDS = ["TOP_UP", "PAYMENT", "REFUND"] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

export const LedgerEntry = defineEntity({
  name: "LedgerEntry",
  properties: {
    // Exposed as a string: page tokens carry it and JSON has no 64-bit integers.
    id: p.bigint("string").primary().autoincrement(),
    userId: p.text(),
    kind: p.enum(LEDGER_KINDS),
    // Signed: debits are negative, so SUM(amount_minor) reproduces the balance.
    amountMinor: p.bigint(),
    balanceAfterMinor: p.bigint(),
    idempotencyKey: p.text(),
    // Detects an idempotency key reused with different arguments.
    requestFingerprint: p.text(),
    reservationId: p.uuid().nullable(),
    createdAt: p.datetime().defaultRaw("now()"),
  },
  uniques: [{ name: "ledger_entry_idempotency_uq", properties: ["userId", "kind", "idempotencyKey"] }],
  // Newest-first pages scan this ascending index backwards, which PostgreSQL does as fast as a DESC
  // index. Declaring `id DESC` instead makes MikroORM 7.2.1 report a schema diff forever: its index
  // introspection matches the column "id" inside "user_id" and loses the sort order.
  indexes: [{ name: "ledger_entry_user_id_idx", properties: ["userId", "id"] }],
});

export type LedgerEntry = InferEntity<typeof LedgerEntry>;
