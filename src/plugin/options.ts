/**
 * The plugin's flags: the ones every kubectl user types (`--kubeconfig`, `--context`,
 * `-n/--namespace`, `-o`), the reach of the fan-out, and the events API's filters. The filters are
 * checked by ajv against the API's own query schema (src/events/filter.ts), so the plugin refuses
 * exactly what an agent would, but before asking a thousand of them, naming the flag.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Ajv, type ErrorObject } from 'ajv';
import formats from 'ajv-formats';
import { compileFilter, EventsQuery, FilterError, StreamQuery, type EventFilter } from '../events/filter.js';
import { formatTime } from '../events/schema.js';

/** A flag's value that cannot be used: the message names the flag; exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Output formats of `-o`. */
export const OUTPUTS = ['table', 'wide', 'json', 'jsonl'] as const;
export type Output = (typeof OUTPUTS)[number];

/** Defaults, shown by --help. */
export const DEFAULTS = {
  namespace: 'execwatch',
  agentSelector: 'app.kubernetes.io/name=execwatch',
  timeout: '10s',
  maxParallel: 32,
  limit: 100,
} as const;

/** Flags of every command that talks to the agents. */
export const CLUSTER_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  'agent-selector': { type: 'string' },
  'token-file': { type: 'string' },
  node: { type: 'string', multiple: true },
  'node-selector': { type: 'string' },
  timeout: { type: 'string' },
  'max-parallel': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** The events API's filters as flags: flag → query parameter. */
export const FILTER_FLAGS = {
  'namespace-filter': 'namespace',
  pod: 'pod',
  container: 'container',
  comm: 'comm',
  filename: 'filename',
  q: 'q',
  result: 'result',
  attribution: 'attribution',
  image: 'image',
  workload: 'workload',
  drift: 'drift',
  origin: 'origin',
  session: 'sessionExecId',
  'exec-id': 'execId',
  'parent-exec-id': 'parentExecId',
  uid: 'uid',
  euid: 'euid',
  since: 'since',
  until: 'until',
  kind: 'kind',
} as const satisfies Record<string, keyof EventFilter>;

/** Compiles only while every parameter of the events API's filter has its flag above. */
const EVERY_FILTER_HAS_A_FLAG: Exclude<keyof EventFilter, (typeof FILTER_FLAGS)[keyof typeof FILTER_FLAGS]> extends never ? true : never = true;
void EVERY_FILTER_HAS_A_FLAG;

const FILTER_OPTIONS = Object.fromEntries(
  Object.keys(FILTER_FLAGS).map((flag) => [flag, flag === 'q' ? { type: 'string', short: 'q' } : { type: 'string' }]),
) as { [K in keyof typeof FILTER_FLAGS]: { type: 'string' } };

/** Where the agents are and how far to reach. */
export interface ClusterOptions {
  kubeconfig: string | undefined;
  context: string | undefined;
  namespace: string;
  agentSelector: string;
  tokenFile: string | undefined;
  nodes: string[];
  nodeSelector: string | undefined;
  timeoutMs: number;
  maxParallel: number;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10s`, `2m`… in milliseconds, or a UsageError naming the flag. */
export function durationMs(flag: string, raw: string): number {
  const m = DURATION.exec(raw);
  if (!m) throw new UsageError(`--${flag} "${raw}" is not a duration (500ms, 10s, 2m, 1h, 7d)`);
  return Number(m[1]) * (DURATION_MS[m[2] as string] as number);
}

function positiveInteger(flag: string, raw: string, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`--${flag} "${raw}" is not an integer from 1 to ${max}`);
  }
  return Number(raw);
}

/** The cluster flags of a parseArgs result. */
export function clusterOptions(values: Record<string, unknown>): ClusterOptions {
  const str = (name: string) => values[name] as string | undefined;
  const timeoutMs = durationMs('timeout', str('timeout') ?? DEFAULTS.timeout);
  if (timeoutMs === 0) throw new UsageError('--timeout must be more than 0');
  return {
    kubeconfig: str('kubeconfig'),
    context: str('context'),
    namespace: str('namespace') ?? DEFAULTS.namespace,
    agentSelector: str('agent-selector') ?? DEFAULTS.agentSelector,
    tokenFile: str('token-file'),
    nodes: (values.node as string[] | undefined) ?? [],
    nodeSelector: str('node-selector'),
    timeoutMs,
    maxParallel: positiveInteger('max-parallel', str('max-parallel') ?? String(DEFAULTS.maxParallel), 1000),
  };
}

/** The flag that sets a query parameter, for messages. */
function flagOf(parameter: string): string {
  // Every filter parameter has its flag (FILTER_FLAGS covers EventFilter).
  const [flag] = Object.entries(FILTER_FLAGS).find(([, p]) => p === parameter) as [string, string];
  return flag === 'q' ? '-q' : `--${flag}`;
}

/** `--since` or `--until`: a duration back from `now` (10m, 1h, 7d) or an RFC 3339 time, as the API takes. */
function timeOf(flag: 'since' | 'until', raw: string, now: number): string {
  return DURATION.test(raw) ? formatTime(BigInt(now - durationMs(flag, raw)) * 1_000_000n) : raw;
}

/**
 * The filter flags (plus `--limit` for `events`, or none for a stream) as the query the agents
 * take, validated against that route's schema; a UsageError names the flag.
 */
export function queryOf(values: Record<string, unknown>, route: 'events' | 'stream', now = Date.now()): Record<string, string> {
  // A stream brings what happens from now on: an end in the past would hold it silent for good.
  if (route === 'stream' && values.until !== undefined) throw new UsageError('--until is for events already recorded (kubectl execwatch events); a live stream has no end');
  const query: Record<string, string> = {};
  for (const [flag, parameter] of Object.entries(FILTER_FLAGS)) {
    const raw = values[flag] as string | undefined;
    if (raw !== undefined) query[parameter] = parameter === 'since' || parameter === 'until' ? timeOf(parameter, raw, now) : raw;
  }
  if (route === 'events') query.limit = (values.limit as string | undefined) ?? String(DEFAULTS.limit);
  // 'array': one --origin is a list of one, as the agents' own validation (Fastify's) reads it.
  const ajv = new Ajv({ coerceTypes: 'array', useDefaults: true });
  formats.default(ajv, ['date-time']);
  const valid = ajv.compile(route === 'events' ? EventsQuery : StreamQuery);
  // ajv coerces in place: check a copy, keep the text.
  const copy: Record<string, unknown> = { ...query };
  if (!valid(copy)) {
    const [error] = valid.errors as [ErrorObject];
    // An array's item (origin) is /origin/0: the parameter is the first segment.
    const parameter = error.instancePath.slice(1).split('/')[0] as string;
    const flag = parameter === 'limit' ? '--limit' : flagOf(parameter);
    throw new UsageError(`${flag} "${query[parameter]}" ${error.message as string}`);
  }
  try {
    compileFilter(copy as EventFilter);
  } catch (err) {
    const { parameter, message } = err as FilterError;
    throw new UsageError(`${flagOf(parameter)} ${message}`);
  }
  return query;
}

/** parseArgs over one command's flags; an unknown or malformed flag is a UsageError. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export { FILTER_OPTIONS };
