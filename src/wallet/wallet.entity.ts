import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Wallet = defineEntity({
  name: "Wallet",
  properties: {
    userId: p.text().primary(),
    // The CHECK backs up the domain rule: a racing debit can never overdraw.
    balanceMinor: p.bigint().default(0).check("balance_minor >= 0"),
    currencyCode: p.text().default("JPY"),
    // Optimistic lock: a flush against a stale copy throws OptimisticLockError.
    version: p.integer().version(),
    createdAt: p.datetime().defaultRaw("now()"),
    // Set by every change to the time of its ledger entry (no onUpdate hook): a replay derives
    // the wallet of its first response from that entry, update time included.
    updatedAt: p.datetime().defaultRaw("now()"),
  },
});

export type Wallet = InferEntity<typeof Wallet>;
