// Every RPC method declares its queue-token requirement beside its handler; start-up binds each
// service's table and refuses one that leaves a method undeclared, so no method is served
// unguarded by omission.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { bindMethodTable, type MethodTable } from "../../src/platform/rpc/method-table.js";

const answer = async () => ({});

/** A BookingService table with every method declared; tests take declarations away from it. */
function completeTable(): Record<string, { token?: string; handle: unknown }> {
  return {
    listConcerts: { token: "none", handle: answer },
    listSchedules: { token: "active", handle: answer },
    listSeats: { token: "active", handle: answer },
    reserveSeat: { token: "active", handle: answer },
    getReservation: { token: "active", handle: answer },
    cancelReservation: { token: "active-or-used", handle: answer },
  };
}

const bind = (table: Record<string, unknown>) =>
  bindMethodTable(BookingService, table as unknown as MethodTable<typeof BookingService>);

test("a complete table binds, and each method answers with its declared requirement", (t) => {
  const bound = bind(completeTable());
  const byName = Object.fromEntries(BookingService.methods.map((m) => [m.name, bound.tokenOf(m)]));
  t.deepEqual(byName, {
    ListConcerts: "none",
    ListSchedules: "active",
    ListSeats: "active",
    ReserveSeat: "active",
    GetReservation: "active",
    CancelReservation: "active-or-used",
  });
  t.is(bound.impl.listConcerts, answer);
});

test("a service whose method has no entry fails start-up, naming the method", (t) => {
  const table = completeTable();
  delete table.cancelReservation;
  const error = t.throws(() => bind(table));
  t.regex(error.message, /^concert\.v1\.BookingService\.CancelReservation declares no queue-token requirement/);
});

test("an entry with a handler but no requirement, or an unknown one, fails start-up", (t) => {
  const silent = completeTable();
  delete silent.listSeats!.token;
  t.regex(t.throws(() => bind(silent)).message, /BookingService\.ListSeats declares no queue-token requirement/);
  const misspelt = completeTable();
  misspelt.reserveSeat!.token = "activ";
  t.regex(t.throws(() => bind(misspelt)).message, /BookingService\.ReserveSeat declares no queue-token requirement/);
});

test("an entry without a handler, or for a method the service lacks, fails start-up", (t) => {
  const handless = completeTable();
  handless.getReservation = { token: "active", handle: undefined };
  t.regex(t.throws(() => bind(handless)).message, /BookingService\.GetReservation has no handler/);
  t.regex(
    t.throws(() => bind({ ...completeTable(), refundSeat: { token: "none", handle: answer } })).message,
    /BookingService has no method refundSeat/,
  );
});
