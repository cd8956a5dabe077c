/**
 * The data path after capture, wired in one place for the agent and the benchmark: redact →
 * enrich → deliver (seq given here) → the recent-events ring, the live stream, the metrics and
 * the --log-events lines and the OTLP exporter. Out-of-scope events the kernel let through are
 * dropped (and counted) once their pod is known, before delivery. Each arrow goes one way.
 */
import type { Writable } from 'node:stream';
import type { EventSink } from './capture/tracer.js';
import type { Config } from './config.js';
import { Enricher } from './enrich/enricher.js';
import { classifyOrigin } from './enrich/origin.js';
import { createRedactor } from './events/redact.js';
import { ProcessTable } from './events/processes.js';
import { eventRecord, withExit } from './events/record.js';
import type { CgroupGrowth } from './capture/cgroup-stats.js';
import type { CgroupPod } from './enrich/cgroup-pods.js';
import { ExcludedHistory, type KernelExcluded } from './events/excluded.js';
import { Gaps } from './events/gaps.js';
import { formatTime, type AgentEvent, type ExecEvent, type ExecExit, type ExitEvent } from './events/schema.js';
import { Throttles } from './events/throttles.js';
import { NO_EXPORT, type EventExporter } from './export/exporter.js';
import { EventStore } from './events/store.js';
import { EventHub } from './events/stream.js';
import type { ContainerInfo, PodLookup } from './kube/types.js';
import { OTHER } from './metrics/execs.js';
import type { Metrics } from './metrics/index.js';
import type { Scope } from './scope/scope.js';

/** The options the pipeline reads. */
export type PipelineConfig = Pick<Config, 'recentEvents' | 'redact' | 'defaultRedaction' | 'enrichWaitMs' | 'logEvents'> &
  Partial<Pick<Config, 'ancestors' | 'nodeName' | 'excludeOrigins'>>;

/** One reading of the kernel's counts by cgroup (src/capture/cgroup-stats.ts), with the clocks. */
export interface CgroupReading {
  growth: readonly CgroupGrowth[];
  /** The node's ringbuf_full count now. */
  ringbufFull: number;
  /** The kernel's counts of execs dropped out of scope so far, by reason. */
  excluded: KernelExcluded;
  /** Boot ns now. */
  nowNs: bigint;
  /** CLOCK_REALTIME − CLOCK_BOOTTIME in ns: boot ns + this = wall clock. */
  bootOffsetNs: bigint;
}

export interface PipelineDeps {
  metrics: Metrics;
  /** Null in standalone mode: events get their container id only. */
  podCache: PodLookup | null;
  /** Where --log-events lines go (process.stdout). */
  stdout: Writable;
  /** OTLP export (src/export/otlp.ts); absent: none. */
  exporter?: EventExporter;
  /** Judges the events of cgroups the kernel's scope table did not list yet (src/scope); absent: all in scope. */
  scope?: Pick<Scope, 'judge'>;
  /** The pod of a cgroup known by its id alone (src/enrich/cgroup-pods.ts); absent: none is found. */
  podOf?: (cgroupId: string) => CgroupPod;
}

export interface Pipeline {
  /** What the tracer hands every decoded event to. */
  sink: EventSink;
  store: EventStore;
  hub: EventHub;
  /** The live processes known: ancestors of new execs, the exec events that exits annotate. */
  processes: ProcessTable;
  /** The events left out on purpose, by minute (GET /api/excluded). */
  excluded: ExcludedHistory;
  /** Events delivered so far: the last seq given. */
  readonly delivered: number;
  /** Events waiting for their pod. */
  readonly pending: number;
  /** Lets every waiting event out now, in order (shutdown). */
  flush(): void;
  /**
   * Takes one reading of the kernel's counts by cgroup: counts them by pod, and delivers the throttle
   * episodes' stops and the gaps it finds (`final`: every open episode ends, at shutdown).
   */
  cgroups(reading: CgroupReading, final?: boolean): void;
}

/** Bytes of --log-events output allowed to wait for a slow stdout reader before events are dropped. */
const LOG_BACKLOG_BYTES = 16 * 1024 * 1024;
/** Most events waiting for their pod at once. */
const MAX_PENDING = 10_000;
/** Frames a stream subscriber may have waiting before it is cut off. */
const SUBSCRIBER_QUEUE = 1024;
/** Most processes the process table holds: twice the default pid_max (live ones and exited parents). */
export const MAX_PROCESSES = 65_536;
/** --ancestors' default. */
export const ANCESTORS_DEFAULT = 4;

/** How often the agent reads the kernel's counts by cgroup, in ns (src/agent.ts). */
export const READING_INTERVAL_NS = 1_000_000_000n;

/** The counts of the cgroups the kernel's tables had no room for (cgroup id 0). */
const OVERFLOW_POD: CgroupPod = { containerId: null, namespace: OTHER, pod: OTHER, podUid: null, container: null, workload: null, attribution: 'unresolved' };

/** A cgroup whose pod cannot be found. */
const NO_POD: CgroupPod = { containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved' };

/** What an exit adds to its exec event. */
function execExit(exit: ExitEvent): ExecExit {
  const { time, status, code, signal, coreDumped, duration } = exit;
  return { time, status, code, signal, coreDumped, duration };
}

/** The event's container in its pod's spec, when the pod is known. */
function containerOf(podCache: PodLookup | null, event: ExecEvent): ContainerInfo | undefined {
  if (podCache === null || event.pod === null || event.containerId === null) return undefined;
  return podCache.byContainerId(event.containerId)?.containers.get(event.containerId);
}

export function createPipeline(config: PipelineConfig, deps: PipelineDeps): Pipeline {
  const { metrics, stdout } = deps;
  const exporter = deps.exporter ?? NO_EXPORT;
  const store = new EventStore({ maxEvents: config.recentEvents });
  const hub = new EventHub({ maxQueue: SUBSCRIBER_QUEUE, onOverflow: () => metrics.lost('subscriber_overflow') });
  const redact = createRedactor(config.redact, config.defaultRedaction);
  const processes = new ProcessTable({ maxEntries: MAX_PROCESSES });
  const ancestors = config.ancestors ?? ANCESTORS_DEFAULT;
  const excludedOrigins = new Set(config.excludeOrigins ?? []);
  const throttles = new Throttles();
  const excluded = new ExcludedHistory(Date.now());
  let gaps: Gaps | null = null;
  const podOf = deps.podOf ?? (() => NO_POD);
  let seq = 0;
  const deliver = (event: AgentEvent): void => {
    // Out of scope, and let through only because the kernel's table lagged: counted, not delivered.
    // Exits too: the kernel reports the end of every process whose exec it reported, also when the
    // process has moved into an out-of-scope cgroup since (a container's first process: runc init
    // is moved into the pod's cgroup, then execs the container's command, which the kernel drops).
    if ((event.kind === 'exec' || event.kind === 'exit') && deps.scope) {
      const reason = deps.scope.judge(event);
      if (reason !== null) {
        // Its exec may have been delivered while its pod was unknown: it leaves the table all the same.
        if (event.kind === 'exit') processes.exit(event.execId, event.orphans);
        excluded.add(reason, 1, Date.now());
        return;
      }
    }
    let opensSession = false;
    if (event.kind === 'exec') {
      const self = processes.get(event.execId);
      classifyOrigin(event, containerOf(deps.podCache, event), processes.get(event.parentExecId), self);
      // A process that entered opens its session once, not again when it execs anew (a shell's `exec`).
      opensSession = event.sessionExecId === event.execId && self?.sessionExecId !== event.execId;
    } else if (event.kind === 'exit') {
      const known = processes.get(event.execId);
      // A process the agent did not see exec (or whose exec was lost) has no known origin.
      event.origin = known?.origin ?? 'workload';
      event.sessionExecId = known?.sessionExecId ?? null;
    }
    // --exclude-origin: counted, not delivered. Its exec stays in the process table, so what it
    // starts inherits its origin (a probe's children are probes too) and its exit is dropped too.
    if ((event.kind === 'exec' || event.kind === 'exit') && excludedOrigins.has(event.origin)) {
      if (event.kind === 'exit') processes.exit(event.execId, event.orphans);
      else if (event.retval === 0) processes.exec(event);
      metrics.excluded('origin');
      excluded.add('origin', 1, Date.now());
      return;
    }
    // Given here, after the event may have waited for its pod: seq order is delivery order, so
    // a stream resumed after a seq misses nothing delivered later.
    seq += 1;
    event.seq = seq;
    let record;
    if (event.kind === 'exec') {
      if (ancestors > 0) event.ancestors = processes.ancestors(event, ancestors);
      // A failed exec leaves the caller's image (and its entry) as they were.
      if (event.retval === 0) processes.exec(event);
      // Serialized once here; the ring, the stream and the log share the text.
      record = eventRecord(event);
      store.push(record);
      hub.publish(record);
      metrics.observeExec(event);
      if (opensSession) metrics.sessionOpened(event);
    } else if (event.kind === 'throttle' || event.kind === 'gap') {
      // Few and far between, and what a reader of the feed must not miss: kept in the ring too.
      record = eventRecord(event);
      store.push(record);
      hub.publish(record);
    } else {
      record = eventRecord(event);
      hub.publish(record);
      metrics.observeExit(event);
      // The exec event in the ring shows how its process ended (the ring keeps no exits).
      const exec = processes.exit(event.execId, event.orphans);
      if (exec !== undefined && exec.seq > 0) {
        const exit = execExit(event);
        store.update(exec.seq, (held) => withExit(held, exit));
      }
    }
    // Queued, never awaited: the SDK's processor batches and sends on its own timer.
    exporter.export(event, record);
    if (config.logEvents) {
      if (stdout.writableLength > LOG_BACKLOG_BYTES) metrics.lost('log_overflow');
      else stdout.write(`${record.json}\n`);
    }
  };
  const enricher = new Enricher({
    podCache: deps.podCache,
    waitMs: config.enrichWaitMs,
    maxPending: MAX_PENDING,
    metrics,
    emit(event) {
      // A second report of an open episode's start (two CPUs at once), or one a made-up start stands for.
      if (event.kind === 'throttle' && !throttles.started(event)) return;
      deliver(event);
    },
  });
  return {
    sink(event, delaySeconds) {
      // Execs only: exits travel the same ring in the same batches, and observing them too doubled
      // the histogram's cost (prom-client's observe() was ~8% of the JavaScript per event) for the
      // same distribution.
      if (event.kind === 'exec') {
        metrics.eventDelay(delaySeconds);
        redact(event);
      }
      enricher.push(event);
    },
    store,
    hub,
    processes,
    excluded,
    get delivered() {
      return seq;
    },
    get pending() {
      return enricher.pending;
    },
    flush: () => enricher.flush(),
    cgroups(reading, final = false) {
      const timeOf = (ns: bigint) => formatTime(ns + reading.bootOffsetNs);
      const ctx = { nowNs: reading.nowNs, timeOf, podOf, node: config.nodeName ?? '' };
      excluded.readKernel(reading.excluded, Number((reading.nowNs + reading.bootOffsetNs) / 1_000_000n));
      for (const g of reading.growth) {
        if (g.throttled === 0 && g.lost === 0) continue;
        const pod = g.cgroupId === '0' ? OVERFLOW_POD : podOf(g.cgroupId);
        if (g.throttled > 0) metrics.throttled(pod, g.throttled);
        if (g.lost > 0) metrics.lostBy(pod, g.lost);
      }
      // The first reading: the feed is taken as complete a reading's interval before it.
      gaps ??= new Gaps(0, reading.nowNs - READING_INTERVAL_NS);
      const gap = gaps.read(reading.ringbufFull, reading.growth, ctx);
      if (gap !== null) deliver(gap);
      // Made by the agent, with the pod already known: past the enricher.
      for (const event of throttles.read(reading.growth, ctx, final)) deliver(event);
    },
  };
}
