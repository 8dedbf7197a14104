import test from "ava";
import { onAbort } from "../../src/platform/abort-listeners.js";

test("every listener still registered fires once at abort; forgotten ones do not", (t) => {
  const controller = new AbortController();
  const fired: number[] = [];
  const forgets = Array.from({ length: 5 }, (_, i) => onAbort(controller.signal, () => fired.push(i)));
  forgets[1]!();
  forgets[3]!();
  controller.abort();
  controller.abort();
  t.deepEqual(fired, [0, 2, 4]);
});

test("the signal itself carries one listener however many are registered", (t) => {
  const controller = new AbortController();
  let added = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    added++;
    add(...args);
  }) as typeof add;
  for (let i = 0; i < 1000; i++) onAbort(controller.signal, () => {})();
  t.is(added, 1);
});
