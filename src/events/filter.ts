/**
 * The filters of GET /api/events and /api/events/stream: one TypeBox schema per route (so the
 * HTTP layer validates every parameter before any of it reaches here) and one compiler from a
 * validated query to a predicate, shared by the recent-events ring and the live stream.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ARGV_KEY } from './json.js';
import type { EventRecord } from './record.js';

/** Kubernetes object names are at most 253 characters; free-text filters get a generous cap. */
const Name = Type.String({ minLength: 1, maxLength: 253 });
const Text = Type.String({ minLength: 1, maxLength: 4096 });

/** `enum` rather than a union of literals: ajv then reports one readable error, not three. */
const Result = Type.Unsafe<'success' | 'failure'>({ type: 'string', enum: ['success', 'failure'] });

/** Default and bounds of `limit` on GET /api/events. */
export const LIMIT_DEFAULT = 100;
export const LIMIT_MAX = 10_000;

const filterProperties = {
  namespace: Type.Optional(Name),
  pod: Type.Optional(Name),
  container: Type.Optional(Name),
  comm: Type.Optional(Name),
  filename: Type.Optional(Text),
  q: Type.Optional(Text),
  result: Type.Optional(Result),
  uid: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
  since: Type.Optional(Type.String({ format: 'date-time' })),
};

/** The filter parameters common to both routes. */
export const FilterQuery = Type.Object(filterProperties, { additionalProperties: false });
export type EventFilter = Static<typeof FilterQuery>;

/** GET /api/events: the filters plus `limit`. Unknown parameters are rejected, not ignored. */
export const EventsQuery = Type.Object(
  {
    ...filterProperties,
    // Not Optional: ajv fills the default in, so handlers always see a number.
    limit: Type.Integer({ minimum: 1, maximum: LIMIT_MAX, default: LIMIT_DEFAULT }),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

/**
 * GET /api/events/stream: the filters plus `after` (replay what the ring still holds after this
 * seq, like Last-Event-ID, for clients such as EventSource that cannot set that header on their
 * first request). `limit` means nothing for a stream, so it is rejected like any unknown name.
 */
export const StreamQuery = Type.Object(
  { ...filterProperties, after: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);
export type StreamQuery = Static<typeof StreamQuery>;

/** A filter value that passed the schema but still cannot be used (e.g. a leap second). */
export class FilterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'FilterError';
  }
}

const FRACTION = /^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$/i;

/**
 * Milliseconds since the epoch of an RFC 3339 time, keeping the sub-millisecond digits that
 * Date.parse drops (a double still resolves well under a microsecond for current dates).
 * NaN when unparseable.
 */
export function timeMs(time: string): number {
  const match = FRACTION.exec(time);
  if (match === null) return Number.NaN;
  const [, whole, fraction, zone] = match;
  return Date.parse(`${whole}${zone}`) + (fraction === undefined ? 0 : Number(fraction) * 1000);
}

type Check = (record: EventRecord) => boolean;

/** The characters of a string's JSON text, without its quotes. */
const escapedText = (value: string): string => JSON.stringify(value).slice(1, -1);

const SURROGATE = /[\ud800-\udfff]/;

/** The record's filename, from its JSON. */
const filenameOf = (r: EventRecord): string =>
  JSON.parse(r.front.slice(r.filenameAt - 1, r.argvAt - ARGV_KEY.length)) as string;

/** The record's argv, from its JSON. */
const argvOf = (r: EventRecord): string[] => JSON.parse(r.front.slice(r.argvAt, r.argvEnd)) as string[];

/**
 * A substring test of `needle` over the filename (and, with `inArgv`, over each argument) of a
 * record, searched in its JSON text rather than in strings the record would have to keep.
 *
 * Escaping each character on its own (JSON.stringify does, surrogates aside), the needle occurs in
 * a string only if its escaped form occurs in the string's JSON: a miss there is a miss. A hit is
 * certain only when nothing in the searched text was escaped (an escape like `\n` holds an `n`)
 * and, in argv, the hit cannot be the `,` between two arguments; otherwise the hit is checked on
 * the parsed strings. A needle with a surrogate code unit is always checked that way (a lone one
 * escapes as `\udXXX` in the needle but may be half of a literal pair in the text).
 */
function substringCheck(needle: string, inArgv: boolean): Check {
  const exact = (r: EventRecord): boolean =>
    filenameOf(r).includes(needle) || (inArgv && argvOf(r).some((arg) => arg.includes(needle)));
  if (SURROGATE.test(needle)) return exact;
  const escaped = escapedText(needle);
  // A backslash in the escaped needle can only match a backslash of the text.
  const needsEscapes = escaped !== needle;
  const comma = needle.includes(',');
  const length = escaped.length;
  return (r) => {
    if (needsEscapes && !r.escaped) return false;
    const json = r.front;
    const filenameEnd = r.argvAt - ARGV_KEY.length - 1;
    let at = json.indexOf(escaped, r.filenameAt);
    if (at < 0) return false;
    if (at + length <= filenameEnd) return r.escaped ? exact(r) : true;
    if (!inArgv) return false;
    // Inside the array, after `[` and before `]`.
    const argvStart = r.argvAt + 1;
    const argvStop = r.argvEnd - 1;
    if (at < argvStart) at = json.indexOf(escaped, argvStart);
    if (at < 0 || at + length > argvStop) return false;
    return r.escaped || comma ? exact(r) : true;
  };
}

/**
 * Turns a validated query into a predicate over event records. Extra properties (limit, after) are
 * ignored. Strings match exactly except `filename` and `q`, which are case-sensitive substrings
 * (`q` over the filename and every argument, never across two). `since` is inclusive.
 * @throws FilterError when `since` is a valid-looking date-time that Date cannot represent.
 */
export function compileFilter(query: EventFilter): (record: EventRecord) => boolean {
  const checks: Check[] = [];
  const { namespace, pod, container, comm, filename, q, result, uid, since } = query;
  if (namespace !== undefined) checks.push((r) => r.namespace === namespace);
  if (pod !== undefined) checks.push((r) => r.pod === pod);
  if (container !== undefined) checks.push((r) => r.container === container);
  if (comm !== undefined) checks.push((r) => r.comm === comm);
  if (filename !== undefined) checks.push(substringCheck(filename, false));
  if (q !== undefined) checks.push(substringCheck(q, true));
  if (result !== undefined) {
    const failure = result === 'failure';
    checks.push((r) => r.failed === failure);
  }
  if (uid !== undefined) checks.push((r) => r.uid === uid);
  if (since !== undefined) {
    const from = timeMs(since);
    if (Number.isNaN(from)) throw new FilterError('since', `"${since}" is not a representable time`);
    checks.push((r) => r.timeMs >= from);
  }
  if (checks.length === 0) return () => true;
  return (record) => {
    for (const check of checks) if (!check(record)) return false;
    return true;
  };
}
