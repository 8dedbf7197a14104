// Why PostgreSQL refused a first connection, as one line that names DATABASE_URL and only the fix
// that applies: "start it" is the wrong advice for a missing role or database, or a mistyped host.

import { redactUrl, UNRESOLVED_HOST } from "../redis/client.js";

/** PostgreSQL SQLSTATEs a start-up can meet, with the advice each one calls for. */
const INVALID_CATALOG_NAME = "3D000";
const LOGIN_REFUSED = new Set(["28000", "28P01"]); // no such role or no pg_hba entry; wrong password
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
    // Without a user in the URL the driver logs in as the OS user, which the server's message names.
    const missingRole = /^role "(.*)" does not exist/.exec(cause)?.[1];
    const user = decodeURIComponent(url.username) || missingRole || "the default user";
    const refused = `PostgreSQL at ${at} refused the login of ${user} (${cause})`;
    if (missingRole)
      return `${refused}: put a role that exists, with its password, in DATABASE_URL, or create it (createuser ${missingRole})`;
    if (code === "28P01" || /\bpassword\b/i.test(cause)) return `${refused}: put the role's password in DATABASE_URL`;
    return `${refused}: allow this client in the server's pg_hba.conf, or use a user it allows in DATABASE_URL`;
  }
  if (code && UNRESOLVED_HOST.has(code)) {
    return `PostgreSQL host "${url.hostname}" does not resolve (${cause}): correct the host in DATABASE_URL`;
  }
  if (code && STARTING_UP.has(code)) {
    return `PostgreSQL at ${at} is still starting (${cause}): start again in a moment`;
  }
  return `PostgreSQL is unreachable at ${at} (${cause}): start it, point DATABASE_URL at it, or run \`docker compose up -d postgres\``;
}
