/**
 * Scrapes that arrive together share one collection. /metrics runs on the thread that decodes
 * events: 64 scrapers each collecting the registry in turn would keep that thread away from the
 * ring buffer for 64 collections in a row, and the kernel drops what does not fit meanwhile. A
 * collection starts on the event loop's next turn (setImmediate: after this turn's I/O callbacks,
 * the ring buffer's and the other scrapes' among them), and every scrape of the same format that
 * arrives before it has finished gets its body. At most `maxWaiting` scrapes wait at once; more
 * are refused, not queued, so a crowd of scrapers costs a bounded amount of memory and work.
 */
import type { Registry } from 'prom-client';
import { prefersOpenMetrics, scrape } from './exposition.js';

/** One scrape's answer. */
export interface ScrapeBody {
  contentType: string;
  body: string;
}

export class SharedScrapes {
  readonly #registry: Registry;
  readonly #maxWaiting: number;
  /** The collection in flight for each format (true: OpenMetrics). */
  readonly #inFlight = new Map<boolean, Promise<ScrapeBody>>();
  #waiting = 0;

  constructor(registry: Registry, maxWaiting: number) {
    this.#registry = registry;
    this.#maxWaiting = maxWaiting;
  }

  /** The body for this Accept header, shared with the scrapes waiting with it; null when too many wait. */
  get(accept: string | undefined): Promise<ScrapeBody> | null {
    if (this.#waiting >= this.#maxWaiting) return null;
    const openMetrics = prefersOpenMetrics(accept);
    let collection = this.#inFlight.get(openMetrics);
    if (collection === undefined) {
      collection = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => scrape(this.#registry, accept))
        .finally(() => this.#inFlight.delete(openMetrics));
      this.#inFlight.set(openMetrics, collection);
    }
    this.#waiting += 1;
    return collection.finally(() => {
      this.#waiting -= 1;
    });
  }
}
