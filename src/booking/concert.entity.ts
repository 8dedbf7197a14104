import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Concert = defineEntity({
  name: "Concert",
  properties: {
    id: p.uuid().primary(),
    title: p.text(),
    artist: p.text(),
    venue: p.text(),
    createdAt: p.datetime().defaultRaw("now()"),
  },
});

export type Concert = InferEntity<typeof Concert>;
