/**
 * Capped exponential backoff with jitter for restarting the pod informer: after an API server
 * outage every agent of the cluster reconnects, and the jitter spreads them out.
 */

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** First delay, in milliseconds. */
  baseMs: number;
  /** Largest delay, in milliseconds. */
  maxMs: number;
  /** Source of randomness in [0, 1). */
  random?: () => number;
}

/** Delays base·2ⁿ capped at max, each drawn from the upper half ("equal jitter"). */
export class Backoff {
  #attempt = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt; each call doubles the following one up to the cap. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    const random = this.opts.random ?? Math.random;
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  }

  /** Back to the base delay after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
