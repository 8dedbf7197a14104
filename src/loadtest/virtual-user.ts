// One simulated user, as the LoadTest5 scenario describes it: JoinQueue, WatchQueue until ACTIVE
// (resuming the stream after a dropped connection), TopUp enough for one seat, ReserveSeat on a
// random seat, PayReservation with the token in metadata. The server releases the token after
// payment; a user who got no seat gives the slot back with LeaveQueue.

import { ConnectError } from "@connectrpc/connect";
import type { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueState, type QueueService, type QueueStatus } from "../../gen/concert/v1/queue_pb.js";
import { LedgerEntryKind, type WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { QUEUE_TOKEN_HEADER } from "../queue/admission-context.js";
import { onAbort } from "../platform/abort-listeners.js";
import type { GrpcClient } from "../platform/rpc/grpc-client.js";
import {
  backoffMs,
  callWithRetry,
  errorReason,
  isTransient,
  recordError,
  sleep,
  type CallContext,
} from "./rpc-call.js";
import { increment } from "./run-stats.js";
import type { ToldWait } from "./wait-accuracy.js";

export interface Clients {
  queue: GrpcClient<typeof QueueService>;
  booking: GrpcClient<typeof BookingService>;
  wallet: GrpcClient<typeof WalletService>;
}

export interface SeatOffer {
  id: string;
  priceMinor: bigint;
}

export type SeatPick = "random-once" | "retry-another-seat";

export interface UserPlan {
  concertId: string;
  scheduleId: string;
  /** Seats that were available when the run started. */
  seats: readonly SeatOffer[];
  /** Enough for the dearest seat in `seats`. */
  topUpMinor: bigint;
  seatPick: SeatPick;
  /** Further seats tried after a collision with retry-another-seat. */
  seatRetries: number;
}

export type UserOutcome = "paid" | "lost" | "failed";

/** A stream that says nothing for this long is presumed dead (the server heartbeats at least every 5 s). */
const STREAM_STALL_MS = 15_000;
const MAX_STREAM_RESUMES = 30;
const MAX_REJOINS = 3;

class TokenExpiredError extends Error {
  override name = "TokenExpiredError";
}

/** The wait a WAITING status tells, as its user receives it (undefined when the server says it is unknown). */
function toldWait(status: QueueStatus | undefined): ToldWait {
  const wait = status?.waitTimeKnown ? status.estimatedWait : undefined;
  return {
    atMs: performance.now(),
    waitMs: wait === undefined ? undefined : Number(wait.seconds) * 1000 + wait.nanos / 1e6,
  };
}

/** Joins the queue and resolves with the token once it is ACTIVE; rejoins if it expires while waiting. */
export async function joinAndWaitActive(
  context: CallContext,
  queue: Clients["queue"],
  concertId: string,
  userId: string,
  /** Called with every token JoinQueue hands out; `first` is false for rejoins. */
  onJoined: (token: string, first: boolean) => void = () => {},
): Promise<string> {
  for (let rejoin = 0; ; rejoin++) {
    const joinedAt = performance.now();
    const { token, status } = await callWithRetry(context, "JoinQueue", (o) =>
      queue.joinQueue({ concertId, userId }, o),
    );
    onJoined(token, rejoin === 0);
    try {
      if (status?.state !== QueueState.ACTIVE) {
        const told = [toldWait(status)];
        const activeAt = await watchUntilActive(context, queue, token, told);
        context.stats.waitAccuracy.record(told, activeAt, token);
      }
      context.stats.latency.record("queue wait (join to ACTIVE)", performance.now() - joinedAt);
      return token;
    } catch (error) {
      if (!(error instanceof TokenExpiredError) || rejoin >= MAX_REJOINS) throw error;
      context.stats.counts.rejoins++;
    }
  }
}

/** Watches until ACTIVE and returns when it arrived (performance.now()); every WAITING message goes into `told`. */
async function watchUntilActive(
  context: CallContext,
  queue: Clients["queue"],
  token: string,
  told: ToldWait[],
): Promise<number> {
  const { stats, signal } = context;
  let activeAt = 0;
  for (let resume = 0; ; resume++) {
    const stall = new AbortController();
    const timer = setTimeout(() => stall.abort(), STREAM_STALL_MS);
    // Rather than AbortSignal.any, which links every stream's signal into the run-wide one.
    const forget = onAbort(signal, () => stall.abort());
    const opened = performance.now();
    let first = true;
    try {
      // Read to the end: the server ends the stream right after ACTIVE or EXPIRED. Leaving the
      // loop at ACTIVE instead would cancel the call, and a cancelled grpc-js call builds an error
      // with a source-mapped stack trace, which shows in the generator's CPU profile.
      for await (const message of queue.watchQueue({ token }, { signal: stall.signal })) {
        timer.refresh();
        if (first) stats.latency.record("WatchQueue first message", performance.now() - opened);
        first = false;
        if (message.status?.state === QueueState.WAITING) told.push(toldWait(message.status));
        if (message.status?.state === QueueState.ACTIVE) activeAt ||= performance.now();
        if (message.status?.state === QueueState.EXPIRED)
          throw new TokenExpiredError(`token ${token} expired while waiting`);
      }
      if (activeAt > 0) return activeAt;
    } catch (thrown) {
      // The stream broke after ACTIVE arrived: the user is admitted all the same.
      if (activeAt > 0 && !signal.aborted) return activeAt;
      if (thrown instanceof TokenExpiredError || signal.aborted) throw thrown;
      const error = ConnectError.from(thrown);
      recordError(stats, "WatchQueue", error);
      if (!stall.signal.aborted && !isTransient(error)) throw error;
    } finally {
      clearTimeout(timer);
      forget();
    }
    // The stream ended or broke before a terminal message: resume with the same token.
    if (resume >= MAX_STREAM_RESUMES) throw new ConnectError(`WatchQueue gave up after ${resume} resumes`);
    stats.counts.reconnects++;
    await sleep(backoffMs(Math.min(resume, 4)), signal);
  }
}

/** Gives the place or slot back; failures are counted but do not change the user's outcome. */
export async function leaveQueue(context: CallContext, queue: Clients["queue"], token: string): Promise<void> {
  await callWithRetry(context, "LeaveQueue", (o) => queue.leaveQueue({ token }, o)).catch(() => {});
}

/** The amount of the user's PAYMENT ledger entry for the reservation, if there is one. */
async function paymentInLedger(
  context: CallContext,
  clients: Clients,
  userId: string,
  reservationId: string,
): Promise<bigint | undefined> {
  try {
    const { entries } = await callWithRetry(context, "ListTransactions", (o) =>
      clients.wallet.listTransactions({ userId, pageSize: 20 }, o),
    );
    const entry = entries.find((e) => e.kind === LedgerEntryKind.PAYMENT && e.reservationId === reservationId);
    return entry ? -(entry.amount?.amountMinor ?? 0n) : undefined;
  } catch {
    return undefined;
  }
}

function pickSeat(seats: readonly SeatOffer[], tried: Set<number>): SeatOffer | undefined {
  if (tried.size >= seats.length) return undefined;
  let index: number;
  do index = Math.floor(Math.random() * seats.length);
  while (tried.has(index));
  tried.add(index);
  return seats[index];
}

/** Runs one user to the end and reports how it ended; never throws. */
export async function runVirtualUser(
  context: CallContext,
  clients: Clients,
  plan: UserPlan,
  userId: string,
): Promise<UserOutcome> {
  const { counts } = context.stats;
  let stage = "JoinQueue";
  // The latest token and the gauge this user counts in; an object, so the updates the join
  // callback makes are visible to the code below.
  const user: { token?: string; place: "none" | "waiting" | "active" } = { place: "none" };
  // Epoch ms: when ACTIVE arrived, and when the last call the token guard accepted was sent.
  let activatedAt = 0;
  let lastGuardedAt = 0;
  const userStarted = performance.now();
  counts.started++;
  context.stats.waitAccuracy.markStart(userStarted);
  // When the generator got to this user: the burst's own spread, which "from burst" below includes.
  if (context.burstStartedAt !== undefined)
    context.stats.latency.record("user started (from burst)", userStarted - context.burstStartedAt);
  try {
    await joinAndWaitActive(context, clients.queue, plan.concertId, userId, (issued, first) => {
      user.token = issued;
      if (!first) return;
      // From the user's arrival, retries included: what a crowd's member waits for an answer.
      context.stats.latency.record("join answered (from arrival)", performance.now() - userStarted);
      // Its max is how long the whole crowd waited for its last answer, the generator's sending included.
      if (context.burstStartedAt !== undefined)
        context.stats.latency.record("join answered (from burst)", performance.now() - context.burstStartedAt);
      counts.joined++;
      counts.waiting++;
      user.place = "waiting";
      stage = "WatchQueue";
    });
    counts.waiting--;
    counts.active++;
    counts.activated++;
    user.place = "active";
    activatedAt = Date.now();
    const token = user.token!;
    const withToken = { metadata: { [QUEUE_TOKEN_HEADER]: token }, mutation: true };

    stage = "TopUp";
    const amount = { amountMinor: plan.topUpMinor };
    await callWithRetry(
      context,
      "TopUp",
      (o) => clients.wallet.topUp({ userId, amount, idempotencyKey: `${userId}:top-up` }, o),
      { mutation: true },
    );
    counts.toppedUp++;
    context.stats.toppedUpMinor += plan.topUpMinor;

    stage = "ReserveSeat";
    const tried = new Set<number>();
    const attempts = plan.seatPick === "random-once" ? 1 : 1 + plan.seatRetries;
    let reservationId: string | undefined;
    for (let attempt = 0; attempt < attempts && !reservationId; attempt++) {
      const seat = pickSeat(plan.seats, tried);
      if (!seat) break;
      const request = { scheduleId: plan.scheduleId, seatId: seat.id, userId, requestId: `${userId}:hold:${attempt}` };
      const sentAt = Date.now();
      try {
        const { reservation } = await callWithRetry(
          context,
          "ReserveSeat",
          (o) => clients.booking.reserveSeat(request, o),
          withToken,
        );
        reservationId = reservation?.id;
      } catch (error) {
        if (!(error instanceof ConnectError) || errorReason(error) !== "SEAT_UNAVAILABLE") throw error;
        counts.collisions++;
      }
      lastGuardedAt = sentAt;
    }
    if (!reservationId) {
      counts.lost++;
      await leaveQueue(context, clients.queue, token);
      return "lost";
    }
    counts.held++;

    stage = "PayReservation";
    const paySentAt = Date.now();
    let paidMinor: bigint;
    try {
      const paid = await callWithRetry(
        context,
        "PayReservation",
        (o) => clients.wallet.payReservation({ reservationId, userId, idempotencyKey: `${userId}:pay` }, o),
        withToken,
      );
      paidMinor = paid.payment?.amount?.amountMinor ?? 0n;
    } catch (error) {
      // An attempt whose answer was lost may have paid and released the token, so the retry is
      // refused by the token guard: the ledger (no token needed) tells what happened.
      const fromLedger = await paymentInLedger(context, clients, userId, reservationId);
      if (fromLedger === undefined) throw error;
      counts.paidPerLedger++;
      paidMinor = fromLedger;
    }
    lastGuardedAt = paySentAt;
    counts.paid++;
    context.stats.paidMinor += paidMinor;
    return "paid";
  } catch {
    counts.failed++;
    increment(context.stats.failuresByStage, context.signal.aborted ? `${stage} (run timed out)` : stage);
    if (user.token && !context.signal.aborted) await leaveQueue(context, clients.queue, user.token);
    return "failed";
  } finally {
    if (user.place === "waiting") counts.waiting--;
    if (user.place === "active") counts.active--;
    counts.finished++;
    if (activatedAt > 0 && lastGuardedAt >= activatedAt)
      context.stats.activeSpans.push({ from_ms: activatedAt, to_ms: lastGuardedAt });
    // What EXPECTED_SESSION_SECONDS, the wait estimate's prior, stands for (less the time to hear of ACTIVE).
    if (activatedAt > 0 && !context.signal.aborted)
      context.stats.latency.record("session (ACTIVE to done)", Date.now() - activatedAt);
    context.stats.latency.record("user total", performance.now() - userStarted);
  }
}
