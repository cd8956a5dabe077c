/**
 * Per-event counts kept as plain numbers and handed to prom-client when it collects. A child's
 * inc() rebuilds its label hash on every call (prometheus/client_js#38): about 0.6 µs and a string
 * of garbage per event and counter, where adding to a number here costs neither. Counters whose
 * children are counted here call flush() in their `collect`, which prom-client runs before it
 * reads them in every scrape, so a scrape never shows a count older than the events delivered.
 */
import type { Counter } from 'prom-client';

type Child = Counter.Internal;

export class Tally {
  readonly #pending = new Map<Child, number>();

  /** `n` (default one) more for `child`, given to it at the next flush. */
  add(child: Child, n = 1): void {
    this.#pending.set(child, (this.#pending.get(child) ?? 0) + n);
  }

  /** Forgets what `child` was still owed: its series is being removed (an inc() would bring it back). */
  drop(child: Child): void {
    this.#pending.delete(child);
  }

  /** Gives every child what it is owed. */
  flush(): void {
    for (const [child, n] of this.#pending) child.inc(n);
    this.#pending.clear();
  }
}
