// A failure that repeats on every retry (a store down, every tick or interval) is logged once
// when it starts and once when it ends, not on every attempt in between.

import type { Logger } from "./logger.js";

export interface OutageLog {
  /** Warns unless already failing. */
  failed(fields: object, message: string): void;
  /** Says so at info if it was failing. */
  recovered(fields: object, message: string): void;
}

export function createOutageLog(logger: Logger): OutageLog {
  let failing = false;
  return {
    failed(fields, message) {
      if (!failing) logger.warn(fields, message);
      failing = true;
    },
    recovered(fields, message) {
      if (failing) logger.info(fields, message);
      failing = false;
    },
  };
}
