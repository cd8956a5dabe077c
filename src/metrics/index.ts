/**
 * The agent's Prometheus metrics (DESIGN.md "Metrics"), in an app-owned registry. Kernel
 * counters and attach state are read in collect() at scrape time, never on a timer.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CaptureStats } from '../capture/tracer.js';
import type { MetricLabel } from '../config.js';
import { ATTRIBUTIONS, EXIT_STATUSES, type Attribution, type ExecEvent, type ExitEvent } from '../events/schema.js';
import { SCOPE_REASONS, type ScopeReason } from '../scope/table.js';
import { PodSeries, type PodFields } from './execs.js';
import { Tally } from './tally.js';

/** What the capture layer reports at scrape time: the tracer's own statistics. */
export type { CaptureStats } from '../capture/tracer.js';

export interface MetricsOptions {
  /** Pod-level labels kept on execwatch_execs_total (result is always kept). */
  labels: MetricLabel[];
  /** Cap on execwatch_execs_total series; beyond it pods count under "_other". */
  maxSeries: number;
  version: string;
  /** Kernel release (uname -r). */
  kernel: string;
  /** Read at every scrape; may throw (e.g. tracer closed): the previous values then stand. */
  captureStats: () => CaptureStats;
  podCount?: () => number;
  /** Bytes waiting in the kernel ring buffer for delivery, read at every scrape. */
  ringbufWaitingBytes?: () => number;
  /** The ring buffer's size (--ringbuf-bytes), so alerts can compare the bytes waiting with it. */
  ringbufBytes?: number;
  /** Events waiting for their pod, read at every scrape. */
  enrichmentWaiting?: () => number;
  /** Records waiting in the OTLP export queue (0 without export). */
  exportQueueLength?: () => number;
  /** Cgroups in the kernel's scope table by reason, read at every scrape. */
  scopeCgroups?: () => Readonly<Record<ScopeReason, number>>;
  /**
   * Reads the kernel's counts by cgroup now (they come back through throttled() and lostBy()),
   * at every scrape before the throttled and lost-by-pod series are read.
   */
  readCgroups?: () => void;
}

/** Every stage label of execwatch_events_lost_total; all exist at 0 from the start. */
export const LOST_STAGES = [
  'ringbuf_full',
  'state_map_full',
  'process_map_full',
  'decode_error',
  'pipeline_error',
  'subscriber_overflow',
  'log_overflow',
  'export_overflow',
  'export_error',
  'export_shutdown',
] as const;
export type LostStage = (typeof LOST_STAGES)[number];

/** The result label of execwatch_enrichment_total: the event's `attribution`. */
export const ENRICHMENT_RESULTS = ATTRIBUTIONS;
export type EnrichmentResult = Attribution;

/** Buckets of execwatch_event_delay_seconds: 1 ms to 5 s. */
export const DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/** What the pipeline records into. */
export interface Metrics {
  registry: Registry;
  /** Counts one exec (execs_total, argv_truncated_total). */
  observeExec(event: ExecEvent): void;
  /** Counts one `exec` or `debug` session opened: a process entering a container (sessions_total). */
  sessionOpened(event: ExecEvent): void;
  /** Counts one exit (exits_total). */
  observeExit(event: ExitEvent): void;
  /** Kernel timestamp → user space delay of one event. */
  eventDelay(seconds: number): void;
  enrichment(result: EnrichmentResult): void;
  /** Counts lost events of a user-space stage (kernel stages are read at scrape). */
  lost(stage: LostStage, n?: number): void;
  kubeWatchRestart(): void;
  /** One OTLP export request's outcome: its records sent, or lost (stage export_error). */
  exportBatch(records: number, ok: boolean): void;
  /** Drops a deleted pod's execs_total series (call after the grace period). */
  forgetPod(namespace: string, pod: string): void;
  /** Counts one out-of-scope event (an exec, or a process's exit) dropped in user space (the kernel's are read at scrape). */
  excludedLate(reason: ScopeReason): void;
  /** Counts one event dropped by the agent's own choice: --exclude-origin. */
  excluded(reason: 'origin'): void;
  /** Counts `n` execs of a pod's cgroup throttled in the kernel (events_throttled_total). */
  throttled(pod: PodFields, n: number): void;
  /** Counts `n` events of a pod's cgroup lost to a full ring buffer (events_lost_by_pod_total). */
  lostBy(pod: PodFields, n: number): void;
}

/** Adds to `counter` what an absolute, monotonic reading grew by since the last one. */
function follow(): (counter: Counter<string>, labels: Record<string, string>, value: number) => void {
  const last = new Map<string, number>();
  return (counter, labels, value) => {
    const key = Object.values(labels).join('\u0000');
    const delta = value - (last.get(key) ?? 0);
    if (delta > 0) {
      counter.inc(labels, delta);
      last.set(key, value);
    }
  };
}

/** Builds the registry and every execwatch_* family, expected series at zero. */
export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  let stats: CaptureStats | null = null;
  const readStats = (): CaptureStats | null => {
    try {
      stats = opts.captureStats();
    } catch {
      // Keep the last reading: a scrape must not fail because the tracer is going away.
    }
    return stats;
  };
  const advance = follow();
  // Its own follower: readings are keyed by label values, and {} is also argv_read_errors' key.
  const advanceEvents = follow();
  const advanceExcluded = follow();

  // The per-event counters' counts wait here between scrapes; each of those counters flushes it
  // when collected.
  const tally = new Tally();
  const execs = new Counter({
    name: 'execwatch_execs_total',
    help: 'Program executions seen, by pod and result (success or failure).',
    labelNames: [...opts.labels, 'result'],
    registers,
    collect: () => tally.flush(),
  });
  const series = new PodSeries(execs, opts.labels, opts.maxSeries, 'result', ['success', 'failure'] as const, tally);
  const exits = new Counter({
    name: 'execwatch_exits_total',
    help: 'Ends of processes whose exec was seen, by pod and status (ok: exit code 0, error: another code, signal).',
    labelNames: [...opts.labels, 'status'],
    registers,
    collect: () => tally.flush(),
  });
  const exitSeries = new PodSeries(exits, opts.labels, opts.maxSeries, 'status', EXIT_STATUSES, tally);
  // Per container, without origin: what ran there that its image does not hold.
  const podLabels = opts.labels.filter((label) => label !== 'origin');
  const driftExecs = new Counter({
    name: 'execwatch_drift_execs_total',
    help: 'Execs of a file not from the container\'s image, by pod and kind: drift (on the overlay\'s upper, writable layer) or fileless (no link in any directory: a memfd, a deleted file).',
    labelNames: [...podLabels, 'kind'],
    registers,
    collect: () => tally.flush(),
  });
  const driftSeries = new PodSeries(driftExecs, podLabels, opts.maxSeries, 'kind', ['drift', 'fileless'] as const, tally);
  const sessions = new Counter({
    name: 'execwatch_sessions_total',
    help: 'Sessions opened in a container, by pod and origin: exec (a process entering it from outside its pid namespace, as kubectl exec does) or debug (an ephemeral container\'s first process).',
    labelNames: [...podLabels, 'origin'],
    registers,
    collect: () => tally.flush(),
  });
  const sessionSeries = new PodSeries(sessions, podLabels, opts.maxSeries, 'origin', ['exec', 'debug'] as const, tally);

  const lostTotal = new Counter({
    name: 'execwatch_events_lost_total',
    help: 'Events (execs and exits) lost, by the stage that lost them.',
    labelNames: ['stage'] as const,
    registers,
    collect() {
      const now = readStats();
      if (now === null) return;
      advance(this, { stage: 'ringbuf_full' }, now.counters.ringbuf_full);
      advance(this, { stage: 'state_map_full' }, now.counters.state_map_full);
      advance(this, { stage: 'process_map_full' }, now.counters.process_map_full);
      advance(this, { stage: 'decode_error' }, now.decodeErrors);
      advance(this, { stage: 'pipeline_error' }, now.pipelineErrors);
    },
  });
  // Every stage's child made (and its series set to 0) up front: a loss picks it by key.
  const lostIn = Object.fromEntries(
    LOST_STAGES.map((stage) => {
      const child = lostTotal.labels({ stage });
      child.inc(0);
      return [stage, child];
    }),
  ) as Record<LostStage, Counter.Internal>;

  // The kernel's exclusions are read at scrape; the agent's (events of cgroups the kernel table did
  // not list yet) are added as they happen, and counted as late besides.
  const excludedTotal = new Counter({
    name: 'execwatch_events_excluded_total',
    help: 'Events left out on purpose, dropped and not delivered, by reason: execs out of scope (host: --exclude-host, namespace: --include-namespaces and --exclude-namespaces, pod: --exclude-pods), execs and exits of an origin given to --exclude-origin (origin).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      const now = readStats();
      if (now === null) return;
      advanceExcluded(this, { reason: 'host' }, now.counters.excluded_host);
      advanceExcluded(this, { reason: 'namespace' }, now.counters.excluded_namespace);
      advanceExcluded(this, { reason: 'pod' }, now.counters.excluded_pod);
    },
  });
  for (const reason of Object.keys(SCOPE_REASONS)) excludedTotal.labels({ reason }).inc(0);
  const excludedByOrigin = excludedTotal.labels({ reason: 'origin' });
  excludedByOrigin.inc(0);
  const excludedLate = new Counter({
    name: 'execwatch_scope_late_total',
    help: 'Out-of-scope events dropped by the agent rather than the kernel (also in execwatch_events_excluded_total): execs of cgroups the kernel\'s scope table did not list yet, and exits of processes that end out of scope (the kernel reports the end of every process whose exec it reported).',
    registers,
  });
  new Gauge({
    name: 'execwatch_scope_cgroups',
    help: 'Cgroups in the kernel\'s scope table, by reason: pod cgroups out of scope (namespace, pod) and host cgroups (host).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      const now = opts.scopeCgroups?.();
      for (const reason of Object.keys(SCOPE_REASONS) as ScopeReason[]) this.set({ reason }, now?.[reason] ?? 0);
    },
  });

  // Both by pod, from the kernel's counts by cgroup: read at scrape, and every second by the agent
  // (which finds the ends of throttle episodes and the gaps there).
  const readCgroups = () => {
    try {
      opts.readCgroups?.();
    } catch {
      // The tracer is going away: what was read before stands.
    }
  };
  const byPod = ['namespace', 'pod'] as const;
  const throttledTotal = new Counter({
    name: 'execwatch_events_throttled_total',
    help: 'Execs of a cgroup above --cgroup-rate, counted and not delivered, by pod (beyond --max-series pods: pod="_other").',
    labelNames: byPod,
    registers,
    collect() {
      readCgroups();
      tally.flush();
    },
  });
  const throttledSeries = new PodSeries(throttledTotal, [...byPod], opts.maxSeries, null, [''] as const, tally);
  const lostByPod = new Counter({
    name: 'execwatch_events_lost_by_pod_total',
    help: 'Events lost to a full ring buffer (stage ringbuf_full), by the pod whose event it was (beyond --max-series pods: pod="_other").',
    labelNames: byPod,
    registers,
    collect() {
      readCgroups();
      tally.flush();
    },
  });
  const lostSeries = new PodSeries(lostByPod, [...byPod], opts.maxSeries, null, [''] as const, tally);

  // Registered after execs_total, exits_total and events_lost_total, so collected after them in a
  // scrape: the kernel count read here is never older than the deliveries and losses read there,
  // and sum(execs_total) + sum(exits_total) + the stages lost past the kernel's emit (+ the
  // excluded and throttled execs) equals it once the ring is drained.
  new Counter({
    name: 'execwatch_kernel_events_total',
    help: 'Events (execs and exits) the kernel programs saw: delivered, lost at a stage, or excluded as out of scope.',
    registers,
    collect() {
      const now = readStats();
      if (now !== null) advanceEvents(this, {}, now.counters.events);
    },
  });

  const truncated = new Counter({
    name: 'execwatch_argv_truncated_total',
    help: 'Exec events whose argv exceeded the byte budget and was cut.',
    registers,
  });
  new Counter({
    name: 'execwatch_argv_read_errors_total',
    help: 'Exec events whose argv or filename could not be read completely by the kernel.',
    registers,
    collect() {
      const now = readStats();
      if (now !== null) advance(this, {}, now.counters.argv_read_error);
    },
  });

  const enrichment = new Counter({
    name: 'execwatch_enrichment_total',
    help: 'Exec events by enrichment outcome (the event\'s attribution): pod, host, unresolved or conflict.',
    labelNames: ['result'] as const,
    registers,
    collect: () => tally.flush(),
  });
  // One child per outcome, made (and its series set to 0) up front: an event picks it by key.
  const enriched = Object.fromEntries(
    ENRICHMENT_RESULTS.map((result) => {
      const child = enrichment.labels({ result });
      child.inc(0);
      return [result, child];
    }),
  ) as Record<EnrichmentResult, Counter.Internal>;

  new Gauge({
    name: 'execwatch_pods',
    help: 'Pods in the agent cache.',
    registers,
    collect() {
      this.set(opts.podCount?.() ?? 0);
    },
  });

  new Gauge({
    name: 'execwatch_ringbuf_waiting_bytes',
    help: 'Bytes of records in the kernel ring buffer not consumed by the agent yet.',
    registers,
    collect() {
      this.set(opts.ringbufWaitingBytes?.() ?? 0);
    },
  });

  new Gauge({
    name: 'execwatch_ringbuf_size_bytes',
    help: 'Size of the kernel ring buffer (--ringbuf-bytes).',
    registers,
  }).set(opts.ringbufBytes ?? 0);

  new Gauge({
    name: 'execwatch_enrichment_waiting_events',
    help: 'Events of containers whose pod is not known yet, waiting for it.',
    registers,
    collect() {
      this.set(opts.enrichmentWaiting?.() ?? 0);
    },
  });

  const restarts = new Counter({
    name: 'execwatch_kube_watch_restarts_total',
    help: 'Restarts of the pod informer after it stopped on an error.',
    registers,
  });

  const seenPrograms = new Set<string>();
  new Gauge({
    name: 'execwatch_bpf_attached',
    help: 'Whether each BPF program is attached (1) or not (0, also for programs this kernel cannot use).',
    labelNames: ['program'] as const,
    registers,
    collect() {
      const now = readStats();
      if (now === null) return;
      // A program seen once stays as a 0 series when detached, so alerts can see it drop; one this
      // kernel has nothing for is a 0 series from the start.
      for (const program of [...now.attached, ...now.unavailable]) seenPrograms.add(program);
      for (const program of seenPrograms) {
        this.set({ program }, now.attached.includes(program) ? 1 : 0);
      }
    },
  });

  const delay = new Histogram({
    name: 'execwatch_event_delay_seconds',
    help: 'Delay from the kernel timestamp of an exec to its decoding in user space.',
    buckets: DELAY_BUCKETS,
    registers,
  });

  new Gauge({
    name: 'execwatch_build_info',
    help: 'Build and kernel of this agent; always 1.',
    labelNames: ['version', 'kernel'] as const,
    registers,
  }).set({ version: opts.version, kernel: opts.kernel }, 1);

  const exportRecords = new Counter({
    name: 'execwatch_export_records_total',
    help: 'Exec events the OTLP receiver accepted.',
    registers,
  });
  const exportBatches = new Counter({
    name: 'execwatch_export_batches_total',
    help: 'OTLP export requests by result: success, or failure (after the exporter\'s retries; their records count as lost, stage export_error).',
    labelNames: ['result'] as const,
    registers,
  });
  const batchesOk = exportBatches.labels({ result: 'success' });
  const batchesFailed = exportBatches.labels({ result: 'failure' });
  batchesOk.inc(0);
  batchesFailed.inc(0);
  new Gauge({
    name: 'execwatch_export_queue_length',
    help: 'Exec events waiting in the OTLP export queue.',
    registers,
    collect() {
      this.set(opts.exportQueueLength?.() ?? 0);
    },
  });
  const lastSuccess = new Gauge({
    name: 'execwatch_export_last_success_timestamp_seconds',
    help: 'When an OTLP export request last succeeded (Unix time); 0 before the first.',
    registers,
  });
  lastSuccess.set(0);

  // The event-loop-delay monitor is a timer: at prom-client's default 10 ms it woke an idle agent
  // 100 times a second (a third of its idle CPU); every 100 ms still samples a 15 s scrape 150 times.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  // prom-client names these gauges *_total, which promtool rejects; their per-type siblings
  // (nodejs_active_handles{type}, ...) carry the same numbers.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);

  return {
    registry,
    observeExec(event) {
      series.observe(event, event.retval === 0 ? 'success' : 'failure');
      if (event.argvTruncated) truncated.inc();
      if (event.fileless) driftSeries.observe(event, 'fileless');
      else if (event.drift) driftSeries.observe(event, 'drift');
    },
    sessionOpened: (event) => sessionSeries.observe(event, event.origin === 'debug' ? 'debug' : 'exec'),
    observeExit: (event) => exitSeries.observe(event, event.status),
    eventDelay: (seconds) => delay.observe(seconds),
    enrichment: (result) => tally.add(enriched[result]),
    lost: (stage, n = 1) => lostIn[stage].inc(n),
    kubeWatchRestart: () => restarts.inc(),
    exportBatch(records, ok) {
      if (ok) {
        batchesOk.inc();
        exportRecords.inc(records);
        lastSuccess.set(Date.now() / 1000);
      } else {
        batchesFailed.inc();
        lostIn.export_error.inc(records);
      }
    },
    forgetPod(namespace, pod) {
      series.forgetPod(namespace, pod);
      exitSeries.forgetPod(namespace, pod);
      driftSeries.forgetPod(namespace, pod);
      sessionSeries.forgetPod(namespace, pod);
      throttledSeries.forgetPod(namespace, pod);
      lostSeries.forgetPod(namespace, pod);
    },
    excludedLate(reason) {
      excludedTotal.inc({ reason });
      excludedLate.inc();
    },
    excluded: () => excludedByOrigin.inc(),
    throttled: (pod, n) => throttledSeries.observe(pod, '', n),
    lostBy: (pod, n) => lostSeries.observe(pod, '', n),
  };
}
