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
    updatedAt: p
      .datetime()
      .defaultRaw("now()")
      .onUpdate(() => new Date()),
  },
});

export type Wallet = InferEntity<typeof Wallet>;
