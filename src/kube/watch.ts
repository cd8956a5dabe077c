/**
 * The pod informer's watch: the client library's Watch, plus bookmarks, a server-side timeout and
 * an idle timeout. A watch can stall without closing (a half-open connection behind a load
 * balancer, a wedged API server replica): no event, no bookmark, no end, and the library would wait
 * forever. kube-apiserver sends a watch that asked for bookmarks one about every minute
 * (`defaultBookmarkFrequency` in its cacher), so a healthy quiet watch is never silent for long;
 * silence for `idleMs` means the watch is dead. Its connection is then destroyed and the watch ends
 * with an error, which the pod cache counts as a restart and resumes from the last resource version.
 * (Since @kubernetes/client-node 2.0 the library's own request timeout does the timing.)
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';

type WatchCallback = Parameters<Watch['watch']>[2];
type WatchDone = Parameters<Watch['watch']>[3];
type WatchParams = Parameters<Watch['watch']>[1];

/** What the pod cache tells and learns through its watch. */
export interface WatchHooks {
  /** Milliseconds without response headers, event or bookmark after which the watch is stalled. */
  idleMs: number;
  /** True once the pod cache is stopped: no new watch, and one answered late is aborted. */
  stopped(): boolean;
  /** The informer opens a watch: the list before it (if any) has been applied. */
  watching(): void;
  /** The API server answered a watch request: it is reachable again. */
  answered(): void;
}

/** A delay as people read it: `400ms`, `1.5s`. */
export function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

/**
 * The informer's Watch; see the module comment. It extends Watch for the informer's sake, and runs
 * each request through a fresh library Watch of its own, whose request timeout is the idle timeout.
 */
export class IdleWatch extends Watch {
  readonly #hooks: WatchHooks;

  constructor(kubeConfig: KubeConfig, hooks: WatchHooks) {
    super(kubeConfig);
    this.#hooks = hooks;
  }

  override async watch(path: string, params: WatchParams, callback: WatchCallback, done: WatchDone): Promise<AbortController> {
    const aborted = new AbortController();
    aborted.abort();
    if (this.#hooks.stopped()) return aborted;
    this.#hooks.watching();

    const { idleMs } = this.#hooks;
    // The library's Watch aborts a request that has no response headers, or receives nothing
    // after them, for requestTimeoutMs (its clock restarts on every chunk, bookmarks included),
    // and ends it with a TimeoutError: that is the idle timeout. The field is private and 30 s,
    // shorter than the minute between bookmarks, which would restart every quiet watch: set it.
    const request = new Watch(this.config);
    (request as unknown as { requestTimeoutMs: number }).requestTimeoutMs = idleMs;
    let failed = false;
    const onEnd: WatchDone = (err) => {
      const timedOut = (err as { name?: unknown } | null)?.name === 'TimeoutError';
      // A plain Error, not the TimeoutError: the informer would resume on that by itself, and the
      // pod cache counts a stalled watch as a restart.
      const reported = timedOut ? new Error(`watch stalled: nothing received for ${formatDelay(idleMs)}`) : err;
      failed = Boolean(reported);
      done(reported);
    };

    // The server ends the watch after 5–10 min (spread, so agents do not all resume at once).
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    try {
      const controller = await request.watch(path, { ...params, allowWatchBookmarks: true, timeoutSeconds }, callback, onEnd);
      if (!failed) this.#hooks.answered();
      // stop() ran while the request was in flight: it could not abort what it did not have.
      if (this.#hooks.stopped()) controller.abort();
      return controller;
    } catch (err) {
      // Raised before the request (credentials): the library would leave it unhandled.
      onEnd(err);
      return aborted;
    }
  }
}
