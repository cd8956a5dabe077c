/**
 * The delivery watchdog behind /healthz. A wedged event loop cannot answer the probe at all, and
 * the kubelet's probe timeout covers that; this catches delivery that stopped while the loop still
 * turns (a delivery handle that died, a batch callback that never comes back): records wait in
 * the ring buffer and no batch reaches JavaScript. Healthy delivery drains the ring within the
 * 25 ms flush interval, so records still waiting, with no batch delivered in between, from one
 * probe to one `timeoutMs` later mean a stall. Read at each probe, never on a timer. A node
 * without execs has nothing waiting and stays healthy however long it is idle.
 */

/** What the watchdog reads from the tracer at each check. */
export interface DeliveryProgress {
  /** Batches handed to JavaScript so far. */
  batches: number;
  /** Bytes in the ring buffer not consumed yet. */
  waitingBytes: number;
}

/** What /healthz reports: live, or why not. */
export interface Liveness {
  live: boolean;
  reasons: string[];
}

const LIVE: Liveness = { live: true, reasons: [] };

export class DeliveryWatchdog {
  readonly #read: () => DeliveryProgress;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Batches at the last check. */
  #batches = -1;
  /** Since when records have waited with no batch delivered (clock ms), or null. */
  #since: number | null = null;

  /** `timeoutMs` 0 turns it off; `now` is a monotonic clock in milliseconds. */
  constructor(read: () => DeliveryProgress, timeoutMs: number, now: () => number = () => performance.now()) {
    this.#read = read;
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  check(): Liveness {
    if (this.#timeoutMs === 0) return LIVE;
    const { batches, waitingBytes } = this.#read();
    const now = this.#now();
    if (waitingBytes === 0 || batches !== this.#batches) {
      this.#batches = batches;
      this.#since = waitingBytes === 0 ? null : now;
      return LIVE;
    }
    this.#since ??= now;
    const stalledMs = now - this.#since;
    if (stalledMs < this.#timeoutMs) return LIVE;
    return {
      live: false,
      reasons: [
        `delivery stalled: ${waitingBytes} bytes wait in the ring buffer and nothing was delivered for ` +
          `${(stalledMs / 1000).toFixed(1)} s (--stall-timeout ${this.#timeoutMs / 1000} s)`,
      ],
    };
  }
}
