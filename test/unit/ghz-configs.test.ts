// Every ghz config in ghz-bench/configs must run against the current contract: its call names a
// method of proto/, its data names fields of that method's request message (checked against the
// generated descriptors in gen/), its placeholders are ones prepare.ts fills and its template
// actions are ones ghz knows. ghz itself is not needed here; test/e2e/ghz-real.test.ts runs it.

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
  tokenByRequestNumber,
  USER_TOKEN_PLACEHOLDER,
  usesRows,
  type GhzConfig,
  type Row,
  type Scalars,
} from "../../ghz-bench/ghz-config.js";
import { check } from "../../src/platform/validation.js";

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

/** What ghz makes of the template actions TEMPLATE_ACTION allows, for one request of one worker. */
function asGhzFillsIn(text: string, workerId: string): string {
  return text
    .replaceAll("{{.WorkerID | splitList `:` | last}}", workerId.split(":").at(-1)!)
    .replaceAll("{{.RequestNumber}}", "17")
    .replace(/\{\{randomString (\d+)\}\}/g, (_, n: string) => "x".repeat(Number(n)))
    .replace(/\{\{randomInt (\d+) \d+\}\}/g, "$1")
    .replace(/\{\{\.TimestampUnix(Milli|Nano)?\}\}/g, "1700000000")
    .replace(/\{\{(newUUID|\.UUID)\}\}/g, "0b6f4f8e-3d0c-4d7e-9a51-2f1b8c6d9e10");
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
    const known: readonly string[] = [...SCALAR_PLACEHOLDERS, ...ROW_PLACEHOLDERS, USER_TOKEN_PLACEHOLDER];
    t.deepEqual(
      placeholdersOf(config).filter((p) => !known.includes(p)),
      [],
    );
    t.deepEqual(
      templateActionsOf(config).filter((a) => !TEMPLATE_ACTION.test(a)),
      [],
    );
  });

  test(`${file}: per-row data runs once per row, a whole number of turns over its users`, (t) => {
    if (!usesRows(config)) {
      t.false(placeholdersOf(config).includes(USER_TOKEN_PLACEHOLDER), "${USER_TOKEN} needs per-row data");
      return;
    }
    t.is(config.duration, undefined, 'per-row data needs "total" (one request per row), not "duration"');
    t.true(config.total !== undefined && config.total % config.concurrency === 0);
    // The token must be the one of the row's user, or the call fails with QUEUE_TOKEN_MISMATCH.
    if (config.metadata?.["x-queue-token"] !== undefined)
      t.is(config.metadata["x-queue-token"], `\${${USER_TOKEN_PLACEHOLDER}}`);
  });

  test(`${file}: a duration run waits for the calls in flight at its end`, (t) => {
    // ghz's default ("close") cuts them off: they end as Unavailable "use of closed network connection".
    if (config.duration === undefined) t.is(config["duration-stop"], undefined);
    else t.is(config["duration-stop"], "wait");
  });

  test(`${file}: user ids are valid once ghz fills in its templates`, (t) => {
    // ghz names workers "<config name>:g<n>c<connection>" (just "g<n>c<connection>" without a name).
    const workerId = config.name === undefined ? "g12c3" : `${config.name}:g12c3`;
    const userId = (JSON.parse(asGhzFillsIn(JSON.stringify(config.data), workerId)) as { user_id?: string }).user_id;
    if (userId === undefined || userId.includes("${")) return t.pass();
    t.notThrows(() => check().userId("user_id", userId).throwIfInvalid());
  });

  test(`${file}: run.sh runs it`, (t) => {
    const script = readFileSync(new URL("ghz-bench/run.sh", ROOT), "utf8");
    t.true(script.includes(file.replace(/\.json$/, "")), `ghz-bench/run.sh does not run ${file}`);
  });
}

/** Rows in turn over `users` users, as prepare-run.ts makes them. */
function rowsInTurn(count: number, users: number): Row[] {
  return Array.from({ length: count }, (_, i) => ({
    SEAT_ID: `seat-${i}`,
    SCHEDULE_ID: `schedule-${i}`,
    RESERVATION_ID: `reservation-${i}`,
    USER_ID: `user-${i % users}`,
    USER_TOKEN: `token${i % users}`,
  }));
}

test("fillConfig replaces every placeholder and gives per-row configs whole turns of rows", (t) => {
  const scalars = Object.fromEntries(SCALAR_PLACEHOLDERS.map((p) => [p, `value-of-${p}`])) as Scalars;
  for (const { config } of configs) {
    const rows = rowsInTurn(config.concurrency * 2 + 5, config.concurrency);
    const filled: GhzConfig = fillConfig(config, "127.0.0.1:1", scalars, rows, "2s");
    t.is(filled.host, "127.0.0.1:1");
    t.deepEqual(placeholdersOf(filled), []);
    if (Array.isArray(filled.data)) {
      t.is(filled.data.length, config.concurrency * 2);
      t.is(filled.total, config.concurrency * 2);
      t.is(filled.duration, undefined);
    } else {
      t.is(filled.duration, config.duration === undefined ? undefined : "2s");
    }
  }
  const reserve = configs.find(({ config }) => config.call.endsWith("ReserveSeat"))!.config;
  const rows = rowsInTurn(reserve.concurrency, reserve.concurrency);
  const data = fillConfig(reserve, "h:1", scalars, rows).data as Record<string, unknown>[];
  t.deepEqual(
    data.map((d) => [d.seat_id, d.schedule_id, d.user_id]),
    rows.map((r) => [r.SEAT_ID, r.SCHEDULE_ID, r.USER_ID]),
  );
});

test("fillConfig refuses rows whose users are not in turn", (t) => {
  const pay = configs.find(({ config }) => config.call.endsWith("PayReservation"))!.config;
  const rows = rowsInTurn(pay.concurrency * 2, pay.concurrency);
  rows[pay.concurrency + 1] = { ...rows[pay.concurrency + 1]!, USER_ID: "user-0", USER_TOKEN: "token0" };
  const scalars = Object.fromEntries(SCALAR_PLACEHOLDERS.map((p) => [p, "v"])) as Scalars;
  t.throws(() => fillConfig(pay, "h:1", scalars, rows), { message: /does not belong to user 1/ });
  t.throws(() => fillConfig(pay, "h:1", scalars, rows.slice(0, pay.concurrency - 1)), { message: /at least/ });
});

test("the token template gives request N the token of row N's user", (t) => {
  const tokens = ["aa", "bb", "cc"];
  const template = tokenByRequestNumber(tokens);
  t.is(template, "{{index (list `aa` `bb` `cc`) (mod .RequestNumber 3)}}");
  t.throws(() => tokenByRequestNumber(["a`b"]));
});
