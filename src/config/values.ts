/**
 * The validators of the option table: each turns one raw value (a flag's or a variable's) into its
 * Config field, or throws Invalid with the problem and what is allowed.
 */
import { isIPv6 } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { Ajv, type ErrorObject } from 'ajv';
import formats from 'ajv-formats';
import { compileFilter, FilterError, FilterQuery, type EventFilter } from '../events/filter.js';
import { ORIGINS, type Origin } from '../events/schema.js';
import { parseLabelSelector, type LabelSelector } from '../scope/rules.js';
import { LOG_LEVELS, METRIC_LABELS, OTLP_PROTOCOLS, type ListenAddress, type LogLevel, type MetricLabel, type OtlpProtocol, type RunAs } from '../config.js';

/** A value's problem before we know where it came from (flag or environment): parse.ts words the message. */
export class Invalid extends Error {
  constructor(
    readonly problem: string,
    readonly allowed: string,
  ) {
    super(problem);
  }
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** A comma-separated list of DNS names (lowercased), or empty. */
export function hostNames(raw: string): string[] {
  const allowed = 'a comma-separated list of DNS names, or empty';
  if (raw.trim() === '') return [];
  return raw.split(',').map((item) => {
    const name = item.trim();
    if (!HOST_NAME.test(name) || name.length > 253) throw new Invalid(`has an invalid name "${name}"`, allowed);
    return name.toLowerCase();
  });
}

export function parseAddress(raw: string): ListenAddress {
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

export function integer(min: number, max: number): (raw: string) => number {
  const allowed = `an integer from ${min} to ${max}`;
  return (raw) => {
    if (!/^\d+$/.test(raw)) throw new Invalid('is not an integer', allowed);
    const n = Number(raw);
    if (n < min || n > max) throw new Invalid('is out of range', allowed);
    return n;
  };
}

const BYTE_UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

export function ringbufBytes(raw: string): number {
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

export function duration(maxMs: number, max: string): (raw: string) => number {
  const allowed = `a duration from 0 to ${max}: 500ms, 30s, 2m, 1h or plain seconds`;
  return (raw) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw);
    if (!m) throw new Invalid('is not a duration', allowed);
    const ms = Math.round(Number(m[1]) * (DURATION_UNITS_MS[m[2] ?? ''] as number));
    if (ms > maxMs) throw new Invalid('is out of range', allowed);
    return ms;
  };
}

export function text(what: string, maxLength: number): (raw: string) => string {
  const allowed = `a non-empty ${what} of at most ${maxLength} characters`;
  return (raw) => {
    if (raw === '') throw new Invalid('is empty', allowed);
    if (raw.length > maxLength) throw new Invalid('is too long', allowed);
    return raw;
  };
}

export function metricLabels(raw: string): MetricLabel[] {
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

/** What V8's linear engine cannot run, as --redact's error says it. */
const LINEAR_ALLOWED =
  'V8\'s linear-time engine runs patterns without backreferences (\\1, \\k<name>), lookahead or lookbehind ' +
  '((?=, (?!, (?<=, (?<!) and counts above 16 (a{17}, a{2,20})';

/**
 * A --redact pattern, compiled for V8's linear-time engine (the `l` flag). It runs on argv that any
 * pod controls, and on V8's usual backtracking engine `(a+)+$` against an argument of 28 `a`s and
 * a `b` holds the agent's only JavaScript thread for 17 s (57 s on Node 24), twice that per `a`
 * more. The linear engine is part of Node itself, on Node 20 and 24 alike, behind a V8 flag that
 * is read when a pattern is compiled, so it is set here, just before. Chosen over the `re2`
 * package: that has no prebuilt binary this project can install, so every `npm ci` and image build
 * compiles RE2 and Abseil from source (6 minutes here, and again for each Node ABI), and, called
 * once per argument, it cost more per event than the linear engine (measured over
 * bench/pipeline.mjs's argv mix: about 40 µs against 25 µs per pattern). The engine refuses what it
 * cannot run in linear time: such a pattern stops the agent at start, saying why.
 */
export function regex(raw: string): RegExp[] {
  if (raw === '') throw new Invalid('is empty', 'a non-empty JavaScript regular expression');
  try {
    // 'g': the redactor replaces every occurrence in an argument, not just the first.
    new RegExp(raw, 'g');
  } catch (err) {
    throw new Invalid('is not a valid regular expression', (err as SyntaxError).message);
  }
  setFlagsFromString('--enable-experimental-regexp-engine');
  try {
    return [new RegExp(raw, 'gl')];
  } catch {
    throw new Invalid('cannot run in linear time', LINEAR_ALLOWED);
  }
}

export function boolean(raw: string): boolean {
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new Invalid('is not a boolean', 'one of 1, 0, true, false, yes, no');
}

export function logLevel(raw: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === raw);
  if (!level) throw new Invalid('is not a log level', `one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/** UID[:GID], numeric (no name lookup: the image has no user database worth trusting); GID defaults to UID. */
export function runAs(raw: string): RunAs {
  // (uid_t)-1 means "leave unchanged" to setresuid(2): the largest id is one below it.
  const allowed = 'UID or UID:GID, numbers from 0 to 4294967294 (GID defaults to UID), e.g. 65534:65534';
  const m = /^(\d+)(?::(\d+))?$/.exec(raw);
  if (!m) throw new Invalid('is not UID[:GID]', allowed);
  const uid = Number(m[1]);
  const gid = Number(m[2] ?? m[1]);
  if (uid > 4294967294 || gid > 4294967294) throw new Invalid('is out of range', allowed);
  return { uid, gid };
}

export function httpUrl(raw: string): string {
  const allowed = 'an http:// or https:// URL such as http://127.0.0.1:4318';
  if (!/^https?:\/\//i.test(raw)) throw new Invalid('does not start with http:// or https://', allowed);
  if (!URL.canParse(raw)) throw new Invalid('is not a URL', allowed);
  return raw;
}

export function otlpProtocol(raw: string): OtlpProtocol {
  const protocol = OTLP_PROTOCOLS.find((p) => p === raw);
  if (!protocol) throw new Invalid('is not an OTLP protocol', `one of ${OTLP_PROTOCOLS.join(', ')}`);
  return protocol;
}

/**
 * A filter written as the query of GET /api/events (`result=failure&namespace=shop`), checked by
 * ajv against the same schema as the route's (types coerced from text as there); empty means none.
 */
export function eventFilter(raw: string): EventFilter | null {
  const allowed = `a query as GET /api/events takes, such as result=failure&namespace=shop, of ${Object.keys(FilterQuery.properties).join(', ')}`;
  if (raw.trim() === '') return null;
  const query: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(raw)) {
    if (!Object.hasOwn(FilterQuery.properties, name)) throw new Invalid(`names an unknown parameter "${name}"`, allowed);
    const repeatable = (FilterQuery.properties[name as keyof typeof FilterQuery.properties] as { type?: unknown }).type === 'array';
    if (repeatable) query[name] = [...((query[name] as string[] | undefined) ?? []), value];
    else if (Object.hasOwn(query, name)) throw new Invalid(`repeats "${name}"`, allowed);
    else query[name] = value;
  }
  const ajv = new Ajv({ coerceTypes: true });
  formats.default(ajv, ['date-time']);
  const valid = ajv.compile<EventFilter>(FilterQuery);
  if (!valid(query)) {
    // ajv sets errors whenever it says no; allErrors is off, so there is one.
    const [error] = valid.errors as [ErrorObject];
    throw new Invalid(`has a bad ${error.instancePath.slice(1)} (${error.message as string})`, allowed);
  }
  try {
    compileFilter(query);
  } catch (err) {
    throw new Invalid(`has a bad ${(err as FilterError).parameter} (${(err as FilterError).message})`, allowed);
  }
  return query;
}

/** A namespace name in which `*` stands for any run of characters. */
const NAMESPACE_PATTERN = /^[a-z0-9*]([-a-z0-9*]{0,61}[a-z0-9*])?$/;

/** A comma-separated list of namespace names or `*` patterns (kube-*), or empty. */
export function namespacePatterns(raw: string): string[] {
  const allowed = 'a comma-separated list of namespace names, * matching any characters (kube-*), or empty';
  if (raw.trim() === '') return [];
  return raw.split(',').map((item) => {
    const pattern = item.trim();
    if (!NAMESPACE_PATTERN.test(pattern)) throw new Invalid(`has an invalid namespace pattern "${pattern}"`, allowed);
    return pattern;
  });
}

/** One --exclude-pods label selector. */
export function labelSelector(raw: string): LabelSelector[] {
  try {
    return [parseLabelSelector(raw)];
  } catch (err) {
    throw new Invalid((err as Error).message, 'a label selector as kubectl -l takes it: k=v, k!=v, k, !k, k in (a,b), k notin (a,b), joined by commas');
  }
}

/** A rate, `N/s` or `N` (per second): from 0 (no limit) to `max`. */
export function perSecond(max: number): (raw: string) => number {
  const allowed = `executions per second from 0 (no limit) to ${max}, as N/s or N`;
  return (raw) => {
    const m = /^(\d+)(?:\/s)?$/.exec(raw.trim());
    if (!m) throw new Invalid('is not a rate', allowed);
    const n = Number(m[1]);
    if (n > max) throw new Invalid('is out of range', allowed);
    return n;
  };
}

/** A comma-separated list of origins (--exclude-origin probe,debug), or empty. */
export function origins(raw: string): Origin[] {
  const allowed = `a comma-separated list of ${ORIGINS.join(', ')}, or empty`;
  if (raw.trim() === '') return [];
  return raw.split(',').map((item) => {
    const origin = ORIGINS.find((o) => o === item.trim());
    if (origin === undefined) throw new Invalid(`names an unknown origin "${item.trim()}"`, allowed);
    return origin;
  });
}
