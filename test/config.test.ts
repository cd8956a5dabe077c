// Configuration: every flag, its environment variable, defaults, and one-line errors.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, formatHostPort, LOG_LEVELS, METRIC_LABELS, type Config } from '../src/config.js';
import { OPTIONS } from '../src/config/options.js';
import { parseConfig } from '../src/config/parse.js';
import { FilterQuery } from '../src/events/filter.js';

/** What every --otlp-filter error ends with: how to write one, and every parameter the API's query takes. */
const QUERY_HELP = `(a query as GET /api/events takes, such as result=failure&namespace=shop, of ${Object.keys(FilterQuery.properties).join(', ')})`;

const repoRoot = join(import.meta.dirname, '..');

function run(argv: string[], env: Record<string, string> = {}): Config {
  const parsed = parseConfig(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

function errorOf(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '(no error)';
}

t.test('defaults', async (t) => {
  t.same(
    run([]),
    {
      metricsAddress: { host: '0.0.0.0', port: 9464 },
      apiAddress: { host: '127.0.0.1', port: 9465 },
      apiTokenFile: null,
      apiInsecure: false,
      apiAllowedHosts: [],
      nodeName: hostname(),
      kubeconfig: null,
      recentEvents: 10000,
      ancestors: 4,
      argvMaxBytes: 4096,
      ringbufBytes: 8388608,
      metricLabels: [...METRIC_LABELS],
      redact: [],
      defaultRedaction: true,
      logEvents: false,
      otlpEndpoint: null,
      otlpProtocol: 'http/protobuf',
      otlpFilter: null,
      logLevel: 'info',
      check: false,
      bpfObject: join(repoRoot, 'build', 'execwatch.bpf.o'),
      podGracePeriodMs: 120_000,
      maxSeries: 10000,
      maxStreams: 32,
      enrichWaitMs: 2000,
      stallTimeoutMs: 30_000,
      kubeUnreadyAfterMs: 300_000,
      keepCapabilities: false,
      runAs: { uid: 65534, gid: 65534 },
      includeNamespaces: [],
      excludeNamespaces: [],
      excludeHost: false,
      excludePods: [],
      cgroupRate: 5000,
      cgroupBurst: 10000,
      excludeOrigins: [],
    },
    'every option has its documented default',
  );
});

t.test('valid values, as flags and as environment variables', async (t) => {
  const cases = [
    ['--metrics-address', '[::]:9464', 'metricsAddress', { host: '::', port: 9464 }],
    ['--metrics-address', '10.0.0.1:0', 'metricsAddress', { host: '10.0.0.1', port: 0 }],
    ['--api-address', 'localhost:65535', 'apiAddress', { host: 'localhost', port: 65535 }],
    ['--api-address', '[::1]:9465', 'apiAddress', { host: '::1', port: 9465 }],
    ['--api-allowed-hosts', 'Agent-1.example, agent-2', 'apiAllowedHosts', ['agent-1.example', 'agent-2']],
    ['--api-allowed-hosts', '', 'apiAllowedHosts', []],
    ['--node-name', 'worker-7.example', 'nodeName', 'worker-7.example'],
    ['--node-name', 'n'.repeat(253), 'nodeName', 'n'.repeat(253)],
    ['--kubeconfig', '/etc/kube/config', 'kubeconfig', '/etc/kube/config'],
    ['--api-token-file', '/var/run/secrets/execwatch/token', 'apiTokenFile', '/var/run/secrets/execwatch/token'],
    ['--recent-events', '1', 'recentEvents', 1],
    ['--recent-events', '1000000', 'recentEvents', 1_000_000],
    ['--ancestors', '0', 'ancestors', 0],
    ['--ancestors', '64', 'ancestors', 64],
    ['--argv-max-bytes', '32768', 'argvMaxBytes', 32768],
    ['--argv-max-bytes', '1', 'argvMaxBytes', 1],
    ['--ringbuf-bytes', '65536', 'ringbufBytes', 65536],
    ['--ringbuf-bytes', '64Ki', 'ringbufBytes', 65536],
    ['--ringbuf-bytes', '16Mi', 'ringbufBytes', 16 * 1024 * 1024],
    ['--ringbuf-bytes', '1Gi', 'ringbufBytes', 1073741824],
    ['--metric-labels', 'namespace,pod', 'metricLabels', ['namespace', 'pod']],
    ['--metric-labels', ' container , workload ', 'metricLabels', ['container', 'workload']],
    ['--metric-labels', '', 'metricLabels', []],
    ['--log-level', 'trace', 'logLevel', 'trace'],
    ['--log-level', 'fatal', 'logLevel', 'fatal'],
    ['--bpf-object', '/opt/x.o', 'bpfObject', '/opt/x.o'],
    ['--pod-grace-period', '500ms', 'podGracePeriodMs', 500],
    ['--pod-grace-period', '30s', 'podGracePeriodMs', 30_000],
    ['--pod-grace-period', '5m', 'podGracePeriodMs', 300_000],
    ['--pod-grace-period', '24h', 'podGracePeriodMs', 86_400_000],
    ['--pod-grace-period', '90', 'podGracePeriodMs', 90_000],
    ['--pod-grace-period', '1.5', 'podGracePeriodMs', 1500],
    ['--pod-grace-period', '0', 'podGracePeriodMs', 0],
    ['--max-streams', '4', 'maxStreams', 4],
    ['--max-series', '20000', 'maxSeries', 20000],
    ['--enrich-wait', '60s', 'enrichWaitMs', 60_000],
    ['--enrich-wait', '0ms', 'enrichWaitMs', 0],
    ['--stall-timeout', '1h', 'stallTimeoutMs', 3_600_000],
    ['--stall-timeout', '0', 'stallTimeoutMs', 0],
    ['--kube-unready-after', '24h', 'kubeUnreadyAfterMs', 86_400_000],
    ['--kube-unready-after', '90s', 'kubeUnreadyAfterMs', 90_000],
    ['--run-as', '1000:2000', 'runAs', { uid: 1000, gid: 2000 }],
    ['--run-as', '1000', 'runAs', { uid: 1000, gid: 1000 }],
    ['--run-as', '0', 'runAs', { uid: 0, gid: 0 }],
    ['--run-as', '4294967294:0', 'runAs', { uid: 4294967294, gid: 0 }],
    ['--otlp-endpoint', 'http://127.0.0.1:4318', 'otlpEndpoint', 'http://127.0.0.1:4318'],
    ['--otlp-endpoint', 'https://otel-collector.monitoring:4317/', 'otlpEndpoint', 'https://otel-collector.monitoring:4317/'],
    ['--otlp-protocol', 'grpc', 'otlpProtocol', 'grpc'],
    ['--otlp-protocol', 'http/json', 'otlpProtocol', 'http/json'],
    ['--otlp-filter', 'result=failure&namespace=shop&uid=0', 'otlpFilter', { result: 'failure', namespace: 'shop', uid: 0 }],
    ['--otlp-filter', 'q=curl%20-s&since=2026-11-24T16:02:03Z', 'otlpFilter', { q: 'curl -s', since: '2026-11-24T16:02:03Z' }],
    ['--otlp-filter', '', 'otlpFilter', null],
    ['--otlp-filter', 'origin=exec&origin=debug&namespace=shop', 'otlpFilter', { origin: ['exec', 'debug'], namespace: 'shop' }],
    ['--exclude-origin', 'probe', 'excludeOrigins', ['probe']],
    ['--exclude-origin', ' probe , debug', 'excludeOrigins', ['probe', 'debug']],
    ['--exclude-origin', '', 'excludeOrigins', []],
    ['--cgroup-rate', '50/s', 'cgroupRate', 50],
    ['--cgroup-rate', '0', 'cgroupRate', 0],
    ['--cgroup-burst', '10', 'cgroupBurst', 10],
    ['--include-namespaces', 'shop, team-*', 'includeNamespaces', ['shop', 'team-*']],
    ['--exclude-namespaces', 'kube-system,*-canary', 'excludeNamespaces', ['kube-system', '*-canary']],
    ['--exclude-namespaces', '', 'excludeNamespaces', []],
    ['--exclude-pods', 'app=healthcheck', 'excludePods', [{ text: 'app=healthcheck', requirements: [{ key: 'app', op: 'in', values: ['healthcheck'] }] }]],
  ] as const;
  for (const [flag, value, key, want] of cases) {
    t.same(run([`${flag}=${value}`])[key], want, `${flag}=${value}`);
    t.same(run([flag, value])[key], want, `${flag} ${value}`);
    const option = OPTIONS.find((o) => o.flag === flag);
    if (option?.env) t.same(run([], { [option.env]: value })[key], want, `${option.env}=${value}`);
  }
});

t.test('switches: --x turns one on, --no-x off, --x=value and its variable take 1, 0, true, false, yes, no', async (t) => {
  t.equal(run(['--log-events']).logEvents, true, '--log-events alone turns it on');
  t.equal(run(['--log-events=false'], { EXECWATCH_LOG_EVENTS: 'true' }).logEvents, false, '--log-events=false wins over the environment');
  t.equal(run(['--api-insecure=YES']).apiInsecure, true, '--api-insecure=YES');
  t.equal(run(['--check=1']).check, true, '--check=1');
  t.equal(run(['--no-log-events'], { EXECWATCH_LOG_EVENTS: 'true' }).logEvents, false, '--no-log-events wins over the environment');
  t.equal(run(['--log-events'], { EXECWATCH_LOG_EVENTS: 'no' }).logEvents, true, '--log-events wins over the environment');
  t.equal(run(['--check']).check, true, '--check alone turns it on');
  t.equal(run([], { EXECWATCH_CHECK: '1' }).check, false, '--check has no environment variable');
  t.equal(run(['--log-events', '--check']).logEvents, true, 'a switch does not eat the next flag');
  const values = [['yes', true], ['FALSE', false], ['1', true], ['0', false], ['true', true], ['No', false]] as const;
  for (const [value, want] of values) {
    t.equal(run([], { EXECWATCH_LOG_EVENTS: value }).logEvents, want, `EXECWATCH_LOG_EVENTS=${value}`);
  }
});

t.test('flags override the environment, which overrides the fallbacks', async (t) => {
  t.equal(run(['--recent-events=5'], { EXECWATCH_RECENT_EVENTS: '7' }).recentEvents, 5, 'flag over env');
  t.equal(run([], { EXECWATCH_RECENT_EVENTS: '7' }).recentEvents, 7, 'env over default');
  t.equal(run([], { NODE_NAME: 'from-downward-api' }).nodeName, 'from-downward-api', 'NODE_NAME is read');
  t.equal(run([], { NODE_NAME: 'a', EXECWATCH_NODE_NAME: 'b' }).nodeName, 'b', 'EXECWATCH_NODE_NAME over NODE_NAME');
  t.equal(run(['--node-name=c'], { NODE_NAME: 'a', EXECWATCH_NODE_NAME: 'b' }).nodeName, 'c', 'flag over both');
  t.equal(run([], { KUBECONFIG: '/a/config' }).kubeconfig, '/a/config', 'KUBECONFIG is read');
  t.equal(run([], { KUBECONFIG: ':/first:/second' }).kubeconfig, '/first', 'a KUBECONFIG list gives its first entry');
  t.equal(run([], { KUBECONFIG: '' }).kubeconfig, null, 'an empty KUBECONFIG is no kubeconfig');
  t.equal(run([], { KUBECONFIG: '/a', EXECWATCH_KUBECONFIG: '/b:c' }).kubeconfig, '/b:c', 'EXECWATCH_KUBECONFIG is one path, over KUBECONFIG');
  t.equal(run([], { EXECWATCH_METRIC_LABELS: '' }).metricLabels.length, 0, 'an empty label list from the environment');
  t.equal(run([], { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).otlpProtocol, 'grpc', 'the standard OTEL_EXPORTER_OTLP_PROTOCOL is read');
  t.equal(run([], { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json' }).otlpProtocol, 'http/json',
    'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL over it');
  t.equal(run([], { OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc', EXECWATCH_OTLP_PROTOCOL: 'http/json' }).otlpProtocol, 'http/json', 'EXECWATCH_OTLP_PROTOCOL over both');
});

t.test('--no-default-redaction turns the built-in secret rules off', async (t) => {
  t.equal(run([]).defaultRedaction, true, 'on by default');
  t.equal(run(['--no-default-redaction']).defaultRedaction, false, '--no-default-redaction');
  t.equal(run([], { EXECWATCH_DEFAULT_REDACTION: 'false' }).defaultRedaction, false, 'EXECWATCH_DEFAULT_REDACTION=false');
  t.equal(run(['--default-redaction'], { EXECWATCH_DEFAULT_REDACTION: '0' }).defaultRedaction, true, 'the flag wins over the variable');
});

t.test('--redact: repeatable, one regex per line in the environment, compiled global', async (t) => {
  const fromFlags = run(['--redact', '-p\\S+', '--redact=(password|token)=\\S+']).redact;
  t.same(fromFlags.map((r) => r.source), ['-p\\S+', '(password|token)=\\S+'], 'both flags, in order; a value may start with -');
  t.same(run(['--redact=-x', '--redact', '--y']).redact.map((r) => r.source), ['-x', '--y'], 'after = or in the next argument');
  t.same(run(['--redact', '-']).redact.map((r) => r.source), ['-'], 'a lone - is a value, not a flag');
  t.ok(fromFlags.every((r) => r.flags === 'gl'), 'compiled with the g flag, for V8\'s linear engine (l)');
  t.equal('x -psecret -pmore'.replace(fromFlags[0] as RegExp, '***'), 'x *** ***', 'replaces every occurrence');
  const fromEnv = run([], { EXECWATCH_REDACT: 'a,b\r\n\nc d\n' }).redact;
  t.same(fromEnv.map((r) => r.source), ['a,b', 'c d'], 'one per line; commas, spaces kept; empty lines skipped');
  t.same(run(['--redact=x'], { EXECWATCH_REDACT: 'y' }).redact.map((r) => r.source), ['x'], 'flags replace the environment list');
});

t.test('bad values stop with one line naming the flag or variable, the value and what is allowed', async (t) => {
  const cases = [
    [['--argv-max-bytes', '99999'], {}, '--argv-max-bytes: "99999" is out of range (an integer from 1 to 32768)'],
    [['--argv-max-bytes=0'], {}, '--argv-max-bytes: "0" is out of range (an integer from 1 to 32768)'],
    [['--ancestors=65'], {}, '--ancestors: "65" is out of range (an integer from 0 to 64)'],
    [[], { EXECWATCH_RECENT_EVENTS: 'abc' }, 'EXECWATCH_RECENT_EVENTS (--recent-events): "abc" is not an integer (an integer from 1 to 1000000)'],
    [['--recent-events=-1'], {}, '--recent-events: "-1" is not an integer (an integer from 1 to 1000000)'],
    [['--recent-events=1e3'], {}, '--recent-events: "1e3" is not an integer (an integer from 1 to 1000000)'],
    [['--max-series=1000001'], {}, '--max-series: "1000001" is out of range (an integer from 1 to 1000000)'],
    [['--metrics-address=9464'], {}, '--metrics-address: "9464" is not host:port (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [['--metrics-address=:::9464'], {}, '--metrics-address: ":::9464" is not host:port (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [['--metrics-address=0.0.0.0:65536'], {}, '--metrics-address: "0.0.0.0:65536" has a port out of range (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [['--api-address=[nothost]:1'], {}, '--api-address: "[nothost]:1" has an invalid host "nothost" (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [['--api-address=:9465'], {}, '--api-address: ":9465" has an invalid host "" (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [[], { EXECWATCH_API_ADDRESS: 'bad_host:1' }, 'EXECWATCH_API_ADDRESS (--api-address): "bad_host:1" has an invalid host "bad_host" (host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464)'],
    [['--node-name='], {}, '--node-name: "" is empty (a non-empty node name of at most 253 characters)'],
    [[], { NODE_NAME: '' }, 'NODE_NAME (--node-name): "" is empty (a non-empty node name of at most 253 characters)'],
    [['--node-name', 'n'.repeat(254)], {}, `--node-name: "${'n'.repeat(254)}" is too long (a non-empty node name of at most 253 characters)`],
    [[], { EXECWATCH_KUBECONFIG: '' }, 'EXECWATCH_KUBECONFIG (--kubeconfig): "" is empty (a non-empty path of at most 4096 characters)'],
    [['--bpf-object='], {}, '--bpf-object: "" is empty (a non-empty path of at most 4096 characters)'],
    [['--api-token-file='], {}, '--api-token-file: "" is empty (a non-empty path of at most 4096 characters)'],
    [[], { EXECWATCH_API_INSECURE: 'maybe' }, 'EXECWATCH_API_INSECURE (--api-insecure): "maybe" is not a boolean (one of 1, 0, true, false, yes, no)'],
    [['--ringbuf-bytes=8MB'], {}, '--ringbuf-bytes: "8MB" is not a byte size (a power of two from 64Ki to 1Gi, in bytes or with a Ki, Mi or Gi suffix)'],
    [['--ringbuf-bytes=32Ki'], {}, '--ringbuf-bytes: "32Ki" is out of range (a power of two from 64Ki to 1Gi, in bytes or with a Ki, Mi or Gi suffix)'],
    [['--ringbuf-bytes=2Gi'], {}, '--ringbuf-bytes: "2Gi" is out of range (a power of two from 64Ki to 1Gi, in bytes or with a Ki, Mi or Gi suffix)'],
    [['--ringbuf-bytes=100000'], {}, '--ringbuf-bytes: "100000" is not a power of two (a power of two from 64Ki to 1Gi, in bytes or with a Ki, Mi or Gi suffix)'],
    [['--metric-labels=namespace,node'], {}, '--metric-labels: "namespace,node" names an unknown label "node" (a comma-separated subset of namespace, workload, pod, container, origin, or empty)'],
    [['--metric-labels=pod,,container'], {}, '--metric-labels: "pod,,container" names an unknown label "" (a comma-separated subset of namespace, workload, pod, container, origin, or empty)'],
    [['--exclude-origin=probes'], {}, '--exclude-origin: "probes" names an unknown origin "probes" (a comma-separated list of host, init, workload, exec, probe, debug, or empty)'],
    [['--metric-labels=pod,pod'], {}, '--metric-labels: "pod,pod" repeats "pod" (a comma-separated subset of namespace, workload, pod, container, origin, or empty)'],
    [['--api-allowed-hosts=a,evil.example:9465'], {}, '--api-allowed-hosts: "a,evil.example:9465" has an invalid name "evil.example:9465" (a comma-separated list of DNS names, or empty)'],
    [['--redact', '('], {}, '--redact: "(" is not a valid regular expression (Invalid regular expression: /(/g: Unterminated group)'],
    [['--redact='], {}, '--redact: "" is empty (a non-empty JavaScript regular expression)'],
    [[], { EXECWATCH_REDACT: 'ok\n[z-a]' }, 'EXECWATCH_REDACT (--redact): "[z-a]" is not a valid regular expression (Invalid regular expression: /[z-a]/g: Range out of order in character class)'],
    [['--log-events=maybe'], {}, '--log-events: "maybe" is not a boolean (one of 1, 0, true, false, yes, no)'],
    [['--exclude-namespaces=kube-system,Shop'], {}, '--exclude-namespaces: "kube-system,Shop" has an invalid namespace pattern "Shop" (a comma-separated list of namespace names, * matching any characters (kube-*), or empty)'],
    [[], { EXECWATCH_INCLUDE_NAMESPACES: 'a,,b' }, 'EXECWATCH_INCLUDE_NAMESPACES (--include-namespaces): "a,,b" has an invalid namespace pattern "" (a comma-separated list of namespace names, * matching any characters (kube-*), or empty)'],
    [['--exclude-pods', 'app=a b'], {}, '--exclude-pods: "app=a b" has an invalid label value "a b" (a label selector as kubectl -l takes it: k=v, k!=v, k, !k, k in (a,b), k notin (a,b), joined by commas)'],
    [['--cgroup-rate=10/m'], {}, '--cgroup-rate: "10/m" is not a rate (executions per second from 0 (no limit) to 1000000, as N/s or N)'],
    [['--cgroup-rate=2000000/s'], {}, '--cgroup-rate: "2000000/s" is out of range (executions per second from 0 (no limit) to 1000000, as N/s or N)'],
    [['--exclude-pods='], {}, '--exclude-pods: "" is not a label selector (a label selector as kubectl -l takes it: k=v, k!=v, k, !k, k in (a,b), k notin (a,b), joined by commas)'],
    [['--api-insecure=maybe'], {}, '--api-insecure: "maybe" is not a boolean (one of 1, 0, true, false, yes, no)'],
    [['--check='], {}, '--check: "" is not a boolean (one of 1, 0, true, false, yes, no)'],
    [['--otlp-endpoint=127.0.0.1:4318'], {}, '--otlp-endpoint: "127.0.0.1:4318" does not start with http:// or https:// (an http:// or https:// URL such as http://127.0.0.1:4318)'],
    [['--otlp-endpoint=http://[collector'], {}, '--otlp-endpoint: "http://[collector" is not a URL (an http:// or https:// URL such as http://127.0.0.1:4318)'],
    [[], { EXECWATCH_OTLP_ENDPOINT: 'grpc://c:4317' }, 'EXECWATCH_OTLP_ENDPOINT (--otlp-endpoint): "grpc://c:4317" does not start with http:// or https:// (an http:// or https:// URL such as http://127.0.0.1:4318)'],
    [[], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http' }, 'OTEL_EXPORTER_OTLP_PROTOCOL (--otlp-protocol): "http" is not an OTLP protocol (one of http/protobuf, grpc, http/json)'],
    [['--otlp-filter=limit=5'], {}, `--otlp-filter: "limit=5" names an unknown parameter "limit" ${QUERY_HELP}`],
    [['--otlp-filter=pod=a&pod=b'], {}, `--otlp-filter: "pod=a&pod=b" repeats "pod" ${QUERY_HELP}`],
    [['--otlp-filter=result=failed'], {}, `--otlp-filter: "result=failed" has a bad result (must be equal to one of the allowed values) ${QUERY_HELP}`],
    [['--otlp-filter=uid=-1'], {}, `--otlp-filter: "uid=-1" has a bad uid (must be >= 0) ${QUERY_HELP}`],
    [[], { EXECWATCH_OTLP_FILTER: 'since=yesterday' }, `EXECWATCH_OTLP_FILTER (--otlp-filter): "since=yesterday" has a bad since (must match format "date-time") ${QUERY_HELP}`],
    [['--otlp-filter=since=2016-12-31T23:59:60Z'], {}, `--otlp-filter: "since=2016-12-31T23:59:60Z" has a bad since ("2016-12-31T23:59:60Z" is not a representable time) ${QUERY_HELP}`],
    [[], { EXECWATCH_LOG_LEVEL: 'verbose' }, `EXECWATCH_LOG_LEVEL (--log-level): "verbose" is not a log level (one of ${LOG_LEVELS.join(', ')})`],
    [['--pod-grace-period=25h'], {}, '--pod-grace-period: "25h" is out of range (a duration from 0 to 24h: 500ms, 30s, 2m, 1h or plain seconds)'],
    [['--pod-grace-period=2d'], {}, '--pod-grace-period: "2d" is not a duration (a duration from 0 to 24h: 500ms, 30s, 2m, 1h or plain seconds)'],
    [['--enrich-wait=61s'], {}, '--enrich-wait: "61s" is out of range (a duration from 0 to 60s: 500ms, 30s, 2m, 1h or plain seconds)'],
    [['--stall-timeout=2h'], {}, '--stall-timeout: "2h" is out of range (a duration from 0 to 1h: 500ms, 30s, 2m, 1h or plain seconds)'],
    [[], { EXECWATCH_KUBE_UNREADY_AFTER: 'soon' }, 'EXECWATCH_KUBE_UNREADY_AFTER (--kube-unready-after): "soon" is not a duration (a duration from 0 to 24h: 500ms, 30s, 2m, 1h or plain seconds)'],
    [['--run-as', 'nobody'], {}, '--run-as: "nobody" is not UID[:GID] (UID or UID:GID, numbers from 0 to 4294967294 (GID defaults to UID), e.g. 65534:65534)'],
    [['--run-as=65534:'], {}, '--run-as: "65534:" is not UID[:GID] (UID or UID:GID, numbers from 0 to 4294967294 (GID defaults to UID), e.g. 65534:65534)'],
    [[], { EXECWATCH_RUN_AS: '65534:4294967295' }, 'EXECWATCH_RUN_AS (--run-as): "65534:4294967295" is out of range (UID or UID:GID, numbers from 0 to 4294967294 (GID defaults to UID), e.g. 65534:65534)'],
    [['--run-as=-1'], {}, '--run-as: "-1" is not UID[:GID] (UID or UID:GID, numbers from 0 to 4294967294 (GID defaults to UID), e.g. 65534:65534)'],
    [['--recent-events=1', '--recent-events', '2'], {}, '--recent-events is given twice (it takes one value)'],
    [['--log-events', '--log-events'], {}, '--log-events is given twice'],
    [['--log-events', '--no-log-events'], {}, '--log-events is given twice'],
    [['--log-events=1', '--log-events'], {}, '--log-events is given twice'],
    [['--redact', 'a\n('], {}, '--redact: "a\\n(" is not a valid regular expression (Invalid regular expression: /a\n(/g: Unterminated group)'],
    ...(['(a)\\1x', '(?<q>.)\\k<q>', 'token=(?!x)', '(?<=token=)\\w+', 'a{17}', '[0-9a-f]{2,32}'] as const).map((pattern) => [
      ['--redact', pattern],
      {},
      `--redact: ${JSON.stringify(pattern)} cannot run in linear time (V8's linear-time engine runs patterns without backreferences (\\1, \\k<name>), lookahead or lookbehind ((?=, (?!, (?<=, (?<!) and counts above 16 (a{17}, a{2,20}))`,
    ] as const),
  ] as const;
  for (const [argv, env, want] of cases) {
    const message = errorOf([...argv], env);
    t.equal(message.replace(/\n/g, '\\n'), want.replace(/\n/g, '\\n'), `${JSON.stringify(argv)} ${JSON.stringify(env)}`);
  }
  const multiline = errorOf(['--node-name', 'a'.repeat(300) + '\nb']);
  t.notMatch(multiline, /\n/, 'a value with a newline still gives a one-line message');
});

/** What node:util parseArgs refuses, as our one line. */
const PARSE_ARGS_ERRORS = [
  // ERR_PARSE_ARGS_UNKNOWN_OPTION
  [['--foo'], 'unknown flag --foo (see --help)'],
  [['--foo=1'], 'unknown flag --foo (see --help)'],
  [['-x'], 'unknown flag -x (see --help)'],
  [['-hx'], 'unknown flag -x (see --help)'],
  [['--no-redact'], 'unknown flag --no-redact (see --help)'],
  // ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL
  [['serve'], 'unexpected argument "serve": execwatch takes only flags (see --help)'],
  [['--node-name', 'a', "it's"], 'unexpected argument "it\'s": execwatch takes only flags (see --help)'],
  [['--', '--check'], 'unexpected argument "--check": execwatch takes only flags (see --help)'],
  [['-'], 'unexpected argument "-": execwatch takes only flags (see --help)'],
  // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: no value after the last flag
  [['--log-level'], '--log-level: a value is missing (--log-level <level>; see --help)'],
  [['--check', '--redact'], '--redact: a value is missing (--redact <regex>; see --help)'],
  // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: a value given to --help, --version or a --no-x switch
  [['--help=please'], '--help takes no value here (see --help)'],
  [['--version=1'], '--version takes no value here (see --help)'],
  [['--no-log-events=foo'], '--log-events takes no value here (see --help)'],
] as const;

t.test('what parseArgs refuses stops with one line naming the flag or argument', async (t) => {
  for (const [argv, want] of PARSE_ARGS_ERRORS) t.equal(errorOf([...argv]), want, JSON.stringify(argv));
});

/** Listen addresses as a user writes them, IPv4, IPv6 and names. */
const ADDRESSES = ['127.0.0.1:9465', '0.0.0.0:1', 'localhost:9465', '[::1]:9465', '[::]:9465', '[::ffff:10.0.0.1]:9465', 'node-1.example:9465'] as const;

t.test('formatHostPort writes an address as --api-address reads it, an IPv6 host in brackets', async (t) => {
  for (const address of ADDRESSES) {
    const { host, port } = run(['--api-address', address, '--api-insecure']).apiAddress;
    t.equal(formatHostPort(host, port), address, address);
  }
});

t.test('--help and --version', async (t) => {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  for (const flag of ['--help', '-h']) {
    const parsed = parseConfig(['--recent-events=1', '--recent-events=2', flag], { EXECWATCH_RECENT_EVENTS: 'x' });
    t.equal(parsed.kind, 'help', `${flag} asks for help, whatever the other values are`);
    if (parsed.kind !== 'help') continue;
    t.match(parsed.text, /^Usage: execwatch \[options\]/, 'starts with usage');
    t.match(parsed.text, `execwatch ${version}`, 'names the version');
    for (const o of OPTIONS) {
      const block = parsed.text.slice(parsed.text.indexOf(`  ${o.flag}`));
      t.match(block, o.description, `${o.flag} described`);
      t.match(block.split('\n')[2], `default ${o.default}`, `${o.flag} default shown`);
      if (o.env) t.match(block.split('\n')[2], `env ${o.env}`, `${o.flag} names ${o.env}`);
    }
  }
  t.same(parseConfig(['--version'], {}), { kind: 'version', version }, '--version from package.json');
  t.equal(errorOf(['--help', '--bogus']), 'unknown flag --bogus (see --help)', 'every argument is read first: an unknown one is refused');
});

t.test('the option table is consistent', async (t) => {
  t.equal(new Set(OPTIONS.map((o) => o.flag)).size, OPTIONS.length, 'flags are unique');
  for (const o of OPTIONS) {
    const derived = `EXECWATCH_${o.flag.slice(2).toUpperCase().replace(/-/g, '_')}`;
    t.equal(o.env ?? derived, derived, `${o.flag}: environment variable named after the flag`);
    t.ok(o.description.length > 0 && !o.description.includes('\n'), `${o.flag}: a one-line description`);
  }
});
