// Getting through the waiting room in RPC tests: join, then poll until admitted. Test apps use
// a short ADMISSION_INTERVAL_MS, so this takes one or two admission ticks.

import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { QUEUE_TOKEN_HEADER } from "../../src/queue/admission-context.js";
import type { TestApp } from "./app.js";
import { waitFor } from "./wait.js";

/** Joins the queue of `concertId` as `userId` and returns the token once it is ACTIVE. */
export async function admitUser(app: TestApp, concertId: string, userId: string, timeoutMs = 15_000): Promise<string> {
  const queue = app.grpc(QueueService);
  const { token } = await queue.joinQueue({ concertId, userId });
  await waitFor(async () => (await queue.getQueueStatus({ token })).status!.state === QueueState.ACTIVE, {
    timeoutMs,
    message: () => `${userId} admitted to ${concertId}`,
  });
  return token;
}

/** Call options carrying the token, for the grpc-js client and for connect clients. */
export const withToken = (token: string) => ({ metadata: { [QUEUE_TOKEN_HEADER]: token } });
export const withTokenHeader = (token: string) => ({ headers: { [QUEUE_TOKEN_HEADER]: token } });
