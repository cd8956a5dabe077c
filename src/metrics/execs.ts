/**
 * The series of execwatch_execs_total: label values from an event, the cap on the number of
 * series (overflow goes to "_other"), and removal of a deleted pod's series. Counts accumulate
 * in plain numbers and reach prom-client at scrape time (flush(), from the counter's collect()):
 * an exec storm then costs a Map lookup per event, not prom-client's label hashing.
 */
import type { Counter } from 'prom-client';
import type { MetricLabel } from '../config.js';
import type { ExecEvent, Workload } from '../events/schema.js';

/** Label value standing for every pod beyond the series cap. */
export const OTHER = '_other';

type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  /** namespace/pod owning the series, when the pod label makes it pod-specific. */
  podKey: string | null;
  /** Execs counted since the last flush. */
  pending: number;
}

const podKeyOf = (namespace: string, pod: string): string => `${namespace}\u0000${pod}`;

/** A container's series, and the label strings of the event they were found for. */
interface Known {
  namespace: string | null;
  pod: string;
  container: string | null;
  workload: Workload | null;
  success: Series | undefined;
  failure: Series | undefined;
}

/** Most containers whose series are remembered: far more than one node runs. */
const KNOWN_MAX = 4096;

/** Keeps execwatch_execs_total within `maxSeries` label sets. */
export class ExecSeries {
  private readonly series = new Map<string, Series>();
  /**
   * Series by container id. The enricher gives every event of a container the same strings
   * (the cgroup's id text, the pod index's names), so an event whose strings are those its
   * container's series were found with skips building the key; any other event looks up again.
   */
  private readonly known = new Map<string, Known>();
  private readonly byPod = new Map<string, Set<string>>();
  private readonly perPod: boolean;
  /** The empty-label series (host processes, unresolved pods) and the overflow ones. */
  private readonly host: { success: Series; failure: Series };
  private readonly other: { success: Series; failure: Series };

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: readonly MetricLabel[],
    private readonly maxSeries: number,
  ) {
    this.perPod = labels.includes('pod');
    const fixed = (labels: Labels): Series => ({ labels, podKey: null, pending: 0 });
    this.host = { success: fixed(this.valuesOf(null, 'success')), failure: fixed(this.valuesOf(null, 'failure')) };
    this.other = { success: fixed(this.overflow('success')), failure: fixed(this.overflow('failure')) };
    // Expected series exist at zero before the first exec: those of host processes.
    counter.inc(this.host.success.labels, 0);
    counter.inc(this.host.failure.labels, 0);
  }

  observe(event: ExecEvent): void {
    const failed = event.retval !== 0;
    // No pod (host process, or a container whose pod is unknown): the empty-label series.
    if (event.pod === null) {
      (failed ? this.host.failure : this.host.success).pending += 1;
      return;
    }
    // An event with a pod has a container id (the cgroup named it); '' would do as well.
    const id = event.containerId ?? '';
    let known = this.known.get(id);
    if (
      known === undefined || known.pod !== event.pod || known.namespace !== event.namespace ||
      known.container !== event.container || known.workload !== event.workload
    ) {
      known = { namespace: event.namespace, pod: event.pod, container: event.container, workload: event.workload, success: undefined, failure: undefined };
      if (this.known.size >= KNOWN_MAX) this.known.clear();
      this.known.set(id, known);
    }
    let found = failed ? known.failure : known.success;
    if (found === undefined) {
      found = this.find(event, failed ? 'failure' : 'success');
      if (failed) known.failure = found;
      else known.success = found;
    }
    found.pending += 1;
  }

  /** The series of an event with a pod: found by its label values, made, or the overflow one. */
  private find(event: ExecEvent, result: 'success' | 'failure'): Series {
    // Only a container's first exec (or one with new label strings) gets here: the labels object
    // is built to look the series up and kept if it is new.
    const labels = this.valuesOf(event, result);
    const key = Object.values(labels).join('\u0000');
    let found = this.series.get(key);
    if (found !== undefined) return found;
    if (this.series.size >= this.maxSeries) return this.other[result];
    const podKey = this.perPod ? podKeyOf(`${event.namespace}`, `${event.pod}`) : null;
    found = { labels, podKey, pending: 0 };
    this.series.set(key, found);
    if (podKey !== null) {
      let keys = this.byPod.get(podKey);
      if (keys === undefined) this.byPod.set(podKey, (keys = new Set()));
      keys.add(key);
    }
    return found;
  }

  /** Hands the counts accumulated since the last call to prom-client (at scrape time). */
  flush(): void {
    for (const fixed of [this.host, this.other]) {
      this.add(fixed.success);
      this.add(fixed.failure);
    }
    for (const found of this.series.values()) this.add(found);
  }

  /** Removes every series of a deleted pod (only when the pod label is kept). */
  forgetPod(namespace: string, pod: string): void {
    const podKey = podKeyOf(namespace, pod);
    const keys = this.byPod.get(podKey);
    if (keys === undefined) return;
    // Containers may point at the removed series, or at "_other" while a slot is now free.
    this.known.clear();
    for (const key of keys) {
      const found = this.series.get(key) as Series;
      this.counter.remove(found.labels);
      this.series.delete(key);
    }
    this.byPod.delete(podKey);
  }

  private add(found: Series): void {
    if (found.pending === 0) return;
    this.counter.inc(found.labels, found.pending);
    found.pending = 0;
  }

  private valuesOf(event: ExecEvent | null, result: string): Labels {
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

  private overflow(result: string): Labels {
    const labels: Labels = {};
    for (const name of this.labels) labels[name] = OTHER;
    labels.result = result;
    return labels;
  }
}
