import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Concert = defineEntity({
  name: "Concert",
  properties: {
    id: p.uuid().primary(),
    title: p.text(),
    artist: p.text(),
    venue: p.text(),
    createdAt: p.datetime().defaultRaw("now()"),
    // AdminService.CreateConcert's idempotency key and a digest of its arguments.
    requestId: p.text().nullable().unique("concert_request_id_uq"),
    requestFingerprint: p.text().nullable(),
  },
});

export type Concert = InferEntity<typeof Concert>;
