import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/** The audit log: one row per AdminService call that changes something, or tried to. */
export const AdminAction = defineEntity({
  name: "AdminAction",
  properties: {
    // A string, as page tokens carry it and JSON has no 64-bit integers.
    id: p.bigint("string").primary().autoincrement(),
    createdAt: p.datetime().defaultRaw("now()"),
    // The name of the admin token, never its secret.
    tokenName: p.text(),
    method: p.text(),
    concertId: p.uuid().nullable(),
    // The request in the protobuf JSON mapping, with queue tokens shortened.
    request: p.json<Record<string, unknown>>(),
    // "OK" or a gRPC code name such as "FAILED_PRECONDITION".
    outcome: p.text(),
    errorReason: p.text().nullable(),
  },
  // Newest-first pages per concert scan this ascending index backwards.
  indexes: [{ name: "admin_action_concert_id_idx", properties: ["concertId", "id"] }],
});

export type AdminAction = InferEntity<typeof AdminAction>;
