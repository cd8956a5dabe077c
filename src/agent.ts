/**
 * The agent: requirement checks, the tracer, the pod cache, the pipeline (src/pipeline.ts) and the
 * HTTP servers, started in order and closed in the reverse. The kernel never waits for Node.
 */
import type { Writable } from 'node:stream';
import type { NativeBinding } from './capture/binding.js';
import { compatNote } from './capture/compat.js';
import { scanProcesses } from './capture/proc-scan.js';
import { checkRequirements } from './capture/requirements.js';
import { Tracer, type EventSink } from './capture/tracer.js';
import { DeliveryWatchdog } from './capture/watchdog.js';
import type { Config } from './config.js';
import { openApiToken } from './http/auth.js';
import { startServers } from './http/server.js';
import { loadExporter } from './export/exporter.js';
import { CgroupPods } from './enrich/cgroup-pods.js';
import { createPodCache, loadKubeConfig, requestFiles } from './kube/kubeconfig.js';
import type { PodCache } from './kube/podcache.js';
import { readBootId } from './events/exec-id.js';
import { createMetrics } from './metrics/index.js';
import { createPipeline, READING_INTERVAL_NS } from './pipeline.js';
import { Scope } from './scope/scope.js';
import { StartupError } from './startup-error.js';

/** What the agent needs from its surroundings; tests substitute them. */
export interface AgentDeps {
  binding: NativeBinding;
  /** Where --log-events lines go (process.stdout). */
  stdout: Writable;
  /** Where pipeline failures are reported (default process.stderr). */
  stderr?: Writable;
  /** Where the OTEL_EXPORTER_OTLP_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Root of the /proc and /sys trees the requirement checks read (default '/'). */
  root?: string;
  version: string;
}

export interface Agent {
  attached: string[];
  metricsUrl: string;
  apiUrl: string;
  /** Notes from start-up (e.g. that tracefs was mounted). */
  notes: string[];
  /** Files read again after start-up (the events API token, the API server's token and certificates). */
  readLater: string[];
  /** The kernel's id of each attached program, by name (benchmarks and tests read their run times). */
  programIds(): Record<string, number>;
  close(): Promise<void>;
}

/**
 * Reports events the pipeline threw on (a bug: each one is also counted as lost, stage
 * pipeline_error): the first one in full, then one line per 1,000 so a hot bug cannot flood the log.
 */
export function sinkErrorReporter(out: Writable): (err: unknown) => void {
  let count = 0;
  return (err) => {
    count += 1;
    if (count === 1) out.write(`execwatch: an event was lost in the pipeline: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    else if (count % 1000 === 0) out.write(`execwatch: ${count} events lost in the pipeline so far\n`);
  };
}

/** Checks the requirements and creates the tracer, not started yet. */
async function prepareTracer(config: Config, deps: AgentDeps, sink: EventSink) {
  const req = await checkRequirements({ root: deps.root ?? '/', mountTracefs: (target) => deps.binding.mountTracefs(target) });
  if (!req.ok) throw new StartupError(req.problems);
  // Read once: the decoder's execIds and the /proc scan's must be made of the same boot id.
  const bootId = readBootId();
  const tracer = new Tracer(
    deps.binding,
    { objectPath: config.bpfObject, argvMaxBytes: config.argvMaxBytes, ringbufBytes: config.ringbufBytes, cgroupRate: config.cgroupRate, cgroupBurst: config.cgroupBurst, node: config.nodeName, bootId },
    sink,
    sinkErrorReporter(deps.stderr ?? process.stderr),
  );
  return { tracer, bootId, notes: req.notes, kernelRelease: req.kernelRelease, cgroup2Path: req.cgroup2Path };
}

/** Checks the requirements, then loads and attaches the programs; used by --check. */
export async function openTracer(config: Config, deps: AgentDeps, sink: EventSink) {
  const { tracer, notes } = await prepareTracer(config, deps, sink);
  const attached = tracer.start();
  return { tracer, attached, notes: [...notes, compatNote(attached)] };
}

/** Why /readyz says no: programs detached, or the pod cache not synced. Empty when ready. */
export function notReadyReasons(attached: readonly string[], podCache: Pick<PodCache, 'readiness'> | null): string[] {
  const reasons = attached.length === 0 ? ['BPF programs are not attached'] : [];
  if (podCache) reasons.push(...podCache.readiness().reasons);
  return reasons;
}

export async function startAgent(config: Config, deps: AgentDeps): Promise<Agent> {
  // Before anything is loaded: a bad token file or kubeconfig is a configuration error (exit 2).
  const apiToken = config.apiTokenFile === null
    ? null
    : await openApiToken(config.apiTokenFile, deps.stderr ?? process.stderr);
  const kubeConfig = await loadKubeConfig(config.kubeconfig);
  // The sink runs only after tracer.start() below, when the pipeline it feeds exists.
  const { tracer, bootId, notes, kernelRelease, cgroup2Path } = await prepareTracer(config, deps, (event, delaySeconds) => pipeline.sink(event, delaySeconds));
  const metrics = createMetrics({
    labels: config.metricLabels,
    maxSeries: config.maxSeries,
    version: deps.version,
    kernel: kernelRelease,
    captureStats: () => tracer.stats(),
    podCount: () => podCache?.size ?? 0,
    ringbufWaitingBytes: () => tracer.ringbufWaitingBytes(),
    ringbufBytes: config.ringbufBytes,
    enrichmentWaiting: () => pipeline.pending,
    exportQueueLength: () => exporter.queueLength,
    scopeCgroups: () => scope.entries,
    readCgroups: () => readCgroups(),
  });
  const podCache = await createPodCache(kubeConfig, config, metrics);
  const stderr = deps.stderr ?? process.stderr;
  const exporter = await loadExporter(config, {
    metrics,
    version: deps.version,
    env: deps.env ?? process.env,
    report: (line) => stderr.write(`execwatch: ${line}\n`),
  });
  const scope = new Scope({
    rules: config,
    cgroupRoot: cgroup2Path,
    pods: podCache,
    write: (slots, entries) => tracer.writeScope(slots, entries),
    metrics,
  });
  const cgroupPods = new CgroupPods(cgroup2Path, podCache);
  const pipeline = createPipeline(config, { metrics, podCache, stdout: deps.stdout, exporter, scope, podOf: (id) => cgroupPods.podOf(id) });
  const { store, hub } = pipeline;
  // The kernel's counts by cgroup: every second (throttle episodes end, gaps are found, with no
  // event to tell), and at every scrape (the by-pod series are then as current as the node's).
  const readCgroups = () => {
    const reading = tracer.readCgroups();
    if (reading !== null) pipeline.cgroups(reading);
  };
  let cgroupsFailed = false;
  const cgroupTimer = setInterval(() => {
    try {
      readCgroups();
    } catch (err) {
      // A timer's throw would end the agent. Said once: it fails the same way every second. What
      // throws here is the addon's read of the tables, and the addon throws Errors.
      if (!cgroupsFailed) stderr.write(`execwatch: reading the kernel's counts by cgroup failed (throttle stops, gaps and the by-pod counts wait for it): ${(err as Error).message}\n`);
      cgroupsFailed = true;
    }
  }, Number(READING_INTERVAL_NS / 1_000_000n));
  cgroupTimer.unref();

  const attached = tracer.start();
  scope.start();
  // After attach, so that a process started meanwhile is in the scan or in an exec event (an exec
  // event's entry wins); before the privileges are dropped, /proc/PID/exe needing them.
  if (config.ancestors > 0) pipeline.processes.seed(scanProcesses({ node: config.nodeName, bootId }));
  const watchdog = new DeliveryWatchdog(
    () => ({ batches: tracer.batches, waitingBytes: tracer.ringbufWaitingBytes() }),
    config.stallTimeoutMs,
  );

  let servers;
  try {
    await podCache?.start();
    servers = await startServers({
      metricsAddress: config.metricsAddress,
      apiAddress: config.apiAddress,
      metrics,
      store,
      hub,
      logLevel: config.logLevel,
      maxStreams: config.maxStreams,
      apiToken,
      apiAllowedHosts: config.apiAllowedHosts,
      // Read up to now before answering, as a scrape does: the timer's last reading may be a second old.
      excluded: {
        window(sinceMs, untilMs) {
          try {
            readCgroups();
          } catch {
            // Unreadable: said by the timer already; what was read before stands.
          }
          // Now is taken after the read, so that what it counted falls in a minute up to now.
          return pipeline.excluded.window(sinceMs, untilMs, Date.now());
        },
      },
      liveness: () => watchdog.check(),
      readiness: () => {
        const reasons = notReadyReasons(tracer.attached, podCache);
        return { ready: reasons.length === 0, reasons };
      },
    });
  } catch (err) {
    clearInterval(cgroupTimer);
    scope.close();
    tracer.close();
    await podCache?.stop();
    await exporter.close();
    throw err;
  }

  let closing: Promise<void> | null = null;
  return {
    attached,
    metricsUrl: servers.metricsUrl,
    apiUrl: servers.apiUrl,
    notes: [...notes, compatNote(attached)],
    readLater: [...(config.apiTokenFile === null ? [] : [config.apiTokenFile]), ...requestFiles(kubeConfig)],
    programIds: () => tracer.programIds(),
    close() {
      closing ??= (async () => {
        // Detach first: nothing new arrives, and what was already read still flows downstream.
        clearInterval(cgroupTimer);
        scope.close();
        // The last counts, read while they can be; taken in once what the ring held (start
        // records among it) is through: the episodes still open end there.
        let last = null;
        try {
          last = tracer.readCgroups();
        } catch {
          // Unreadable: said by the timer already; the episodes still open stay open.
        }
        tracer.close();
        pipeline.flush();
        if (last !== null) pipeline.cgroups(last, true);
        await exporter.close();
        await podCache?.stop();
        hub.closeAll();
        await servers.close();
      })();
      return closing;
    },
  };
}
