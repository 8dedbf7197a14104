import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Payment = defineEntity({
  name: "Payment",
  properties: {
    id: p.uuid().primary(),
    // One payment per reservation, however many times the client retries.
    reservationId: p.uuid().unique("payment_reservation_uq"),
    userId: p.text(),
    amountMinor: p.bigint(),
    idempotencyKey: p.text(),
    createdAt: p.datetime().defaultRaw("now()"),
  },
  uniques: [{ name: "payment_user_idempotency_uq", properties: ["userId", "idempotencyKey"] }],
});

export type Payment = InferEntity<typeof Payment>;
