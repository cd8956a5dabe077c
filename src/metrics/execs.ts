/**
 * The series of execwatch_execs_total and execwatch_exits_total (one PodSeries each): label
 * values from an event, the cap on the number of series (overflow goes to "_other"), and removal
 * of a deleted pod's series. Every series is a prom-client Counter child; a container's children
 * are cached by container id, so an event of a known container costs one cache lookup and one
 * addition to the Tally that hands the counts to prom-client at scrape, with no label object built.
 */
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { MetricLabel } from '../config.js';
import { workloadText } from '../events/filter.js';
import type { Origin, Workload } from '../events/schema.js';
import type { Tally } from './tally.js';

/** Label value standing for every pod beyond the series cap. */
export const OTHER = '_other';

type Labels = Record<string, string>;
type Child = Counter.Internal;

/** What the labels are read from: an exec or an exit event. */
export type PodFields = {
  readonly containerId: string | null;
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  readonly workload: Workload | null;
  /** Absent for what has no process (a throttle, a loss): its origin label is then empty. */
  readonly origin?: Origin;
};

/**
 * A series that exists: its child, and the pod that made it (forgetPod removes it with that pod).
 * Kept while the series exists; their number is what the cap counts.
 */
interface Series {
  child: Child;
  labels: Labels;
  namespace: string | null;
  pod: string;
}

/**
 * A container's children, and the label values of the event they were found for: an event whose
 * values are these uses the children as they are; any other event looks up again.
 */
interface Cached<R extends string> {
  namespace: string | null;
  pod: string;
  container: string | null;
  workload: Workload | null;
  /** By result, or by origin and result when the origin label is kept (childKey). */
  children: Partial<Record<string, Child>>;
}

/**
 * Most containers whose children are cached: far more than one node runs. One rule, least
 * recently used goes first; an evicted container only loses the shortcut (its counts are in
 * prom-client, and its series are found again by their labels).
 */
const CACHED_CONTAINERS = 4096;

/** Whether two workloads name the same controller. */
const sameWorkload = (a: Workload | null, b: Workload | null): boolean =>
  a === b || (a !== null && b !== null && a.kind === b.kind && a.name === b.name);

/**
 * Keeps one counter within `maxSeries` label sets: the pod labels, plus `resultLabel` with one of
 * `results` (execs_total's result, exits_total's status), or without one when `resultLabel` is
 * null (events_throttled_total, events_lost_by_pod_total: `results` is then one placeholder).
 */
export class PodSeries<R extends string> {
  /** Every series made for a pod, by its label values joined. */
  private readonly series = new Map<string, Series>();
  private readonly cache = new LRUCache<string, Cached<R>>({ max: CACHED_CONTAINERS });
  private readonly perPod: boolean;
  private readonly perOrigin: boolean;
  /** The empty-pod-label children (host processes, unresolved pods), by childKey, and the overflow ones. */
  private readonly host = new Map<string, Child>();
  private readonly other: Record<R, Child>;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: readonly MetricLabel[],
    private readonly maxSeries: number,
    private readonly resultLabel: string | null,
    results: readonly R[],
    /** Where the counts wait for the next scrape (the counter's collect flushes it). */
    private readonly tally: Tally,
  ) {
    this.perPod = labels.includes('pod');
    this.perOrigin = labels.includes('origin');
    this.other = Object.fromEntries(results.map((r) => [r, counter.labels(this.overflow(r))])) as Record<R, Child>;
    // Expected series exist at zero before the first event: those of host processes.
    for (const r of results) this.hostChild('host', r).inc(0);
  }

  /** Where a container's children are cached: the result, with the origin before it when that is a label. */
  private childKey(origin: Origin | undefined, result: R): string {
    return this.perOrigin ? `${origin}\u0000${result}` : result;
  }

  /** The child of an event without a pod, by origin (when a label) and result. */
  private hostChild(origin: Origin | undefined, result: R): Child {
    const key = this.childKey(origin, result);
    let child = this.host.get(key);
    if (child === undefined) {
      child = this.counter.labels(this.valuesOf({ containerId: null, namespace: null, pod: null, container: null, workload: null, origin }, result));
      this.host.set(key, child);
    }
    return child;
  }

  /** Counts `n` (default one) events of `event`'s pod. */
  observe(event: PodFields, result: R, n = 1): void {
    // No pod (host process, or a container whose pod is unknown): the empty-pod-label series.
    if (event.pod === null) {
      this.tally.add(this.hostChild(event.origin, result), n);
      return;
    }
    // An event with a pod has a container id (the cgroup named it); '' would do as well.
    const id = event.containerId ?? '';
    let cached = this.cache.get(id);
    if (
      cached === undefined || cached.pod !== event.pod || cached.namespace !== event.namespace ||
      cached.container !== event.container || !sameWorkload(cached.workload, event.workload)
    ) {
      cached = { namespace: event.namespace, pod: event.pod, container: event.container, workload: event.workload, children: {} };
      this.cache.set(id, cached);
    }
    const key = this.childKey(event.origin, result);
    let child = cached.children[key];
    if (child === undefined) {
      child = this.find(event, cached.pod, result);
      cached.children[key] = child;
    }
    this.tally.add(child, n);
  }

  /** The child of an event with a pod: its series', a new series', or the overflow one. */
  private find(event: PodFields, pod: string, result: R): Child {
    // Only a container's first exec of a result (or one with new label strings) gets here.
    const labels = this.valuesOf(event, result);
    const key = Object.values(labels).join('\u0000');
    const found = this.series.get(key);
    if (found !== undefined) return found.child;
    if (this.series.size >= this.maxSeries) return this.other[result];
    const child = this.counter.labels(labels);
    this.series.set(key, { child, labels, namespace: event.namespace, pod });
    return child;
  }

  /** Removes every series of a deleted pod (only when the pod label is kept). */
  forgetPod(namespace: string, pod: string): void {
    if (!this.perPod) return;
    const removed = new Set<Child>();
    for (const [key, found] of this.series) {
      if (found.pod !== pod || found.namespace !== namespace) continue;
      this.tally.drop(found.child);
      this.counter.remove(found.labels);
      this.series.delete(key);
      removed.add(found.child);
    }
    if (removed.size === 0) return;
    // A removed child's inc() would bring its series back, outside the cap and never removed
    // again; and a container counting under "_other" may now have room of its own. Neither kind
    // of cached container may be handed back.
    const others = new Set<Child>(Object.values(this.other));
    const stale: string[] = [];
    for (const [id, cached] of this.cache.entries()) {
      if (Object.values<Child | undefined>(cached.children).some((child) => child !== undefined && (removed.has(child) || others.has(child)))) {
        stale.push(id);
      }
    }
    for (const id of stale) this.cache.delete(id);
  }

  private valuesOf(event: PodFields, result: R): Labels {
    const labels: Labels = {};
    for (const name of this.labels) {
      if (name === 'workload') {
        labels.workload = workloadText(event.workload) ?? '';
      } else {
        labels[name] = event[name] ?? '';
      }
    }
    if (this.resultLabel !== null) labels[this.resultLabel] = result;
    return labels;
  }

  private overflow(result: R): Labels {
    const labels: Labels = {};
    for (const name of this.labels) labels[name] = OTHER;
    if (this.resultLabel !== null) labels[this.resultLabel] = result;
    return labels;
  }
}
