/**
 * The option table: every option's flag, environment variable, default, validator and help text.
 * The parser (parse.ts), --help (help.ts), the README's table and the chart's arguments all derive
 * from or are checked against this one list.
 */
import { hostname } from 'node:os';
import { defaultBpfObjectPath } from '../capture/native.js';
import { LOG_LEVELS, METRIC_LABELS, OTLP_PROTOCOLS, type Config } from '../config.js';
import { boolean, duration, perSecond, eventFilter, hostNames, httpUrl, integer, labelSelector, logLevel, metricLabels, namespacePatterns, origins, otlpProtocol, parseAddress, regex, ringbufBytes, runAs, text } from './values.js';

/** One option: a flag, usually an environment variable, a validator producing the Config field. */
export interface OptionSpec<K extends keyof Config> {
  readonly key: K;
  readonly flag: `--${string}`;
  /** Null when the option is a flag only. */
  readonly env: string | null;
  /**
   * Read when `env` is unset, the first one set: the conventional variables (the downward API's
   * NODE_NAME, KUBECONFIG, OpenTelemetry's signal-specific variable before its general one).
   */
  readonly fallbackEnv?: readonly string[];
  /** Placeholder of the value in --help; empty for boolean flags. */
  readonly value: string;
  readonly description: string;
  /** The default as a user would write it; parsed by `parse` unless `computeDefault` is given. */
  readonly default: string;
  readonly computeDefault?: () => Config[K];
  readonly parse: (raw: string) => Config[K];
  /** A switch: --x turns it on, --no-x off; `parse` reads --x=value and its variable. */
  readonly boolean?: true;
  /** Given several times, the values add up (the variable holds one per line). */
  readonly repeatable?: true;
}
export type AnyOption = { [K in keyof Config]: OptionSpec<K> }[keyof Config];


/**
 * Every option, in --help order. README's table and the chart's arguments are checked against
 * this list; `default` is what --help shows.
 */
export const OPTIONS = [
  { key: 'metricsAddress', flag: '--metrics-address', env: 'EXECWATCH_METRICS_ADDRESS', value: '<host:port>',
    description: 'Listen address of /metrics, /healthz and /readyz.', default: '0.0.0.0:9464', parse: parseAddress },
  { key: 'apiAddress', flag: '--api-address', env: 'EXECWATCH_API_ADDRESS', value: '<host:port>',
    description: 'Listen address of the events API and browse page (argv can hold secrets: keep it on loopback).',
    default: '127.0.0.1:9465', parse: parseAddress },
  { key: 'apiTokenFile', flag: '--api-token-file', env: 'EXECWATCH_API_TOKEN_FILE', value: '<path>',
    description: 'File holding a bearer token the events API then requires; re-read when it changes.',
    default: 'none', computeDefault: () => null, parse: text('path', 4096) },
  { key: 'apiInsecure', flag: '--api-insecure', env: 'EXECWATCH_API_INSECURE', value: '', boolean: true,
    description: 'Allow an --api-address beyond loopback without --api-token-file.', default: 'false', parse: boolean },
  { key: 'apiAllowedHosts', flag: '--api-allowed-hosts', env: 'EXECWATCH_API_ALLOWED_HOSTS', value: '<names>',
    description: 'More names the events API answers to in the Host header, besides IP addresses and localhost (requests that name any other host are refused: DNS rebinding).',
    default: 'none', computeDefault: () => [], parse: hostNames },
  { key: 'nodeName', flag: '--node-name', env: 'EXECWATCH_NODE_NAME', fallbackEnv: ['NODE_NAME'], value: '<name>',
    description: 'Name of this node: stamped on events, selects the pods to watch.', default: 'the host name',
    computeDefault: () => hostname(), parse: text('node name', 253) },
  { key: 'kubeconfig', flag: '--kubeconfig', env: 'EXECWATCH_KUBECONFIG', fallbackEnv: ['KUBECONFIG'], value: '<path>',
    description: 'Kubeconfig file; without one, in-cluster config when available, else standalone.',
    default: 'none', computeDefault: () => null, parse: text('path', 4096) },
  { key: 'recentEvents', flag: '--recent-events', env: 'EXECWATCH_RECENT_EVENTS', value: '<count>',
    description: 'Recent events kept for the API and browse page.', default: '10000', parse: integer(1, 1_000_000) },
  { key: 'ancestors', flag: '--ancestors', env: 'EXECWATCH_ANCESTORS', value: '<count>',
    description: 'Ancestors listed on each exec event (parent first; 0 lists none).', default: '4', parse: integer(0, 64) },
  { key: 'argvMaxBytes', flag: '--argv-max-bytes', env: 'EXECWATCH_ARGV_MAX_BYTES', value: '<bytes>',
    description: 'Bytes of argv captured per exec; longer argv is truncated and flagged.', default: '4096',
    parse: integer(1, 32768) },
  { key: 'ringbufBytes', flag: '--ringbuf-bytes', env: 'EXECWATCH_RINGBUF_BYTES', value: '<bytes>',
    description: 'Size of the BPF ring buffer (power of two; 8Mi, 64Ki, 1Gi suffixes work).', default: '8Mi',
    parse: ringbufBytes },
  { key: 'includeNamespaces', flag: '--include-namespaces', env: 'EXECWATCH_INCLUDE_NAMESPACES', value: '<list>',
    description: 'Only the pods of these namespaces are in scope (comma-separated, * matches any characters: team-*); the host follows --exclude-host. Out-of-scope execs are dropped in the kernel before argv is read, and counted.',
    default: 'all', computeDefault: () => [], parse: namespacePatterns },
  { key: 'excludeNamespaces', flag: '--exclude-namespaces', env: 'EXECWATCH_EXCLUDE_NAMESPACES', value: '<list>',
    description: 'The pods of these namespaces are out of scope (comma-separated, * patterns).',
    default: 'none', computeDefault: () => [], parse: namespacePatterns },
  { key: 'excludeHost', flag: '--exclude-host', env: 'EXECWATCH_EXCLUDE_HOST', value: '', boolean: true,
    description: 'Host processes (outside any container) are out of scope.', default: 'false', parse: boolean },
  { key: 'excludePods', flag: '--exclude-pods', env: 'EXECWATCH_EXCLUDE_PODS', value: '<selector>', repeatable: true,
    description: 'Pods this label selector selects are out of scope (app=healthcheck, tier in (probe,canary)); repeatable, a pod any of them selects is out (the variable holds one per line).',
    default: 'none', computeDefault: () => [], parse: labelSelector },
  { key: 'cgroupRate', flag: '--cgroup-rate', env: 'EXECWATCH_CGROUP_RATE', value: '<n/s>',
    description: 'Execs per second each cgroup (container) may make; above it (after --cgroup-burst at once) its execs are counted by pod in execwatch_events_throttled_total and reported as throttle start/stop events, not recorded, so that one runaway loop cannot fill the ring buffer the whole node shares. 0: no limit.',
    default: '5000/s', parse: perSecond(1_000_000) },
  { key: 'cgroupBurst', flag: '--cgroup-burst', env: 'EXECWATCH_CGROUP_BURST', value: '<count>',
    description: 'Execs a cgroup may make at once above --cgroup-rate.', default: '10000', parse: integer(1, 10_000_000) },
  { key: 'excludeOrigins', flag: '--exclude-origin', env: 'EXECWATCH_EXCLUDE_ORIGIN', value: '<origins>', repeatable: true,
    description: 'Drop the execs of these origins (host, init, workload, exec, probe, debug; comma-separated, repeatable), and their exits, before they reach the ring, the stream, the log, the export and execwatch_execs_total; they are counted in execwatch_events_excluded_total{reason="origin"}. E.g. probe: the exec probes\' noise.',
    default: 'none', computeDefault: () => [], parse: origins },
  { key: 'metricLabels', flag: '--metric-labels', env: 'EXECWATCH_METRIC_LABELS', value: '<list>',
    description: `Labels of execwatch_execs_total, from ${METRIC_LABELS.join(',')} (may be empty).`,
    default: METRIC_LABELS.join(','), parse: metricLabels },
  { key: 'redact', flag: '--redact', env: 'EXECWATCH_REDACT', value: '<regex>', repeatable: true,
    description: 'Replace argv matches with ***; repeatable (the variable holds one per line). Runs on V8\'s linear-time engine: no backreferences, lookaround or counts above 16.',
    default: 'none', computeDefault: () => [], parse: regex },
  { key: 'defaultRedaction', flag: '--default-redaction', env: 'EXECWATCH_DEFAULT_REDACTION', value: '', boolean: true,
    description: 'Mask the secrets of the built-in rules (see Redaction in the README): --password X, --token X, mysql -pX, Authorization headers, URL passwords, AWS_SECRET_ACCESS_KEY=X and the like, private keys. --no-default-redaction turns them off.',
    default: 'true', parse: boolean },
  { key: 'logEvents', flag: '--log-events', env: 'EXECWATCH_LOG_EVENTS', value: '', boolean: true,
    description: 'Print every event as a JSON line on stdout.', default: 'false', parse: boolean },
  { key: 'otlpEndpoint', flag: '--otlp-endpoint', env: 'EXECWATCH_OTLP_ENDPOINT', value: '<url>',
    description: 'Send every event as an OpenTelemetry log record to this OTLP receiver (base URL, as OTEL_EXPORTER_OTLP_ENDPOINT; over HTTP /v1/logs is added). Without it, the standard OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT turns export on; with neither, nothing is exported.',
    default: 'none', computeDefault: () => null, parse: httpUrl },
  { key: 'otlpProtocol', flag: '--otlp-protocol', env: 'EXECWATCH_OTLP_PROTOCOL', fallbackEnv: ['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'], value: '<protocol>',
    description: `OTLP transport: ${OTLP_PROTOCOLS.join(', ')}.`, default: 'http/protobuf', parse: otlpProtocol },
  { key: 'otlpFilter', flag: '--otlp-filter', env: 'EXECWATCH_OTLP_FILTER', value: '<query>',
    description: 'Export only the events this filter matches, written as the query of GET /api/events (e.g. result=failure&namespace=shop).',
    default: 'none', computeDefault: () => null, parse: eventFilter },
  { key: 'logLevel', flag: '--log-level', env: 'EXECWATCH_LOG_LEVEL', value: '<level>',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`, default: 'info', parse: logLevel },
  { key: 'check', flag: '--check', env: null, value: '', boolean: true,
    description: 'Check requirements, load and attach the programs, report and exit (0 ok, 1 not).',
    default: 'false', parse: boolean },
  { key: 'runAs', flag: '--run-as', env: 'EXECWATCH_RUN_AS', value: '<uid[:gid]>',
    description: 'User and group every thread switches to once the programs are attached and the ports bound (supplementary groups cleared, every capability dropped); 0 keeps uid 0 and drops the capabilities only.',
    default: '65534:65534', parse: runAs },
  { key: 'keepCapabilities', flag: '--keep-capabilities', env: 'EXECWATCH_KEEP_CAPABILITIES', value: '', boolean: true,
    description: 'Keep every capability and uid 0 after start-up: no capability drop, no --run-as switch (for debugging only).',
    default: 'false', parse: boolean },
  { key: 'bpfObject', flag: '--bpf-object', env: 'EXECWATCH_BPF_OBJECT', value: '<path>',
    description: 'The compiled BPF object.', default: '<package root>/build/execwatch.bpf.o',
    computeDefault: () => defaultBpfObjectPath(), parse: text('path', 4096) },
  { key: 'podGracePeriodMs', flag: '--pod-grace-period', env: 'EXECWATCH_POD_GRACE_PERIOD', value: '<duration>',
    description: 'How long a deleted pod stays resolvable and keeps its metric series.', default: '2m',
    parse: duration(86_400_000, '24h') },
  { key: 'maxSeries', flag: '--max-series', env: 'EXECWATCH_MAX_SERIES', value: '<count>',
    description: 'Cap on the pods\' series of execwatch_execs_total (and, each its own, of execwatch_exits_total, execwatch_events_throttled_total and execwatch_events_lost_by_pod_total); beyond it pods count under pod="_other".', default: '10000',
    parse: integer(1, 1_000_000) },
  { key: 'maxStreams', flag: '--max-streams', env: 'EXECWATCH_MAX_STREAMS', value: '<count>',
    description: 'Live streams served at once; one more is refused with 429.', default: '32',
    parse: integer(1, 10_000) },
  { key: 'enrichWaitMs', flag: '--enrich-wait', env: 'EXECWATCH_ENRICH_WAIT', value: '<duration>',
    description: 'How long an event of a not-yet-known container waits for its pod.', default: '2s',
    parse: duration(60_000, '60s') },
  { key: 'stallTimeoutMs', flag: '--stall-timeout', env: 'EXECWATCH_STALL_TIMEOUT', value: '<duration>',
    description: 'How long records may wait in the ring buffer with nothing delivered before /healthz answers 503 (the kubelet then restarts the agent); 0 turns the watchdog off.',
    default: '30s', parse: duration(3_600_000, '1h') },
  { key: 'kubeUnreadyAfterMs', flag: '--kube-unready-after', env: 'EXECWATCH_KUBE_UNREADY_AFTER', value: '<duration>',
    description: 'How long the API server may fail to answer before /readyz answers 503 (cached pods still resolve meanwhile); 0 never.',
    default: '5m', parse: duration(86_400_000, '24h') },
] as const satisfies readonly AnyOption[];

// Compile-time check that every Config field has an option.
type Unset = Exclude<keyof Config, (typeof OPTIONS)[number]['key']>;
const everyFieldHasAnOption: [Unset] extends [never] ? true : Unset = true;
void everyFieldHasAnOption;
