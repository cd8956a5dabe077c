/**
 * The export side of delivery as the rest of the agent sees it: what an exporter does, whether
 * export is configured, and the exporter itself, loaded only when it is. The OpenTelemetry SDK
 * and gRPC (src/export/otlp.ts) cost about 34 MB of resident memory and 8 MB of heap once loaded
 * (measured with Node 24): an agent that exports nothing never loads them, as it never loads the
 * Kubernetes client without a cluster.
 */
import type { Config } from '../config.js';
import type { EventRecord } from '../events/record.js';
import type { AgentEvent } from '../events/schema.js';
import type { Metrics } from '../metrics/index.js';

export type OtlpConfig = Pick<Config, 'nodeName' | 'otlpEndpoint' | 'otlpProtocol' | 'otlpFilter'>;

export interface OtlpDeps {
  metrics: Metrics;
  version: string;
  /** Where the standard OTEL_EXPORTER_OTLP_* variables are read from (process.env). */
  env: NodeJS.ProcessEnv;
  /** Reports export failures: the first one, then one line per 100. */
  report: (line: string) => void;
}

/** The OTLP side of delivery. */
export interface EventExporter {
  /** Queues one delivered event when --otlp-filter matches its record; never waits. */
  export(event: AgentEvent, record: EventRecord): void;
  /** Records waiting in the processor's queue. */
  readonly queueLength: number;
  /** Sends what is queued (at most a few seconds) and stops. */
  close(): Promise<void>;
}

/**
 * Whether export is configured: `--otlp-endpoint`, or the standard endpoint variables that the
 * SDK's exporters read. Nothing is exported otherwise.
 */
export function otlpConfigured(config: OtlpConfig, env: NodeJS.ProcessEnv): boolean {
  return config.otlpEndpoint !== null || Boolean(env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT) || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/** What the pipeline exports to when no endpoint is configured: nothing. */
export const NO_EXPORT: EventExporter = Object.freeze({
  export() {},
  queueLength: 0,
  close: async () => {},
});

/** The OTLP exporter of the configuration (src/export/otlp.ts, loaded now), or NO_EXPORT. */
export async function loadExporter(config: OtlpConfig, deps: OtlpDeps): Promise<EventExporter> {
  if (!otlpConfigured(config, deps.env)) return NO_EXPORT;
  const { createOtlpExporter } = await import('./otlp.js');
  return createOtlpExporter(config, deps);
}
