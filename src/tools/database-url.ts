// DATABASE_URL for the tools that need nothing else, checked as the server checks it: a bad
// value is one line naming the variable and exit status 2, not a stack trace from the driver.

import { ConfigError, loadDatabaseUrl } from "../config.js";

export function databaseUrlFor(tool: string): string {
  try {
    return loadDatabaseUrl();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${tool}: ${error.message}`);
    process.exit(2);
  }
}
