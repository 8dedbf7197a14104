// Finds what the virtual users will book, through the API as a client would: ListConcerts needs
// no token, but ListSchedules and ListSeats do, so a scout user queues first, reads the schedule
// and its seat map with its ACTIVE token, and leaves the queue before the crowd starts.

import { SeatStatus } from "../../gen/concert/v1/booking_pb.js";
import { QUEUE_TOKEN_HEADER } from "../queue/admission-context.js";
import { callWithRetry, type CallContext } from "./rpc-call.js";
import { joinAndWaitActive, leaveQueue, type Clients, type SeatOffer } from "./virtual-user.js";

export interface Target {
  concertId: string;
  scheduleId: string;
  totalSeats: number;
  /** Seats AVAILABLE when the scout looked. */
  seats: SeatOffer[];
}

export interface DiscoveryOptions {
  concertId?: string;
  scheduleId?: string;
  scoutUserId: string;
}

export async function discoverTarget(
  context: CallContext,
  clients: Clients,
  options: DiscoveryOptions,
): Promise<Target> {
  const concertId = options.concertId ?? (await firstConcertId(context, clients));
  const token = await joinAndWaitActive(context, clients.queue, concertId, options.scoutUserId);
  try {
    const metadata = { [QUEUE_TOKEN_HEADER]: token };
    const schedules = [];
    let pageToken = "";
    do {
      const page = await callWithRetry(
        context,
        "ListSchedules",
        (o) => clients.booking.listSchedules({ concertId, pageSize: 500, pageToken }, o),
        { metadata },
      );
      schedules.push(...page.schedules);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const schedule = options.scheduleId ? schedules.find((s) => s.id === options.scheduleId) : schedules[0];
    if (!schedule) {
      throw new Error(
        options.scheduleId
          ? `schedule ${options.scheduleId} is not a schedule of concert ${concertId}`
          : `concert ${concertId} has no schedules`,
      );
    }

    const seats: SeatOffer[] = [];
    let totalSeats = 0;
    pageToken = "";
    do {
      const page = await callWithRetry(
        context,
        "ListSeats",
        (o) => clients.booking.listSeats({ scheduleId: schedule.id, pageSize: 1000, pageToken }, o),
        { metadata },
      );
      totalSeats += page.seats.length;
      for (const seat of page.seats) {
        if (seat.status === SeatStatus.AVAILABLE)
          seats.push({ id: seat.id, priceMinor: seat.price?.amountMinor ?? 0n });
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    if (seats.length === 0)
      throw new Error(
        `schedule ${schedule.id} has no available seats (of ${totalSeats}); seed a fresh one with --seed`,
      );
    return { concertId, scheduleId: schedule.id, totalSeats, seats };
  } finally {
    await leaveQueue(context, clients.queue, token);
  }
}

async function firstConcertId(context: CallContext, clients: Clients): Promise<string> {
  const { concerts } = await callWithRetry(context, "ListConcerts", (o) =>
    clients.booking.listConcerts({ pageSize: 1 }, o),
  );
  if (!concerts[0]) throw new Error("the server lists no concerts; seed a catalog (npm run seed, or --seed)");
  return concerts[0].id;
}
