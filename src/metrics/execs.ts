/**
 * The series of execwatch_execs_total: label values from an event, the cap on the number of
 * series (overflow goes to "_other"), and removal of a deleted pod's series.
 */
import type { Counter } from 'prom-client';
import type { MetricLabel } from '../config.js';
import type { ExecEvent } from '../events/types.js';

/** Label value standing for every pod beyond the series cap. */
export const OTHER = '_other';

type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  /** namespace/pod owning the series, when the pod label makes it pod-specific. */
  podKey: string | null;
}

const podKeyOf = (namespace: string, pod: string): string => `${namespace}\u0000${pod}`;

/** Keeps execwatch_execs_total within `maxSeries` label sets. */
export class ExecSeries {
  private readonly series = new Map<string, Series>();
  private readonly byPod = new Map<string, Set<string>>();
  private readonly perPod: boolean;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: readonly MetricLabel[],
    private readonly maxSeries: number,
  ) {
    this.perPod = labels.includes('pod');
    // Expected series exist at zero before the first exec: those of host processes.
    for (const result of ['success', 'failure']) counter.inc(this.valuesOf(null, result), 0);
  }

  observe(event: ExecEvent): void {
    const result = event.retval === 0 ? 'success' : 'failure';
    // No pod (host process, or a container whose pod is unknown): the empty-label series.
    if (event.pod === null) {
      this.counter.inc(this.valuesOf(null, result));
      return;
    }
    const labels = this.valuesOf(event, result);
    const key = Object.values(labels).join('\u0000');
    if (!this.series.has(key)) {
      if (this.series.size >= this.maxSeries) {
        this.counter.inc(this.overflow(result));
        return;
      }
      const podKey = this.perPod ? podKeyOf(`${event.namespace}`, event.pod) : null;
      this.series.set(key, { labels, podKey });
      if (podKey !== null) {
        let keys = this.byPod.get(podKey);
        if (keys === undefined) this.byPod.set(podKey, (keys = new Set()));
        keys.add(key);
      }
    }
    this.counter.inc(labels);
  }

  /** Removes every series of a deleted pod (only when the pod label is kept). */
  forgetPod(namespace: string, pod: string): void {
    const podKey = podKeyOf(namespace, pod);
    const keys = this.byPod.get(podKey);
    if (keys === undefined) return;
    for (const key of keys) {
      const found = this.series.get(key) as Series;
      this.counter.remove(found.labels);
      this.series.delete(key);
    }
    this.byPod.delete(podKey);
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
