// AdminService's catalog methods: validate, call booking's catalog commands, encode.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ScheduleState as ScheduleStatePb,
  type AdminService,
  type SeatSection as SeatSectionPb,
} from "../../gen/concert/v1/admin_pb.js";
import {
  createConcert,
  createSchedule,
  listSchedulesForAdmin,
  updateConcert,
  type ConcertFields,
} from "../booking/catalog-admin.js";
import { isScheduleKey } from "../booking/catalog.js";
import { SEAT_GRADES } from "../booking/seat.entity.js";
import { updateSchedule, type ScheduleChanges } from "../booking/schedule-update.js";
import type { RefundPaidReservation } from "../booking/seat-hold.js";
import type { ORM } from "../platform/db/orm.js";
import { CURRENCY } from "../platform/money.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import type { Prequeue } from "../queue/prequeue.js";
import { check, type RequestCheck } from "../platform/validation.js";
import { concertToProto, dateOf, scheduleToProto } from "./admin-proto.js";

export const MAX_SEATS_PER_CALL = 100_000;
const MAX_SECTIONS = 100;
const MAX_ROWS = 1000;
const MAX_PRICE_MINOR = 10n ** 12n;
const SECTION_NAME = /^[A-Za-z0-9_]{1,32}$/;

export interface CatalogDeps {
  orm: ORM;
  /** The wallet's refund of a paid reservation, for cancelled schedules. */
  refund: RefundPaidReservation;
  /** A changed sale window commits the prequeue's seed at once, so its hash is published from then on. */
  queue?: { readonly prequeue: Pick<Prequeue, "describe"> };
}

function text(checker: RequestCheck, field: string, value: string): string {
  const trimmed = value.trim();
  if (trimmed === "" || trimmed.length > 200) checker.fail(field, "must be 1-200 characters");
  return trimmed;
}

/** The paths of an update mask, each one of `allowed`; at least one. */
function maskPaths(
  checker: RequestCheck,
  paths: readonly string[] | undefined,
  allowed: readonly string[],
): Set<string> {
  const given = new Set(paths ?? []);
  if (given.size === 0) checker.fail("update_mask", `must name at least one of ${allowed.join(", ")}`);
  for (const path of given) if (!allowed.includes(path)) checker.fail("update_mask", `cannot name ${path}`);
  return given;
}

function sections(checker: RequestCheck, list: readonly SeatSectionPb[]) {
  if (list.length === 0 || list.length > MAX_SECTIONS) checker.fail("sections", `must hold 1-${MAX_SECTIONS} sections`);
  const names = new Set<string>();
  let total = 0;
  const parsed = list.map((s, i) => {
    const at = `sections[${i}]`;
    if (!SECTION_NAME.test(s.name)) checker.fail(`${at}.name`, "must be 1-32 characters of A-Z a-z 0-9 _");
    else if (names.has(s.name)) checker.fail(`${at}.name`, "is used by another section");
    names.add(s.name);
    if (!(SEAT_GRADES as readonly string[]).includes(s.grade))
      checker.fail(`${at}.grade`, `must be one of ${SEAT_GRADES.join(", ")}`);
    if (s.rows < 1 || s.rows > MAX_ROWS) checker.fail(`${at}.rows`, `must be 1-${MAX_ROWS}`);
    if (s.seatsPerRow < 1 || s.seatsPerRow > MAX_ROWS) checker.fail(`${at}.seats_per_row`, `must be 1-${MAX_ROWS}`);
    const priceMinor = s.price?.amountMinor ?? 0n;
    checker.range(`${at}.price.amount_minor`, priceMinor, 1n, MAX_PRICE_MINOR);
    if (s.price && s.price.currencyCode !== "" && s.price.currencyCode !== CURRENCY)
      checker.fail(`${at}.price.currency_code`, `must be empty or ${CURRENCY}`);
    total += Math.max(s.rows, 0) * Math.max(s.seatsPerRow, 0);
    return { name: s.name, grade: s.grade, rows: s.rows, seatsPerRow: s.seatsPerRow, priceMinor };
  });
  if (total > MAX_SEATS_PER_CALL) checker.fail("sections", `hold ${total} seats; at most ${MAX_SEATS_PER_CALL}`);
  return parsed;
}

function saleWindow(checker: RequestCheck, opens: Timestamp | undefined, closes: Timestamp | undefined) {
  const saleOpensAt = dateOf(opens);
  const saleClosesAt = dateOf(closes);
  if (saleOpensAt && saleClosesAt && saleOpensAt >= saleClosesAt)
    checker.fail("sale_closes_at", "must be after sale_opens_at");
  return { saleOpensAt, saleClosesAt };
}

export function createCatalogHandlers({ orm, refund, queue }: CatalogDeps): PartialServiceImpl<typeof AdminService> {
  // The change is made: a failure here only delays the seed to the next read of the prequeue
  // (a join, GetQueueSettings), which commits it as well.
  const commitPrequeue = (concertId: string) => queue?.prequeue.describe(concertId).catch(() => undefined);
  return {
    async createConcert(request) {
      const checker = check().key("request_id", request.requestId);
      const fields: ConcertFields = {
        title: text(checker, "title", request.title),
        artist: text(checker, "artist", request.artist),
        venue: text(checker, "venue", request.venue),
      };
      checker.throwIfInvalid();
      return { concert: concertToProto(await createConcert(orm, fields, request.requestId)) };
    },

    async updateConcert(request) {
      const concert = request.concert;
      const checker = check().uuid("concert.id", concert?.id ?? "");
      const paths = maskPaths(checker, request.updateMask?.paths, ["title", "artist", "venue"]);
      const fields: Partial<ConcertFields> = {};
      for (const path of ["title", "artist", "venue"] as const)
        if (paths.has(path)) fields[path] = text(checker, `concert.${path}`, concert?.[path] ?? "");
      checker.throwIfInvalid();
      return { concert: concertToProto(await updateConcert(orm, concert!.id, fields)) };
    },

    async createSchedule(request) {
      const checker = check().uuid("concert_id", request.concertId).key("request_id", request.requestId);
      const startsAt = dateOf(request.startsAt);
      if (!startsAt) checker.fail("starts_at", "required");
      const window = saleWindow(checker, request.saleOpensAt, request.saleClosesAt);
      const seatMap = sections(checker, request.sections);
      checker.throwIfInvalid();
      const created = await createSchedule(orm, {
        concertId: request.concertId,
        startsAt: startsAt!,
        ...window,
        sections: seatMap,
        draft: request.draft,
        requestId: request.requestId,
      });
      await commitPrequeue(request.concertId);
      return { schedule: scheduleToProto(created) };
    },

    async updateSchedule(request) {
      const checker = check().uuid("schedule_id", request.scheduleId);
      const paths = maskPaths(checker, request.updateMask?.paths, ["sale_opens_at", "sale_closes_at", "state"]);
      const changes: ScheduleChanges = {};
      if (paths.has("sale_opens_at")) changes.saleOpensAt = dateOf(request.saleOpensAt) ?? null;
      if (paths.has("sale_closes_at")) changes.saleClosesAt = dateOf(request.saleClosesAt) ?? null;
      if (paths.has("state")) {
        const state = ScheduleStatePb[request.state];
        if (request.state === ScheduleStatePb.UNSPECIFIED || state === undefined)
          checker.fail("state", "must be DRAFT, PUBLISHED or CANCELLED");
        else changes.state = state as ScheduleChanges["state"];
      }
      checker.throwIfInvalid();
      const updated = await updateSchedule(orm, request.scheduleId, changes, refund);
      await commitPrequeue(updated.schedule.concertId);
      return { schedule: scheduleToProto(updated), refundedSeats: BigInt(updated.refundedSeats) };
    },

    async listSchedules(request) {
      const checker = check().uuid("concert_id", request.concertId);
      const filter = `admin-schedules:${request.concertId}`;
      const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isScheduleKey });
      checker.throwIfInvalid();
      const { items, hasMore } = await listSchedulesForAdmin(orm, request.concertId, page);
      const last = items.at(-1)?.schedule;
      return {
        schedules: items.map(scheduleToProto),
        nextPageToken: hasMore && last ? encodePageToken(filter, [last.startTime.toISOString(), last.id]) : "",
      };
    },
  };
}
