/**
 * Wiring of the data path: capture → redact → enrich → store, stream, metrics, log. Each arrow goes
 * one way; nothing downstream calls back upstream, and the kernel never waits for Node.
 */
import type { Writable } from 'node:stream';
import type { NativeBinding } from './capture/binding.js';
import { checkRequirements } from './capture/requirements.js';
import { Tracer, type EventSink } from './capture/tracer.js';
import type { Config } from './config.js';
import { Enricher } from './enrich/enricher.js';
import { eventRecord } from './events/record.js';
import { createRedactor } from './events/redact.js';
import { EventStore } from './events/store.js';
import { EventHub } from './events/stream.js';
import type { ExecEvent } from './events/types.js';
import { openApiToken } from './http/auth.js';
import { startServers } from './http/server.js';
import { createPodCache, loadKubeConfig } from './kube/kubeconfig.js';
import type { PodCache } from './kube/podcache.js';
import { createMetrics } from './metrics/index.js';
import { StartupError } from './startup-error.js';

/** What the agent needs from its surroundings; tests substitute them. */
export interface AgentDeps {
  binding: NativeBinding;
  /** Where --log-events lines go (process.stdout). */
  stdout: Writable;
  /** Where pipeline failures are reported (default process.stderr). */
  stderr?: Writable;
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
  close(): Promise<void>;
}

/** Bytes of --log-events output allowed to wait for a slow stdout reader before events are dropped. */
const LOG_BACKLOG_BYTES = 16 * 1024 * 1024;

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
  const tracer = new Tracer(
    deps.binding,
    { objectPath: config.bpfObject, argvMaxBytes: config.argvMaxBytes, ringbufBytes: config.ringbufBytes, node: config.nodeName },
    sink,
    sinkErrorReporter(deps.stderr ?? process.stderr),
  );
  return { tracer, notes: req.notes, kernelRelease: req.kernelRelease };
}

/** Checks the requirements, then loads and attaches the programs; used by --check. */
export async function openTracer(config: Config, deps: AgentDeps, sink: EventSink) {
  const { tracer, notes } = await prepareTracer(config, deps, sink);
  return { tracer, attached: tracer.start(), notes };
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
  // The sink runs only after tracer.start() below, when everything it uses exists.
  const { tracer, notes, kernelRelease } = await prepareTracer(config, deps, (event, delaySeconds) => {
    metrics.eventDelay(delaySeconds);
    redact(event);
    enricher.push(event);
  });
  const metrics = createMetrics({
    labels: config.metricLabels,
    maxSeries: config.maxSeries,
    version: deps.version,
    kernel: kernelRelease,
    captureStats: () => tracer.stats(),
    podCount: () => podCache?.size ?? 0,
  });
  const store = new EventStore({ maxEvents: config.recentEvents });
  const hub = new EventHub({ maxQueue: 1024, onOverflow: () => metrics.lost('subscriber_overflow') });
  const redact = createRedactor(config.redact);
  const podCache = await createPodCache(kubeConfig, config, metrics);

  const deliver = (event: ExecEvent): void => {
    // Serialized once here; the ring, the stream and the log share the text.
    const record = eventRecord(event);
    store.push(record);
    hub.publish(record);
    metrics.observeExec(event);
    if (config.logEvents) {
      if (deps.stdout.writableLength > LOG_BACKLOG_BYTES) metrics.lost('log_overflow');
      else deps.stdout.write(`${record.json}\n`);
    }
  };
  const enricher = new Enricher({ podCache, waitMs: config.enrichWaitMs, maxPending: 10_000, metrics, emit: deliver });

  const attached = tracer.start();

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
      readiness: () => {
        const reasons = notReadyReasons(tracer.attached, podCache);
        return { ready: reasons.length === 0, reasons };
      },
    });
  } catch (err) {
    tracer.close();
    await podCache?.stop();
    throw err;
  }

  let closing: Promise<void> | null = null;
  return {
    attached,
    metricsUrl: servers.metricsUrl,
    apiUrl: servers.apiUrl,
    notes,
    close() {
      closing ??= (async () => {
        // Detach first: nothing new arrives, and what was already read still flows downstream.
        tracer.close();
        enricher.flush();
        await podCache?.stop();
        hub.closeAll();
        await servers.close();
      })();
      return closing;
    },
  };
}
