/**
 * The agent's configuration as the rest of the agent sees it: the validated Config and its small
 * vocabularies. How it is read from flags and EXECWATCH_* variables lives in src/config/: the
 * option table (options.ts, values.ts), the parser (parse.ts) and --help (help.ts).
 */
import type { EventFilter } from './events/filter.js';
import type { Origin } from './events/schema.js';
import type { LabelSelector } from './scope/rules.js';
import { StartupError } from './startup-error.js';

/** A host and port to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** host:port as a user writes it, an IPv6 host in brackets: [::1]:9465 (config/values.ts reads it back). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Labels of execwatch_execs_total that --metric-labels can keep or drop (result is always kept). */
export const METRIC_LABELS = ['namespace', 'workload', 'pod', 'container', 'origin'] as const;
export type MetricLabel = (typeof METRIC_LABELS)[number];

/** The user and group the agent switches every thread to once its programs are attached. */
export interface RunAs {
  uid: number;
  gid: number;
}

/** The OTLP transports, named as OTEL_EXPORTER_OTLP_PROTOCOL names them. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'grpc', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The validated configuration. */
export interface Config {
  metricsAddress: ListenAddress;
  apiAddress: ListenAddress;
  /** File holding the bearer token the events API requires, or null: no token. */
  apiTokenFile: string | null;
  /** Serve the events API beyond loopback without a token. */
  apiInsecure: boolean;
  /** Names besides IP addresses and localhost that the events API answers to in the Host header. */
  apiAllowedHosts: string[];
  nodeName: string;
  /** Explicit kubeconfig path, or null: in-cluster when available, else standalone. */
  kubeconfig: string | null;
  recentEvents: number;
  /** Ancestors listed on each exec event (0: none). */
  ancestors: number;
  argvMaxBytes: number;
  ringbufBytes: number;
  metricLabels: MetricLabel[];
  /** --redact patterns, compiled for V8's linear engine, each with the 'g' flag. */
  redact: RegExp[];
  /** Apply the built-in secret rules (src/events/secrets.ts). */
  defaultRedaction: boolean;
  logEvents: boolean;
  /** Base URL of the OTLP receiver, or null: the standard OTEL_EXPORTER_OTLP_*ENDPOINT variables, else no export. */
  otlpEndpoint: string | null;
  otlpProtocol: OtlpProtocol;
  /** Which events are exported over OTLP (the events API's filters), or null: all. */
  otlpFilter: EventFilter | null;
  logLevel: LogLevel;
  check: boolean;
  /** Keep every capability and the uid after start-up instead of dropping them once the programs are attached. */
  keepCapabilities: boolean;
  /** Who the agent runs as once attached; uid 0 keeps the uid (capabilities still go). */
  runAs: RunAs;
  bpfObject: string;
  /** How long series and cache entries of a deleted pod are kept, in milliseconds. */
  podGracePeriodMs: number;
  /** Cap on execwatch_execs_total series; beyond it pods are counted under pod="_other". */
  maxSeries: number;
  /** Concurrent GET /api/events/stream subscribers allowed; more get 429. */
  maxStreams: number;
  /** How long an event of a not-yet-known container waits for its pod, in milliseconds. */
  enrichWaitMs: number;
  /**
   * How long records may wait in the ring buffer with no batch delivered before /healthz says the
   * agent is stalled, in milliseconds; 0: never.
   */
  stallTimeoutMs: number;
  /** How long the API server may go unanswered before /readyz says not ready, in milliseconds; 0: never. */
  kubeUnreadyAfterMs: number;
  /** Namespace patterns whose pods are in scope; empty: every namespace. */
  includeNamespaces: string[];
  /** Namespace patterns whose pods are out of scope. */
  excludeNamespaces: string[];
  /** Host processes (no container) are out of scope. */
  excludeHost: boolean;
  /** Pods any of these selects are out of scope. */
  excludePods: LabelSelector[];
  /** Execs per second per cgroup above which they are counted and not emitted; 0: no limit. */
  cgroupRate: number;
  /** Execs a cgroup may make at once above its rate. */
  cgroupBurst: number;
  /** Origins whose execs (and their exits) are counted as excluded and not delivered. */
  excludeOrigins: Origin[];
}

/**
 * A bad flag or environment value, or a file a flag names that cannot be used: one line naming the
 * flag (or variable), the value and what is allowed. The agent exits 2.
 */
export class ConfigError extends StartupError {
  override name = 'ConfigError';

  constructor(line: string) {
    super([line], 2);
  }
}
