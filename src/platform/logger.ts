// Structured JSON logs through pino: the fastest mainstream Node logger, and its line-per-event
// JSON is what log shippers expect. `npx pino-pretty` makes it readable in a terminal.

import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
