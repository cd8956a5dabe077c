/**
 * The pod informer's watch: the client library's Watch, plus bookmarks, a server-side timeout and
 * an idle timeout. A watch can stall without closing (a half-open connection behind a load
 * balancer, a wedged API server replica): no event, no bookmark, no end, and the library would wait
 * forever. kube-apiserver sends a watch that asked for bookmarks one about every minute
 * (`defaultBookmarkFrequency` in its cacher), so a healthy quiet watch is never silent for long;
 * silence for `idleMs` means the watch is dead. Its connection is then destroyed and the watch ends
 * with an error, which the pod cache counts as a restart and resumes from the last resource version.
 */
import type { Agent } from 'node:http';
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
 * each request through a fresh library Watch of its own, to hold that request's connection.
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
    let agent: Agent | undefined;
    let timer: NodeJS.Timeout | undefined;
    let stalled: Error | null = null;
    let ended = false;
    let failed = false;
    const arm = (): void => {
      clearTimeout(timer);
      if (ended) return;
      timer = setTimeout(() => {
        stalled = new Error(`watch stalled: nothing received for ${formatDelay(idleMs)}`);
        // The request's own agent (one per request): ends the fetch or the body stream alike.
        agent?.destroy();
      }, idleMs);
      timer.unref();
    };
    const onEnd: WatchDone = (err) => {
      ended = true;
      failed = Boolean(stalled ?? err);
      clearTimeout(timer);
      done(stalled ?? err);
    };
    const onEvent: WatchCallback = (type, object, watchObj) => {
      arm();
      callback(type, object, watchObj);
    };
    // The library's Watch uses these two methods of its configuration; this one also keeps the
    // request's agent, the handle on its connection, and starts the clock as the request leaves.
    const tracked = {
      getCurrentCluster: () => this.config.getCurrentCluster(),
      applyToFetchOptions: async (opts: Parameters<KubeConfig['applyToFetchOptions']>[0]) => {
        const init = await this.config.applyToFetchOptions(opts);
        agent = init.agent as Agent;
        arm();
        return init;
      },
    } as unknown as KubeConfig;

    // The server ends the watch after 5–10 min (spread, so agents do not all resume at once).
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    try {
      const controller = await new Watch(tracked).watch(path, { ...params, allowWatchBookmarks: true, timeoutSeconds }, onEvent, onEnd);
      if (!failed) this.#hooks.answered();
      // Answered: from now on the clock measures the silence between events.
      arm();
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
