// The advice for each way a first PostgreSQL connection fails. test/cli/startup-failures.test.ts
// meets the ones the shared server can produce (closed port, missing role and database, unknown
// host); the shared server trusts every login, so a wrong password, a pg_hba refusal and a server
// still starting are checked here with the driver's error codes and words.

import test from "ava";
import { explainDatabaseConnectFailure } from "../../src/platform/db/connect-failure.js";

const URL_WITH_PASSWORD = "postgres://app:secret@db.example:5432/shop";
const explain = (error: object) => explainDatabaseConnectFailure(error, URL_WITH_PASSWORD);

test("a wrong password names DATABASE_URL's password and redacts it", (t) => {
  const line = explain({ code: "28P01", message: 'password authentication failed for user "app"' });
  t.is(
    line,
    'PostgreSQL at postgres://app:***@db.example:5432/shop refused the login of app (password authentication failed for user "app"): put the role\'s password in DATABASE_URL',
  );
});

test("a password the server asks for but the URL lacks (the driver's own words, no SQLSTATE)", (t) => {
  const line = explain({ message: "SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string" });
  t.regex(line, /refused the login of app \(SASL: .+\): put the role's password in DATABASE_URL$/);
});

test("a pg_hba.conf refusal points at pg_hba.conf, not at creating a role", (t) => {
  const line = explain({ code: "28000", message: 'no pg_hba.conf entry for host "10.0.0.5", user "app"' });
  t.regex(
    line,
    /refused the login of app \(no pg_hba\.conf entry .+\): allow this client in the server's pg_hba\.conf/,
  );
  t.notRegex(line, /createuser/);
});

test("a missing role without a user in the URL takes the name from the server's message", (t) => {
  const line = explainDatabaseConnectFailure(
    { code: "28000", message: 'role "deploy" does not exist' },
    "postgres://127.0.0.1:5432/shop",
  );
  t.regex(line, /refused the login of deploy \(role "deploy" does not exist\): .+ \(createuser deploy\)$/);
});

test("a server still starting up says to try again, not to start it", (t) => {
  const line = explain({ code: "57P03", message: "the database system is starting up" });
  t.is(
    line,
    "PostgreSQL at postgres://app:***@db.example:5432/shop is still starting (the database system is starting up): start again in a moment",
  );
});

test("no answer at all (a timeout) is 'unreachable' with the hint for PostgreSQL alone", (t) => {
  const line = explain({ code: "ETIMEDOUT", message: "connect ETIMEDOUT 10.0.0.9:5432" });
  t.regex(
    line,
    /^PostgreSQL is unreachable at .+ \(connect ETIMEDOUT 10\.0\.0\.9:5432\): start it, point DATABASE_URL at it/,
  );
  t.notRegex(line, /REDIS|redis/);
});
