// Why PostgreSQL refused a first connection, as one line that names DATABASE_URL and only the fix
// that applies: "start it" is the wrong advice for a missing role or database, or a mistyped host.

import { redactUrl, UNRESOLVED_HOST } from "../redis/client.js";

/** PostgreSQL SQLSTATEs a start-up can meet, with the advice each one calls for. */
const INVALID_CATALOG_NAME = "3D000";
const LOGIN_REFUSED = new Set(["28000", "28P01"]); // no such role / no pg_hba entry, wrong password
const STARTING_UP = new Set(["57P03"]);

export function explainDatabaseConnectFailure(error: unknown, databaseUrl: string): string {
  const { code, message } = error as { code?: string; message?: string };
  const cause = String(message ?? error).split("\n")[0]!;
  const url = new URL(databaseUrl);
  const at = redactUrl(databaseUrl);
  if (code === INVALID_CATALOG_NAME) {
    const name = decodeURIComponent(url.pathname.slice(1));
    return `PostgreSQL at ${at} has no database "${name}": create it (createdb "${name}") or point DATABASE_URL at one that exists`;
  }
  if ((code && LOGIN_REFUSED.has(code)) || /\bpassword\b/i.test(cause)) {
    const user = decodeURIComponent(url.username) || "(the OS user)";
    return `PostgreSQL at ${at} refused the login of ${user} (${cause}): put a role that exists, with its password, in DATABASE_URL, or create it (createuser ${user})`;
  }
  if (code && UNRESOLVED_HOST.has(code)) {
    return `PostgreSQL host "${url.hostname}" does not resolve (${cause}): correct the host in DATABASE_URL`;
  }
  if (code && STARTING_UP.has(code)) {
    return `PostgreSQL at ${at} is still starting (${cause}): start again in a moment`;
  }
  return `PostgreSQL is unreachable at ${at} (${cause}): start it, point DATABASE_URL at it, or run \`docker compose up -d postgres\``;
}
