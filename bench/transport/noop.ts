// The no-op contract every transport under test serves: BookingService.ListConcerts answers a
// constant page, QueueService.WatchQueue streams constant statuses. The request token picks the
// stream's shape: "burst:N" sends N messages and ends, "idle:MS" sends one status and then a
// heartbeat every MS milliseconds until the client cancels (a waiting-room client at rest).
// Handlers return plain init objects, as the real handlers do, so each transport pays its own
// conversion cost.

export const CONCERT = {
  id: "6f1ed002-ab5d-4a4f-b4a8-2bf5d1a1c6a7",
  title: "Midnight Neon Tour",
  artist: "The Paper Lanterns",
  venue: "Tokyo Garden Arena",
};

/** ListConcerts request used by every load generator (also written to the h2load body file). */
export const LIST_CONCERTS_REQUEST = { pageSize: 20, pageToken: "" };

export const LIST_CONCERTS_RESPONSE = { concerts: [CONCERT], nextPageToken: "" };

export const QUEUE_STATUS = {
  token: "5f0c3c0e8d3b4b8f9a1e2d3c4b5a6978",
  concertId: CONCERT.id,
  userId: "bench-user",
  state: 1, // QUEUE_STATE_WAITING
  position: 1234n,
  usersAhead: 1233n,
  totalWaiting: 5000n,
};

export type StreamPlan = { kind: "burst"; messages: number } | { kind: "idle"; heartbeatMs: number };

export function parseStreamPlan(token: string): StreamPlan {
  const [kind, value] = token.split(":");
  const n = Number(value);
  if (kind === "burst" && Number.isSafeInteger(n) && n > 0) return { kind, messages: n };
  if (kind === "idle" && Number.isSafeInteger(n) && n > 0) return { kind, heartbeatMs: n };
  throw new Error(`bench stream token must be burst:N or idle:MS, got "${token}"`);
}
