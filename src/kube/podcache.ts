/**
 * The pod cache: one informer (the client library's ListWatch) on the pods of this node, indexed
 * for the enricher. The library gives up for good on any error other than 410 Gone; this class
 * restarts it with capped, jittered backoff and keeps serving the last known pods meanwhile. A watch
 * that stalls without closing is ended by its idle timeout (watch.ts) and restarted the same way.
 * Imported only through createPodCache (kubeconfig.ts), so standalone never loads the library.
 */
import { CoreV1Api, KubeConfig, ListWatch } from '@kubernetes/client-node';
import type { V1Pod, V1PodList } from '@kubernetes/client-node';
import { Backoff } from './backoff.js';
import { PodIndex } from './podindex.js';
import type { PodCacheMetrics, PodInfo, PodLookup } from './types.js';
import { formatDelay, IdleWatch } from './watch.js';

/** Options of {@link PodCache}; the optional ones exist for tests and tuning. */
export interface PodCacheOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  metrics: PodCacheMetrics;
  /** Delay between a pod's deletion and `metrics.forgetPod`. */
  gracePeriodMs: number;
  /** Deleted pods kept resolvable for late events (default 512). */
  maxDeletedPods?: number;
  /** First restart delay (default 1 s); doubles up to `backoffMaxMs` (default 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
  /** Pods per list request (default 500). */
  pageSize?: number;
  /**
   * A watch silent this long (no event, no bookmark) is stalled and restarted (default 3 min: the
   * API server sends a bookmark about every minute, so three in a row went missing).
   */
  watchIdleMs?: number;
  /**
   * After the first sync, how long the API server may fail to answer before readiness says no
   * (default 0: never). Cached pods keep resolving meanwhile; they may be out of date.
   */
  unreadyAfterMs?: number;
}

/** The `message` of a Kubernetes Status body, whether parsed already or still JSON text. */
function statusMessage(body: unknown): string | undefined {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const message = (parsed as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

/** Renders an error of the client library as one short line (no URLs, headers or bodies). */
export function describeError(err: unknown): string {
  const e = err as { message?: unknown; statusCode?: unknown; code?: unknown; body?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' ? e.code : null;
  if (status !== null) {
    // ApiException's message spans lines ("HTTP-Code: …\nMessage: …\nBody: …\nHeaders: …").
    const message = String(e.message);
    const detail = statusMessage(e.body) ?? /^Message: (.+)$/m.exec(message)?.[1] ?? message.split('\n')[0];
    return `HTTP ${status}: ${detail}`;
  }
  // undici's fetch says only "fetch failed"; the reason ("connect ECONNREFUSED 127.0.0.1:6443")
  // is its cause.
  const cause = (err as { cause?: { message?: unknown } } | null)?.cause?.message;
  if (e.message === 'fetch failed' && typeof cause === 'string') return cause;
  return String(e.message ?? err);
}

/** Pods of one node, kept in sync with the API server. See {@link PodLookup}. */
export class PodCache implements PodLookup {
  readonly #opts: PodCacheOptions;
  readonly #index: PodIndex;
  readonly #informer: ListWatch<V1Pod>;
  readonly #api: CoreV1Api;
  readonly #backoff: Backoff;
  readonly #listeners = new Set<() => void>();
  #synced = false;
  #stopped = true;
  #restarts = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #lastError: string | null = null;
  /** When the API server stopped answering (clock ms), or null while it answers. */
  #failingSince: number | null = null;
  #notifyQueued = false;

  constructor(opts: PodCacheOptions) {
    this.#opts = opts;
    this.#index = new PodIndex({
      metrics: opts.metrics,
      gracePeriodMs: opts.gracePeriodMs,
      maxDeleted: opts.maxDeletedPods ?? 512,
    });
    this.#backoff = new Backoff({
      baseMs: opts.backoffBaseMs ?? 1000,
      maxMs: opts.backoffMaxMs ?? 30_000,
      random: opts.random,
    });
    this.#api = opts.kubeConfig.makeApiClient(CoreV1Api);
    const fieldSelector = `spec.nodeName=${opts.nodeName}`;
    const list = (): Promise<V1PodList> => this.#list(fieldSelector);
    const watch = new IdleWatch(opts.kubeConfig, {
      idleMs: opts.watchIdleMs ?? 180_000,
      stopped: () => this.#stopped,
      watching: () => this.#listed(),
      answered: () => {
        this.#backoff.reset();
        this.#failingSince = null;
      },
    });
    this.#informer = new ListWatch('/api/v1/pods', watch, list, false, undefined, fieldSelector);
    const upsert = (pod: V1Pod): void => this.#changed(() => this.#index.upsert(pod));
    this.#informer.on('add', upsert);
    this.#informer.on('update', upsert);
    this.#informer.on('delete', (pod) => this.#changed(() => this.#index.delete(pod)));
    this.#informer.on('error', this.#failed);
  }

  /** Starts listing and watching; resolves before the first sync (see {@link readiness}). */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#informer.start().catch(this.#failed);
  }

  /** Stops watching for good and cancels restart and grace timers. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
    this.#index.close();
  }

  byContainerId(id: string): PodInfo | undefined {
    return this.#index.byContainerId(id);
  }

  byPodUid(uid: string): PodInfo | undefined {
    return this.#index.byPodUid(uid);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Pods of this node currently cached (execwatch_pods). */
  get size(): number {
    return this.#index.size;
  }

  /** Restarts of the informer after errors since start. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Ready once the first list has been received, and until the API server has failed to answer
   * for `unreadyAfterMs`; otherwise, why not.
   */
  readiness(): { ready: boolean; reasons: string[] } {
    if (this.#synced) {
      const limit = this.#opts.unreadyAfterMs ?? 0;
      const downMs = this.#failingSince === null ? 0 : performance.now() - this.#failingSince;
      if (limit === 0 || downMs < limit) return { ready: true, reasons: [] };
      return {
        ready: false,
        reasons: [`pod watch: failing for ${formatDelay(Math.round(downMs))}, the cached pods may be out of date: ${this.#lastError}`],
      };
    }
    const reason = this.#lastError ?? `waiting for the first list of pods on node ${this.#opts.nodeName}`;
    return { ready: false, reasons: [`pod watch: ${reason}`] };
  }

  async #list(fieldSelector: string): Promise<V1PodList> {
    const items: V1Pod[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const page = await this.#api.listPodForAllNamespaces({
        fieldSelector,
        limit: this.#opts.pageSize ?? 500,
        _continue: cont,
      });
      items.push(...page.items);
      resourceVersion = page.metadata?.resourceVersion;
      cont = page.metadata?._continue || undefined;
    } while (cont);
    this.#failingSince = null;
    return { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion }, items };
  }

  #listed(): void {
    if (this.#synced) return;
    this.#synced = true;
    this.#lastError = null;
    this.#notify();
  }

  #changed(apply: () => void): void {
    apply();
    this.#notify();
  }

  /** One notification per burst of changes (a relist delivers every pod synchronously). */
  #notify(): void {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const listener of this.#listeners) listener();
    });
  }

  readonly #failed = (err: unknown): void => {
    if (this.#stopped) return;
    this.#failingSince ??= performance.now();
    const delay = this.#backoff.next();
    this.#lastError = `${describeError(err)} (retrying in ${formatDelay(delay)})`;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restarts += 1;
      this.#opts.metrics.kubeWatchRestart();
      this.#informer.start().catch(this.#failed);
    }, delay);
    this.#restartTimer.unref();
  };
}
