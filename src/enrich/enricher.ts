/**
 * Fills the pod fields of each event (exec or exit) from its cgroup names and the pod cache, before the event
 * reaches the store, stream, metrics and log. A new container's first execs usually come before
 * its pod status names the container id: those events wait (bounded in time, count and bytes) and
 * leave as soon as the pod cache learns the container, else at their deadline with what is known.
 * Nothing is dropped: when the waiting room is full, the oldest waiting event leaves early.
 */
import type { KernelEvent } from '../events/schema.js';
import type { ContainerInfo, PodInfo, PodLookup } from '../kube/types.js';
import { CgroupCache, type CgroupIds } from './cgroup.js';
import { eventBytes, PendingQueue, type PendingEntry } from './pending.js';

import type { EnrichmentResult, Metrics } from '../metrics/index.js';

/** Label values of execwatch_enrichment_total (defined with the metric). */
export type { EnrichmentResult };

/** The part of src/metrics the enricher calls: counts one emitted event by how far it was enriched. */
export type EnrichMetrics = Pick<Metrics, 'enrichment'>;

/** Time source and the one timer of the waiting room (injectable for tests). */
export interface EnricherClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: EnricherClock = {
  now: () => performance.now(),
  // Unref'd: a waiting event must not keep a stopping agent alive; shutdown calls flush().
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Options of {@link Enricher}. */
export interface EnricherOptions {
  /** Null in standalone mode: events then get their container id only, at once. */
  podCache: PodLookup | null;
  /** How long an event of an unknown container waits, in milliseconds (Config.enrichWaitMs). */
  waitMs: number;
  /** Most events waiting at once. */
  maxPending: number;
  /** Most bytes (estimated) waiting at once; default 16 MiB. */
  maxPendingBytes?: number;
  metrics: EnrichMetrics;
  /** Receives every event exactly once, enriched or not. */
  emit: (event: KernelEvent) => void;
  clock?: EnricherClock;
}

interface Match {
  pod: PodInfo;
  container: ContainerInfo | null;
}

/** What the cgroup names resolve to: a pod, nothing known yet, or two pods' claims at once. */
type Resolution = Match | undefined | 'conflict';

/**
 * The pod of a container, checked against where its cgroup sits. The container id alone is a
 * name that any pod able to write cgroupfs can give a directory of its own; the pod UID in the
 * parent's name (or the container the parent names) must then be the same pod's. A static pod's
 * config hash resolves through byPodUid to its mirror pod, so it passes.
 */
function resolve(lookup: PodLookup, ids: CgroupIds): Resolution {
  const pod = lookup.byContainerId(ids.containerId);
  if (pod) {
    if (ids.podUid !== null && lookup.byPodUid(ids.podUid) !== pod) return 'conflict';
    if (ids.enclosingContainerId !== null && lookup.byContainerId(ids.enclosingContainerId) !== pod) return 'conflict';
    // A pod found by container id always names that container.
    return { pod, container: pod.containers.get(ids.containerId) as ContainerInfo };
  }
  const byUid = ids.podUid === null ? undefined : lookup.byPodUid(ids.podUid);
  return byUid ? { pod: byUid, container: null } : undefined;
}

/** Enriches events in the order given and hands them to `emit`; see the module comment. */
export class Enricher {
  readonly #opts: EnricherOptions;
  readonly #clock: EnricherClock;
  readonly #maxBytes: number;
  readonly #cgroups = new CgroupCache();
  readonly #queue = new PendingQueue();
  #timer: unknown = undefined;
  #overflowed = 0;

  constructor(opts: EnricherOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#maxBytes = opts.maxPendingBytes ?? 16 * 1024 * 1024;
    opts.podCache?.onChange?.(() => this.#retry());
  }

  /** Events waiting for their pod. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Events that left the waiting room early because it was full. */
  get overflowed(): number {
    return this.#overflowed;
  }

  push(event: KernelEvent): void {
    const ids = this.#cgroups.lookup(event.cgroupId, event.cgroup, event.cgroupParent);
    if (ids === null) {
      this.#fill(event, null, undefined);
      return;
    }
    const lookup = this.#opts.podCache;
    const found = lookup ? resolve(lookup, ids) : undefined;
    if (!lookup || found === 'conflict' || found?.container != null || this.#opts.waitMs <= 0 || this.#opts.maxPending <= 0) {
      // Earlier events of this container resolve the same way and must leave first.
      if (found && this.#queue.has(ids.containerId)) {
        for (const entry of this.#queue.extract((e) => e.ids.containerId === ids.containerId)) this.#finish(entry);
      }
      this.#fill(event, ids, found);
      return;
    }
    const bytes = eventBytes(event);
    while (this.#queue.length > 0 && (this.#queue.length >= this.#opts.maxPending || this.#queue.bytes + bytes > this.#maxBytes)) {
      this.#overflowed += 1;
      this.#finish(this.#queue.shift() as PendingEntry);
    }
    this.#queue.push({ event, ids, deadline: this.#clock.now() + this.#opts.waitMs, bytes });
    if (this.#timer === undefined) this.#arm();
  }

  /** Emits every waiting event now, in order, with what is known (shutdown). */
  flush(): void {
    this.#disarm();
    for (let entry = this.#queue.shift(); entry; entry = this.#queue.shift()) this.#finish(entry);
  }

  /** The pod cache changed: let out, in order, the events whose container it now names. */
  #retry(): void {
    const lookup = this.#opts.podCache as PodLookup;
    const ready = this.#queue.extract((entry) => {
      const found = resolve(lookup, entry.ids);
      return found === 'conflict' || found?.container != null;
    });
    for (const entry of ready) this.#finish(entry);
  }

  #finish(entry: PendingEntry): void {
    const lookup = this.#opts.podCache as PodLookup;
    this.#fill(entry.event, entry.ids, resolve(lookup, entry.ids));
  }

  #fill(event: KernelEvent, ids: CgroupIds | null, found: Resolution): void {
    const match = found === 'conflict' ? undefined : found;
    event.containerId = ids?.containerId ?? null;
    event.namespace = match?.pod.namespace ?? null;
    event.pod = match?.pod.name ?? null;
    event.podUid = match?.pod.uid ?? null;
    event.container = match?.container?.name ?? null;
    event.image = match?.container?.image ?? null;
    event.imageId = match?.container?.imageId ?? null;
    // Shared with the pod index, which replaces a pod's info on update and never changes it.
    event.workload = match?.pod.workload ?? null;
    event.attribution = ids === null ? 'host' : found === 'conflict' ? 'conflict' : match ? 'pod' : 'unresolved';
    // execwatch_enrichment_total counts execs: an exit is enriched as its exec was.
    if (event.kind === 'exec') this.#opts.metrics.enrichment(event.attribution);
    this.#opts.emit(event);
  }

  #arm(): void {
    const head = this.#queue.peek() as PendingEntry;
    const delay = Math.max(0, head.deadline - this.#clock.now());
    this.#timer = this.#clock.setTimeout(() => this.#expire(), delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The one timer: lets out every event past its deadline, then waits for the next one. */
  #expire(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    for (let head = this.#queue.peek(); head && head.deadline <= now; head = this.#queue.peek()) {
      this.#finish(this.#queue.shift() as PendingEntry);
    }
    if (this.#queue.length > 0) this.#arm();
  }
}
