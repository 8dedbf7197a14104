// Every ghz config in ghz-bench/configs must run against the current contract: its call names a
// method of proto/, its data names fields of that method's request message (checked against the
// generated descriptors in gen/), its placeholders are ones prepare.ts fills and its template
// actions are ones ghz knows. ghz itself is not needed.

import type { DescMessage, DescService } from "@bufbuild/protobuf";
import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import {
  fillConfig,
  loadGhzConfigs,
  placeholdersOf,
  ROW_PLACEHOLDERS,
  SCALAR_PLACEHOLDERS,
  TEMPLATE_ACTION,
  templateActionsOf,
  type GhzConfig,
  type Scalars,
} from "../../ghz-bench/ghz-config.js";

const ROOT = new URL("../../", import.meta.url);
const SERVICES: DescService[] = [QueueService, BookingService, WalletService];
const configs = loadGhzConfigs();

function methodOf(call: string) {
  const match = /^([\w.]+)[./](\w+)$/.exec(call);
  if (!match) return undefined;
  const [, serviceName, methodName] = match;
  const service = SERVICES.find((s) => s.typeName === serviceName);
  return service?.methods.find((m) => m.name === methodName);
}

/** Field paths in `data` that the message does not have (proto or JSON names, as ghz accepts). */
function unknownFields(message: DescMessage, data: Record<string, unknown>, path = ""): string[] {
  return Object.entries(data).flatMap(([key, value]) => {
    const field = message.fields.find((f) => f.name === key || f.jsonName === key);
    if (!field) return [`${path}${key}`];
    if (field.fieldKind === "message" && value !== null && typeof value === "object") {
      return unknownFields(field.message, value as Record<string, unknown>, `${path}${key}.`);
    }
    return [];
  });
}

test("there is a config for each benchmarked call", (t) => {
  const calls = configs.map(({ config }) => config.call.split(/[./]/).at(-1)).sort();
  t.deepEqual(calls, ["GetQueueStatus", "JoinQueue", "ListSeats", "PayReservation", "ReserveSeat", "TopUp"]);
});

for (const { file, config } of configs) {
  test(`${file}: has the keys ghz needs and the files it names exist`, (t) => {
    for (const key of ["call", "host", "proto", "import-paths", "concurrency", "data"] as const)
      t.truthy(config[key], `missing "${key}"`);
    t.is(config.insecure, true, "the server speaks h2c: insecure must be true");
    t.true(config.total !== undefined || config.duration !== undefined, 'needs "total" or "duration"');
    if (config.duration !== undefined) t.regex(config.duration, /^\d+(ms|s|m)$/);
    t.true(Number.isInteger(config.concurrency) && config.concurrency > 0);
    t.true(existsSync(new URL(config.proto!, ROOT)), `${config.proto} does not exist`);
    for (const dir of config["import-paths"]!)
      t.true(existsSync(new URL(`${dir}/`, ROOT)), `import path ${dir} does not exist`);
  });

  test(`${file}: the call is a method of the proto file it loads`, (t) => {
    const method = methodOf(config.call);
    if (!method) return t.fail(`${config.call} is no method of ${SERVICES.map((s) => s.typeName).join(", ")}`);
    t.is(method.methodKind, "unary");
    const proto = readFileSync(new URL(config.proto!, ROOT), "utf8");
    t.regex(proto, new RegExp(`service ${method.parent.name} \\{[^}]*rpc ${method.name}\\(`));
  });

  test(`${file}: data names fields of the request message`, (t) => {
    const method = methodOf(config.call);
    if (!method) return t.fail(`unknown call ${config.call}`);
    t.false(Array.isArray(config.data), "data is an object; prepare.ts expands per-row placeholders");
    t.deepEqual(unknownFields(method.input, config.data as Record<string, unknown>), []);
  });

  test(`${file}: placeholders and template actions are known`, (t) => {
    const known: readonly string[] = [...SCALAR_PLACEHOLDERS, ...ROW_PLACEHOLDERS];
    t.deepEqual(
      placeholdersOf(config).filter((p) => !known.includes(p)),
      [],
    );
    t.deepEqual(
      templateActionsOf(config).filter((a) => !TEMPLATE_ACTION.test(a)),
      [],
    );
    const rowBased = placeholdersOf(config).some((p) => (ROW_PLACEHOLDERS as readonly string[]).includes(p));
    if (rowBased) t.truthy(config.total, 'per-row data needs "total" (one request per row)');
  });

  test(`${file}: run.sh runs it`, (t) => {
    const script = readFileSync(new URL("ghz-bench/run.sh", ROOT), "utf8");
    t.true(script.includes(file.replace(/\.json$/, "")), `ghz-bench/run.sh does not run ${file}`);
  });
}

test("fillConfig replaces every placeholder and gives per-row configs one element per row", (t) => {
  const scalars = Object.fromEntries(SCALAR_PLACEHOLDERS.map((p) => [p, `value-of-${p}`])) as Scalars;
  const rows = [1, 2, 3].map((i) => ({
    SEAT_ID: `seat-${i}`,
    SCHEDULE_ID: `schedule-${i}`,
    RESERVATION_ID: `reservation-${i}`,
  }));
  for (const { config } of configs) {
    const filled: GhzConfig = fillConfig(config, "127.0.0.1:1", scalars, rows);
    t.is(filled.host, "127.0.0.1:1");
    t.deepEqual(placeholdersOf(filled), []);
    if (Array.isArray(filled.data)) {
      t.is(filled.data.length, 3);
      t.is(filled.total, 3);
      t.is(filled.duration, undefined);
    }
  }
  const reserve = configs.find(({ config }) => config.call.endsWith("ReserveSeat"))!.config;
  const data = fillConfig(reserve, "h:1", scalars, rows).data as Record<string, unknown>[];
  t.deepEqual(
    data.map((d) => [d.seat_id, d.schedule_id]),
    rows.map((r) => [r.SEAT_ID, r.SCHEDULE_ID]),
  );
});
