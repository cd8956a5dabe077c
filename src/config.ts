/**
 * The agent's configuration: every option is a flag and an EXECWATCH_* environment variable,
 * validated at start. (The parser and its option table are added below this contract.)
 */
import { isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { defaultBpfObjectPath } from './capture/native.js';
import { packageVersion } from './package.js';

/** A host and port to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Labels of execwatch_execs_total that --metric-labels can keep or drop (result is always kept). */
export const METRIC_LABELS = ['namespace', 'workload', 'pod', 'container'] as const;
export type MetricLabel = (typeof METRIC_LABELS)[number];

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
  nodeName: string;
  /** Explicit kubeconfig path, or null: in-cluster when available, else standalone. */
  kubeconfig: string | null;
  recentEvents: number;
  argvMaxBytes: number;
  ringbufBytes: number;
  metricLabels: MetricLabel[];
  redact: RegExp[];
  logEvents: boolean;
  logLevel: LogLevel;
  check: boolean;
  /** Keep every capability after start-up instead of dropping them once the programs are attached. */
  keepCapabilities: boolean;
  bpfObject: string;
  /** How long series and cache entries of a deleted pod are kept, in milliseconds. */
  podGracePeriodMs: number;
  /** Cap on execwatch_execs_total series; beyond it pods are counted under pod="_other". */
  maxSeries: number;
  /** Concurrent GET /api/events/stream subscribers allowed; more get 429. */
  maxStreams: number;
  /** How long an event of a not-yet-known container waits for its pod, in milliseconds. */
  enrichWaitMs: number;
}

// ---------------------------------------------------------------------------------------------
// The parser. One option table drives parsing, validation, environment names and --help.

/** What the command line asks for: run with a configuration, print help, or print the version. */
export type ParsedCommand =
  | { kind: 'run'; config: Config }
  | { kind: 'help'; text: string }
  | { kind: 'version'; version: string };

/** A bad flag or environment value; the message is one line naming it, the value and what is allowed. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A value's problem before we know where it came from (flag or environment). */
class Invalid extends Error {
  constructor(
    readonly problem: string,
    readonly allowed: string,
  ) {
    super(problem);
  }
}

/** One option: a flag, usually an environment variable, a validator producing the Config field. */
interface OptionSpec<K extends keyof Config> {
  readonly key: K;
  readonly flag: `--${string}`;
  /** Null when the option is a flag only. */
  readonly env: string | null;
  /** Read when `env` is unset: the conventional variable (the downward API's NODE_NAME, KUBECONFIG). */
  readonly fallbackEnv?: string;
  /** Placeholder of the value in --help; empty for boolean flags. */
  readonly value: string;
  readonly description: string;
  /** The default as a user would write it; parsed by `parse` unless `computeDefault` is given. */
  readonly default: string;
  readonly computeDefault?: () => Config[K];
  readonly parse: (raw: string) => Config[K];
  readonly boolean?: true;
  readonly repeatable?: true;
}
type AnyOption = { [K in keyof Config]: OptionSpec<K> }[keyof Config];

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function parseAddress(raw: string): ListenAddress {
  const allowed = 'host:port with a port from 0 to 65535, an IPv6 host in brackets as [::]:9464';
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(raw);
  if (!m) throw new Invalid('is not host:port', allowed);
  // Exactly one of the two host groups matched.
  const bracketed = m[1] !== undefined;
  const host = (bracketed ? m[1] : m[2]) as string;
  if (bracketed ? !isIPv6(host) : !HOST_NAME.test(host)) throw new Invalid(`has an invalid host "${host}"`, allowed);
  const port = Number(m[3]);
  if (port > 65535) throw new Invalid('has a port out of range', allowed);
  return { host, port };
}

/** host:port as a user writes it, an IPv6 host in brackets: [::1]:9465 (parseAddress reads it back). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function integer(min: number, max: number): (raw: string) => number {
  const allowed = `an integer from ${min} to ${max}`;
  return (raw) => {
    if (!/^\d+$/.test(raw)) throw new Invalid('is not an integer', allowed);
    const n = Number(raw);
    if (n < min || n > max) throw new Invalid('is out of range', allowed);
    return n;
  };
}

const BYTE_UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

function ringbufBytes(raw: string): number {
  const allowed = 'a power of two from 64Ki to 1Gi, in bytes or with a Ki, Mi or Gi suffix';
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(raw);
  if (!m) throw new Invalid('is not a byte size', allowed);
  const n = Number(m[1]) * (BYTE_UNITS[m[2] ?? ''] as number);
  if (n < 65536 || n > 1073741824) throw new Invalid('is out of range', allowed);
  // In range, n fits in 31 bits, so the bit trick is exact.
  if ((n & (n - 1)) !== 0) throw new Invalid('is not a power of two', allowed);
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 };

function duration(maxMs: number, max: string): (raw: string) => number {
  const allowed = `a duration from 0 to ${max}: 500ms, 30s, 2m, 1h or plain seconds`;
  return (raw) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw);
    if (!m) throw new Invalid('is not a duration', allowed);
    const ms = Math.round(Number(m[1]) * (DURATION_UNITS_MS[m[2] ?? ''] as number));
    if (ms > maxMs) throw new Invalid('is out of range', allowed);
    return ms;
  };
}

function text(what: string, maxLength: number): (raw: string) => string {
  const allowed = `a non-empty ${what} of at most ${maxLength} characters`;
  return (raw) => {
    if (raw === '') throw new Invalid('is empty', allowed);
    if (raw.length > maxLength) throw new Invalid('is too long', allowed);
    return raw;
  };
}

function metricLabels(raw: string): MetricLabel[] {
  const allowed = `a comma-separated subset of ${METRIC_LABELS.join(', ')}, or empty`;
  if (raw.trim() === '') return [];
  const labels: MetricLabel[] = [];
  for (const item of raw.split(',').map((s) => s.trim())) {
    const label = METRIC_LABELS.find((l) => l === item);
    if (!label) throw new Invalid(`names an unknown label "${item}"`, allowed);
    if (labels.includes(label)) throw new Invalid(`repeats "${item}"`, allowed);
    labels.push(label);
  }
  return labels;
}

function regex(raw: string): RegExp[] {
  if (raw === '') throw new Invalid('is empty', 'a non-empty JavaScript regular expression');
  try {
    // 'g': the redactor replaces every occurrence in an argument, not just the first.
    return [new RegExp(raw, 'g')];
  } catch (err) {
    throw new Invalid('is not a valid regular expression', (err as SyntaxError).message);
  }
}

function boolean(raw: string): boolean {
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new Invalid('is not a boolean', 'one of 1, 0, true, false, yes, no');
}

function logLevel(raw: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === raw);
  if (!level) throw new Invalid('is not a log level', `one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

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
  { key: 'nodeName', flag: '--node-name', env: 'EXECWATCH_NODE_NAME', fallbackEnv: 'NODE_NAME', value: '<name>',
    description: 'Name of this node: stamped on events, selects the pods to watch.', default: 'the host name',
    computeDefault: () => hostname(), parse: text('node name', 253) },
  { key: 'kubeconfig', flag: '--kubeconfig', env: 'EXECWATCH_KUBECONFIG', fallbackEnv: 'KUBECONFIG', value: '<path>',
    description: 'Kubeconfig file; without one, in-cluster config when available, else standalone.',
    default: 'none', computeDefault: () => null, parse: text('path', 4096) },
  { key: 'recentEvents', flag: '--recent-events', env: 'EXECWATCH_RECENT_EVENTS', value: '<count>',
    description: 'Recent events kept for the API and browse page.', default: '10000', parse: integer(1, 1_000_000) },
  { key: 'argvMaxBytes', flag: '--argv-max-bytes', env: 'EXECWATCH_ARGV_MAX_BYTES', value: '<bytes>',
    description: 'Bytes of argv captured per exec; longer argv is truncated and flagged.', default: '4096',
    parse: integer(1, 32768) },
  { key: 'ringbufBytes', flag: '--ringbuf-bytes', env: 'EXECWATCH_RINGBUF_BYTES', value: '<bytes>',
    description: 'Size of the BPF ring buffer (power of two; 8Mi, 64Ki, 1Gi suffixes work).', default: '8Mi',
    parse: ringbufBytes },
  { key: 'metricLabels', flag: '--metric-labels', env: 'EXECWATCH_METRIC_LABELS', value: '<list>',
    description: `Labels of execwatch_execs_total, from ${METRIC_LABELS.join(',')} (may be empty).`,
    default: METRIC_LABELS.join(','), parse: metricLabels },
  { key: 'redact', flag: '--redact', env: 'EXECWATCH_REDACT', value: '<regex>', repeatable: true,
    description: 'Replace argv matches with ***; repeatable (the variable holds one per line).', default: 'none',
    computeDefault: () => [], parse: regex },
  { key: 'logEvents', flag: '--log-events', env: 'EXECWATCH_LOG_EVENTS', value: '', boolean: true,
    description: 'Print every event as a JSON line on stdout.', default: 'false', parse: boolean },
  { key: 'logLevel', flag: '--log-level', env: 'EXECWATCH_LOG_LEVEL', value: '<level>',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`, default: 'info', parse: logLevel },
  { key: 'check', flag: '--check', env: null, value: '', boolean: true,
    description: 'Check requirements, load and attach the programs, report and exit (0 ok, 1 not).',
    default: 'false', parse: boolean },
  { key: 'keepCapabilities', flag: '--keep-capabilities', env: 'EXECWATCH_KEEP_CAPABILITIES', value: '', boolean: true,
    description: 'Keep every capability after start-up (by default each thread drops them once the programs are attached, all but CAP_BPF on kernels that refuse bpf(2) to unprivileged callers: the loss counters need it).',
    default: 'false', parse: boolean },
  { key: 'bpfObject', flag: '--bpf-object', env: 'EXECWATCH_BPF_OBJECT', value: '<path>',
    description: 'The compiled BPF object.', default: '<package root>/build/execwatch.bpf.o',
    computeDefault: () => defaultBpfObjectPath(), parse: text('path', 4096) },
  { key: 'podGracePeriodMs', flag: '--pod-grace-period', env: 'EXECWATCH_POD_GRACE_PERIOD', value: '<duration>',
    description: 'How long a deleted pod stays resolvable and keeps its metric series.', default: '2m',
    parse: duration(86_400_000, '24h') },
  { key: 'maxSeries', flag: '--max-series', env: 'EXECWATCH_MAX_SERIES', value: '<count>',
    description: 'Cap on execwatch_execs_total series; beyond it pods count under pod="_other".', default: '10000',
    parse: integer(1, 1_000_000) },
  { key: 'maxStreams', flag: '--max-streams', env: 'EXECWATCH_MAX_STREAMS', value: '<count>',
    description: 'Live streams served at once; one more is refused with 429.', default: '32',
    parse: integer(1, 10_000) },
  { key: 'enrichWaitMs', flag: '--enrich-wait', env: 'EXECWATCH_ENRICH_WAIT', value: '<duration>',
    description: 'How long an event of a not-yet-known container waits for its pod.', default: '2s',
    parse: duration(60_000, '60s') },
] as const satisfies readonly AnyOption[];

// Compile-time check that every Config field has an option.
type Unset = Exclude<keyof Config, (typeof OPTIONS)[number]['key']>;
const everyFieldHasAnOption: [Unset] extends [never] ? true : Unset = true;
void everyFieldHasAnOption;

const BY_FLAG = new Map<string, AnyOption>(OPTIONS.map((o) => [o.flag, o]));

/** The --help text, generated from OPTIONS. */
export function helpText(version: string = packageVersion()): string {
  const lines = [
    'Usage: execwatch [options]',
    '',
    `execwatch ${version}: records every exec on this node with eBPF and tells which pod ran it.`,
    'Every option is also an environment variable; a flag wins over its variable.',
    '',
    'Options:',
  ];
  for (const o of OPTIONS) {
    const env = [o.env, 'fallbackEnv' in o ? o.fallbackEnv : null].filter((e) => e !== null).join(', then ');
    lines.push(`  ${o.flag}${o.value ? ` ${o.value}` : ''}`, `      ${o.description}`);
    lines.push(`      ${env ? `env ${env}; ` : ''}default ${o.default}`);
  }
  lines.push('  -h, --help', '      Print this help and exit.', '  --version', '      Print the version and exit.', '');
  return lines.join('\n');
}

/** A raw value and where it came from, for the error message. */
interface Raw {
  value: string;
  source: string;
}

function envValues(o: AnyOption, env: NodeJS.ProcessEnv): Raw[] | null {
  if (o.env !== null && env[o.env] !== undefined) {
    const value = env[o.env] as string;
    const source = `${o.env} (${o.flag})`;
    // A repeatable option's variable holds one value per line: a value (--redact's regex) may
    // contain commas or spaces, never a newline worth keeping.
    if (o.repeatable) return value.split(/\r?\n/).filter((line) => line !== '').map((v) => ({ value: v, source }));
    return [{ value, source }];
  }
  const fallback = 'fallbackEnv' in o ? o.fallbackEnv : undefined;
  if (fallback === undefined || env[fallback] === undefined) return null;
  let value = env[fallback] as string;
  if (fallback === 'KUBECONFIG') {
    // kubectl's convention: a ':'-separated list; its first entry is the file we read.
    const first = value.split(':').find((p) => p !== '');
    if (first === undefined) return null;
    value = first;
  }
  return [{ value, source: `${fallback} (${o.flag})` }];
}

function parseRaw(o: AnyOption, raw: Raw): Config[keyof Config] {
  try {
    return o.parse(raw.value);
  } catch (err) {
    const e = err as Invalid;
    throw new ConfigError(`${raw.source}: ${JSON.stringify(raw.value)} ${e.problem} (${e.allowed})`);
  }
}

function resolve(o: AnyOption, given: Raw[] | undefined, env: NodeJS.ProcessEnv): Config[keyof Config] {
  const raws = given ?? envValues(o, env);
  if (raws === null) return o.computeDefault ? o.computeDefault() : o.parse(o.default);
  // A repeatable option parses each value to a list; the lists of every value are joined.
  if (o.repeatable) return raws.flatMap((raw) => parseRaw(o, raw) as readonly unknown[]) as Config[keyof Config];
  return parseRaw(o, raws[0] as Raw);
}

/**
 * Parses the command line (without node and the script) over the environment. Flags win over
 * environment variables, which win over defaults. Throws ConfigError on any bad input.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const given = new Map<AnyOption, Raw[]>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return { kind: 'help', text: helpText() };
    if (arg === '--version') return { kind: 'version', version: packageVersion() };
    if (!arg.startsWith('-')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}: execwatch takes only flags (see --help)`);
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const o = BY_FLAG.get(flag);
    if (!o) throw new ConfigError(`unknown flag ${flag} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if ('boolean' in o) value = 'true';
    else if (i + 1 < argv.length) value = argv[++i] as string;
    else throw new ConfigError(`${flag}: a value is missing (${flag} ${o.value}; see --help)`);
    const previous = given.get(o);
    if (previous && !('repeatable' in o)) throw new ConfigError(`${flag} is given twice (it takes one value)`);
    given.set(o, [...(previous ?? []), { value, source: flag }]);
  }
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const o of OPTIONS) config[o.key] = resolve(o, given.get(o), env);
  return { kind: 'run', config: config as Config };
}
