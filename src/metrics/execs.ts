/**
 * The series of execwatch_execs_total: label values from an event, the cap on the number of
 * series (overflow goes to "_other"), and removal of a deleted pod's series. Every series is a
 * prom-client Counter child; a container's children are cached by container id, so an exec of a
 * known container costs one cache lookup and one child inc(), with no label object built.
 */
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { MetricLabel } from '../config.js';
import type { ExecEvent, Workload } from '../events/schema.js';
import type { Tally } from './tally.js';

/** Label value standing for every pod beyond the series cap. */
export const OTHER = '_other';

type Labels = Record<string, string>;
type Child = Counter.Internal;
type Result = 'success' | 'failure';

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
interface Cached {
  namespace: string | null;
  pod: string;
  container: string | null;
  workload: Workload | null;
  success: Child | undefined;
  failure: Child | undefined;
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

/** Keeps execwatch_execs_total within `maxSeries` label sets. */
export class ExecSeries {
  /** Every series made for a pod, by its label values joined. */
  private readonly series = new Map<string, Series>();
  private readonly cache = new LRUCache<string, Cached>({ max: CACHED_CONTAINERS });
  private readonly perPod: boolean;
  /** The empty-label children (host processes, unresolved pods) and the overflow ones. */
  private readonly host: Record<Result, Child>;
  private readonly other: Record<Result, Child>;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: readonly MetricLabel[],
    private readonly maxSeries: number,
    /** Where exec counts wait for the next scrape (the counter's collect flushes it). */
    private readonly tally: Tally,
  ) {
    this.perPod = labels.includes('pod');
    this.host = {
      success: counter.labels(this.valuesOf(null, 'success')),
      failure: counter.labels(this.valuesOf(null, 'failure')),
    };
    this.other = {
      success: counter.labels(this.overflow('success')),
      failure: counter.labels(this.overflow('failure')),
    };
    // Expected series exist at zero before the first exec: those of host processes.
    this.host.success.inc(0);
    this.host.failure.inc(0);
  }

  observe(event: ExecEvent): void {
    const failed = event.retval !== 0;
    // No pod (host process, or a container whose pod is unknown): the empty-label series.
    if (event.pod === null) {
      this.tally.add(failed ? this.host.failure : this.host.success);
      return;
    }
    // An event with a pod has a container id (the cgroup named it); '' would do as well.
    const id = event.containerId ?? '';
    let cached = this.cache.get(id);
    if (
      cached === undefined || cached.pod !== event.pod || cached.namespace !== event.namespace ||
      cached.container !== event.container || !sameWorkload(cached.workload, event.workload)
    ) {
      cached = { namespace: event.namespace, pod: event.pod, container: event.container, workload: event.workload, success: undefined, failure: undefined };
      this.cache.set(id, cached);
    }
    let child = failed ? cached.failure : cached.success;
    if (child === undefined) {
      child = this.find(event, cached.pod, failed ? 'failure' : 'success');
      if (failed) cached.failure = child;
      else cached.success = child;
    }
    this.tally.add(child);
  }

  /** The child of an event with a pod: its series', a new series', or the overflow one. */
  private find(event: ExecEvent, pod: string, result: Result): Child {
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
    const stale: string[] = [];
    for (const [id, cached] of this.cache.entries()) {
      const { success, failure } = cached;
      if (
        (success !== undefined && (removed.has(success) || success === this.other.success)) ||
        (failure !== undefined && (removed.has(failure) || failure === this.other.failure))
      ) {
        stale.push(id);
      }
    }
    for (const id of stale) this.cache.delete(id);
  }

  private valuesOf(event: ExecEvent | null, result: Result): Labels {
    const labels: Labels = {};
    for (const name of this.labels) {
      if (name === 'workload') {
        const workload = event?.workload;
        labels.workload = workload ? `${workload.kind}/${workload.name}` : '';
      } else {
        labels[name] = event?.[name] ?? '';
      }
    }
    labels.result = result;
    return labels;
  }

  private overflow(result: Result): Labels {
    const labels: Labels = {};
    for (const name of this.labels) labels[name] = OTHER;
    labels.result = result;
    return labels;
  }
}
