// ghz configs of this repository: loading them and filling in what only a running server knows.
// Configs hold ${NAME} placeholders (not Go templates, which ghz evaluates per request):
// prepare.ts replaces them with ids and queue tokens before ghz runs. A data object that names a
// per-row placeholder (${SEAT_ID}, ${RESERVATION_ID}) becomes an array with one element per
// prepared row; ghz sends element RequestNumber % length, so with "total" set to the number of
// rows every row is used exactly once (a distinct seat per ReserveSeat, a distinct hold per
// PayReservation).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CONFIG_DIR = fileURLToPath(new URL("./configs", import.meta.url));

/** Values prepare.ts provides for every config. */
export const SCALAR_PLACEHOLDERS = [
  "CONCERT_ID",
  "SCHEDULE_ID",
  "QUEUE_TOKEN",
  "USER_ID",
  "PAYER_TOKEN",
  "PAYER_ID",
] as const;
/** Values that differ per request: each expands the data into one element per row. */
export const ROW_PLACEHOLDERS = ["SEAT_ID", "RESERVATION_ID"] as const;

/** The ghz template actions these configs may use (ghz call template data and functions). */
export const TEMPLATE_ACTION =
  /^\{\{(\.RequestNumber|\.WorkerID|\.UUID|\.TimestampUnix(Milli|Nano)?|newUUID|randomString \d+|randomInt \d+ \d+)\}\}$/;

export type Scalars = Record<(typeof SCALAR_PLACEHOLDERS)[number], string>;
export type Row = Partial<Record<(typeof SCALAR_PLACEHOLDERS)[number] | (typeof ROW_PLACEHOLDERS)[number], string>>;

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

function substitute<T>(value: T, values: Row): T {
  const text = JSON.stringify(value).replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const replacement = values[name as keyof Row];
    if (replacement === undefined) throw new Error(`no value for placeholder ${whole}`);
    return replacement;
  });
  return JSON.parse(text) as T;
}

/** The config with placeholders replaced; per-row placeholders expand the data to `rows`. */
export function fillConfig(config: GhzConfig, host: string, scalars: Scalars, rows: Row[] = []): GhzConfig {
  const usesRows = placeholdersOf(config).some((name) => (ROW_PLACEHOLDERS as readonly string[]).includes(name));
  const filled: GhzConfig = { ...substitute({ ...config, data: {} }, scalars), host };
  if (!usesRows) return { ...filled, data: substitute(config.data, scalars) };
  if (rows.length === 0) throw new Error(`${config.call} needs prepared rows (${ROW_PLACEHOLDERS.join(", ")})`);
  const data = rows.map((row) => substitute(config.data as Record<string, unknown>, { ...scalars, ...row }));
  const { duration: _, ...rest } = filled;
  return { ...rest, data, total: Math.min(config.total ?? data.length, data.length) };
}
