/**
 * The filters of GET /api/events and /api/events/stream: one TypeBox schema per route (so the
 * HTTP layer validates every parameter before any of it reaches here) and one compiler from a
 * validated query to a predicate, shared by the recent-events ring and the live stream.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ExecEvent } from './types.js';

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

type Check = (event: ExecEvent) => boolean;

/**
 * Turns a validated query into a predicate. Extra properties (limit, after) are ignored.
 * Strings match exactly except `filename` and `q`, which are case-sensitive substrings
 * (`q` over the filename and every argument). `since` is inclusive.
 * @throws FilterError when `since` is a valid-looking date-time that Date cannot represent.
 */
export function compileFilter(query: EventFilter): (event: ExecEvent) => boolean {
  const checks: Check[] = [];
  const { namespace, pod, container, comm, filename, q, result, uid, since } = query;
  if (namespace !== undefined) checks.push((e) => e.namespace === namespace);
  if (pod !== undefined) checks.push((e) => e.pod === pod);
  if (container !== undefined) checks.push((e) => e.container === container);
  if (comm !== undefined) checks.push((e) => e.comm === comm);
  if (filename !== undefined) checks.push((e) => e.filename.includes(filename));
  if (q !== undefined) {
    checks.push((e) => e.filename.includes(q) || e.argv.some((arg) => arg.includes(q)));
  }
  if (result !== undefined) {
    const success = result === 'success';
    checks.push((e) => (e.retval === 0) === success);
  }
  if (uid !== undefined) checks.push((e) => e.uid === uid);
  if (since !== undefined) {
    const from = timeMs(since);
    if (Number.isNaN(from)) throw new FilterError('since', `"${since}" is not a representable time`);
    checks.push((e) => timeMs(e.time) >= from);
  }
  return (event) => checks.every((check) => check(event));
}
