/** Polling a condition inside a test: pollUntil passes or fails an assertion, eventually throws. */
import type t from 'tap';

/** The type of a subtest's `t` (the last overload of t.test takes only the callback). */
export type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** Polls every 5 ms until `check` holds, then passes `what`; fails the test with `what` after `ms`. */
export async function pollUntil(t: Test, check: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) {
      t.fail(`timed out waiting: ${what}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  t.pass(what);
}

/**
 * Resolves once `check` (sync or async) holds, polling every `everyMs`; rejects with `what` after
 * `ms`. For waits whose failure ends the test, where pollUntil would carry on.
 */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000, everyMs = 50): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
