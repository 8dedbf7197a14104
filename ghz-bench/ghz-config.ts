// ghz configs of this repository: loading them and filling in what only a running server knows.
// Configs hold ${NAME} placeholders (not Go templates, which ghz evaluates per request):
// prepare.ts replaces them with ids and queue tokens before ghz runs.
//
// A config that names a per-row placeholder (${SEAT_ID}, ${RESERVATION_ID}, ${USER_ID}) gets one
// data element per prepared row; ghz sends element RequestNumber % length, so with "total" equal
// to the number of rows every row is used exactly once. Rows take their users in turn (row i
// belongs to user i % concurrency), and ${USER_TOKEN} becomes a template that picks that user's
// queue token by the same RequestNumber: the calls in flight belong to different users, so the
// benchmark measures holds and payments, not one user's lock or one wallet's queue.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CONFIG_DIR = fileURLToPath(new URL("./configs", import.meta.url));

/** Values prepare.ts provides for every config. */
export const SCALAR_PLACEHOLDERS = ["CONCERT_ID", "SCHEDULE_ID", "QUEUE_TOKEN"] as const;
/** Values that differ per request: each expands the data into one element per row. */
export const ROW_PLACEHOLDERS = ["SEAT_ID", "RESERVATION_ID", "USER_ID"] as const;
/** The queue token of the row's user, for metadata (which ghz cannot take per row). */
export const USER_TOKEN_PLACEHOLDER = "USER_TOKEN";

/**
 * The ghz template actions these configs may use (ghz's call template data, its functions and
 * sprig's). The WorkerID one drops the "<config name>:" that ghz puts in front of the worker id.
 */
export const TEMPLATE_ACTION =
  /^\{\{(\.RequestNumber|\.WorkerID \| splitList `:` \| last|\.UUID|\.TimestampUnix(Milli|Nano)?|newUUID|randomString \d+|randomInt \d+ \d+)\}\}$/;

type Scalar = (typeof SCALAR_PLACEHOLDERS)[number];
type RowKey = (typeof ROW_PLACEHOLDERS)[number] | typeof USER_TOKEN_PLACEHOLDER;
export type Scalars = Record<Scalar, string>;
export type Row = Partial<Record<Scalar | RowKey, string>>;

export interface GhzConfig {
  name?: string;
  call: string;
  host: string;
  insecure?: boolean;
  proto?: string;
  "import-paths"?: string[];
  total?: number;
  concurrency: number;
  duration?: string;
  "duration-stop"?: string;
  metadata?: Record<string, string>;
  data: Record<string, unknown> | Record<string, unknown>[];
  [key: string]: unknown;
}

export function loadGhzConfigs(dir = CONFIG_DIR): { file: string; config: GhzConfig }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => ({ file, config: JSON.parse(readFileSync(join(dir, file), "utf8")) as GhzConfig }));
}

/** Every ${NAME} in a config. */
export function placeholdersOf(config: GhzConfig): string[] {
  return [...JSON.stringify(config).matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!);
}

/** Every {{…}} action in a config. */
export function templateActionsOf(config: GhzConfig): string[] {
  return [...JSON.stringify(config).matchAll(/\{\{[^}]*\}\}/g)].map((m) => m[0]);
}

/** Whether the config sends one data element per prepared row. */
export function usesRows(config: GhzConfig): boolean {
  return placeholdersOf(config).some((name) => (ROW_PLACEHOLDERS as readonly string[]).includes(name));
}

function substitute<T>(value: T, values: Row): T {
  const text = JSON.stringify(value).replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const replacement = values[name as keyof Row];
    if (replacement === undefined) throw new Error(`no value for placeholder ${whole}`);
    return replacement;
  });
  return JSON.parse(text) as T;
}

/**
 * The Go template (sprig's list, index and mod; raw `strings` need no JSON escaping) that gives
 * request N the token of user N % tokens.length, the user of the row ghz sends with it.
 */
export function tokenByRequestNumber(tokens: readonly string[]): string {
  if (tokens.some((t) => !/^[\w-]+$/.test(t))) throw new Error("queue tokens must be letters, digits, _ and -");
  return `{{index (list ${tokens.map((t) => `\`${t}\``).join(" ")}) (mod .RequestNumber ${tokens.length})}}`;
}

/** The rows a row config sends: a whole number of turns over its users, each row's user in its turn. */
function rowsInTurn(config: GhzConfig, rows: readonly Row[]): Row[] {
  const users = config.concurrency;
  const count = Math.floor(Math.min(config.total ?? rows.length, rows.length) / users) * users;
  if (count === 0) throw new Error(`${config.call} needs at least ${users} prepared rows (one per concurrent call)`);
  const used = rows.slice(0, count);
  used.forEach((row, i) => {
    const first = used[i % users]!;
    if (row.USER_ID !== first.USER_ID || row.USER_TOKEN !== first.USER_TOKEN)
      throw new Error(`row ${i} of ${config.call} does not belong to user ${i % users} of the turn`);
  });
  return used;
}

/**
 * The config with placeholders replaced; per-row placeholders expand the data to the rows (and
 * make the run a count, not a duration). `duration` replaces the duration of the others.
 */
export function fillConfig(
  config: GhzConfig,
  host: string,
  scalars: Scalars,
  rows: readonly Row[] = [],
  duration?: string,
): GhzConfig {
  const { data, metadata, ...rest } = config;
  const filled: GhzConfig = { ...substitute({ ...rest, data: {} }, scalars), host };
  if (!usesRows(config)) {
    const withData = { ...filled, data: substitute(data, scalars) };
    const timed = duration && config.duration ? { ...withData, duration } : withData;
    return metadata ? { ...timed, metadata: substitute(metadata, scalars) } : timed;
  }
  const used = rowsInTurn(config, rows);
  const perRequest: Row = { ...scalars };
  if (placeholdersOf(config).includes(USER_TOKEN_PLACEHOLDER))
    perRequest.USER_TOKEN = tokenByRequestNumber(used.slice(0, config.concurrency).map((row) => row.USER_TOKEN ?? ""));
  const counted: GhzConfig = { ...filled };
  delete counted.duration;
  delete counted["duration-stop"];
  return {
    ...counted,
    ...(metadata ? { metadata: substitute(metadata, perRequest) } : {}),
    data: used.map((row) => substitute(data as Record<string, unknown>, { ...scalars, ...row })),
    total: used.length,
  };
}
