// Queue tokens drawn from a block of random bytes: 32 hex digits, none repeated across blocks.

import test from "ava";
import { newQueueToken } from "../../src/queue/queue-token.js";

test("tokens are 32 hex digits and distinct across several blocks", (t) => {
  const tokens = Array.from({ length: 2000 }, newQueueToken);
  t.true(tokens.every((token) => /^[0-9a-f]{32}$/.test(token)));
  t.is(new Set(tokens).size, tokens.length);
});
