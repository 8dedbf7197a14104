// The load test against a server on a private three-master Redis Cluster (REDIS_CLUSTER_NODES):
// the gauge and the audit read the waiting room and the event stream through a cluster client,
// every invariant holds, and the run's keys are removed from every master afterwards.

import test from "ava";
import { Redis } from "ioredis";
import { removeRedisKeys } from "../../src/loadtest/redis-cleanup.js";
import { formatReport } from "../../src/loadtest/report-text.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { runCiLoadTest } from "../helpers/loadtest.js";
import { startPrivateRedisCluster, type PrivateRedisCluster } from "../helpers/redis-server.js";

const USERS = 200;
const CAP = 50;

let cluster: PrivateRedisCluster;
let app: TestApp;

test.before(async () => {
  cluster = await startPrivateRedisCluster(3);
  app = await startTestApp("loadtest_cluster", {
    redisClusterNodes: cluster.nodes,
    maxActiveUsers: CAP,
    admissionIntervalMs: 100,
  });
  await seedCatalog(app.app.orm.em.fork(), { concerts: 1, schedules: 1, seats: 2000 });
});

test.after.always(async () => {
  await app?.stop();
  await cluster?.stop();
});

async function keysOnMasters(pattern: string): Promise<number> {
  let found = 0;
  for (const { host, port } of cluster.nodes) {
    const node = new Redis({ host, port, lazyConnect: true });
    await node.connect();
    try {
      if ((await node.info("replication")).includes("role:master")) found += (await node.keys(pattern)).length;
    } finally {
      node.disconnect();
    }
  }
  return found;
}

test(`${USERS} virtual users on a Redis Cluster: every invariant exact; the run's keys are removed from every master`, async (t) => {
  const report = await runCiLoadTest(app, { users: USERS, cap: CAP, connections: 4, redisClusterNodes: cluster.nodes });
  t.log(formatReport(report));
  for (const check of report.audit!.checks) t.is(check.status, "pass", `${check.name}: ${check.detail}`);
  t.true(report.passed);
  t.is(report.outcome.tokensActivated, USERS);
  t.is(report.outcome.paymentsOk, report.outcome.holdsWon);
  // The gauge read the active set through the cluster client.
  t.true(report.serverMaxActiveSampled! > 0 && report.serverMaxActiveSampled! <= CAP);

  const pattern = `${app.config.redisKeyPrefix}*`;
  t.true((await keysOnMasters(pattern)) > 0);
  // The server alone (TestApp.stop would remove the keys itself), then the load test's cleanup.
  await app.app.stop();
  t.true((await removeRedisKeys(app.config.redisUrl, app.config.redisKeyPrefix, cluster.nodes)) > 0);
  t.is(await keysOnMasters(pattern), 0);
});
