// An admission tick does not read the queue settings from PostgreSQL: it runs on the ones it last
// read, re-reading them only once a change is announced (then at once) or in the background.
// Shown with settings rows changed behind AdminService's back. The app's own timer ticks an hour
// apart; the test calls the settings' refresh as a tick does.

import test from "ava";
import { createStoredAdmissionSettings } from "../../src/admin/queue-settings-store.js";
import { admissionRule } from "../../src/queue/admission-rule.js";
import { createLogger } from "../../src/platform/logger.js";
import { testAppFixture } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const fixture = testAppFixture("admission_bg", { maxActiveUsers: 100, admissionIntervalMs: 3_600_000 }, 4);

test.serial("settings: a tick reloads after an announced change, and otherwise only in the background", async (t) => {
  const { app, concertId } = fixture;
  const logger = createLogger("silent");
  const defaults = admissionRule({
    maxActiveUsers: 100,
    activeTtlSeconds: 60,
    waitingTtlSeconds: 60,
    intervalMs: 1000,
  });
  const prefix = `${app.config.redisKeyPrefix}settings:`;
  const make = (reloadEveryMs: number) =>
    createStoredAdmissionSettings(app.app.orm, logger, app.app.redis, prefix, { reloadEveryMs })(defaults);
  const quiet = make(3_600_000);
  const background = make(50);
  await quiet.refresh(60_000);
  await background.refresh(60_000);
  t.is(quiet.of(concertId).rule.cap, 100);

  // A row changed behind AdminService's back: nothing announced it.
  await app.app.orm.em
    .getConnection()
    .execute(`insert into queue_settings (concert_id, max_active_users) values (?, 7)`, [concertId]);
  await quiet.refresh(60_000);
  t.is(quiet.of(concertId).rule.cap, 100, "a tick read PostgreSQL although no change was announced");
  // The background reload catches up within its period, without a tick waiting for it.
  await waitFor(async () => {
    await background.refresh(60_000);
    return background.of(concertId).rule.cap === 7;
  });

  // Announced (as UpdateQueueSettings does after storing): the very next tick applies it.
  await app.app.orm.em
    .getConnection()
    .execute(`update queue_settings set max_active_users = 9 where concert_id = ?`, [concertId]);
  await background.announceChange();
  await quiet.refresh(60_000);
  t.is(quiet.of(concertId).rule.cap, 9);
});
