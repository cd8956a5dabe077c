/**
 * The filters of GET /api/events and /api/events/stream: one TypeBox schema per route (so the
 * HTTP layer validates every parameter before any of it reaches here) and one compiler from a
 * validated query to a predicate, shared by the recent-events ring and the live stream.
 */
import { Type, type Static } from '@sinclair/typebox';
import { eventOf, type EventRecord } from './record.js';
import { ATTRIBUTIONS, EVENT_KINDS, formatTime, ORIGINS, type Attribution, type Origin, type Workload } from './schema.js';

/**
 * A workload as text, KIND/NAME (Deployment/web): the metrics' workload label, the `workload`
 * filter's form (read back by workloadOf) and how the plugin prints it. Null for none.
 */
export function workloadText(workload: Workload | null): string | null {
  return workload === null ? null : `${workload.kind}/${workload.name}`;
}

/** The workload a KIND/NAME text names (the kind ends at the first slash: a name may hold more). */
export function workloadOf(text: string): Workload {
  const slash = text.indexOf('/');
  return { kind: text.slice(0, slash), name: text.slice(slash + 1) };
}

/** Kubernetes object names are at most 253 characters; free-text filters get a generous cap. */
const Name = Type.String({ minLength: 1, maxLength: 253 });
const Text = Type.String({ minLength: 1, maxLength: 4096 });

/** `enum` rather than a union of literals: ajv then reports one readable error, not three. */
const Result = Type.Unsafe<'success' | 'failure'>({ type: 'string', enum: ['success', 'failure'] });
const AttributionParam = Type.Unsafe<Attribution>({ type: 'string', enum: ATTRIBUTIONS });
/** Repeatable (`origin=exec&origin=debug`): an event of any of them matches. One value is coerced to a list. */
const OriginParam = Type.Array(Type.Unsafe<Origin>({ type: 'string', enum: ORIGINS }), { minItems: 1, maxItems: ORIGINS.length });

/** An execId as the agent writes it (base64url, digits and dots). */
export const ExecIdParam = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9_.-]+$' });

/** Default and bounds of `limit` on GET /api/events. */
export const LIMIT_DEFAULT = 100;
export const LIMIT_MAX = 10_000;

/** `kind`: one or more of the event kinds, comma-separated. */
const KIND_LIST = `^(${EVENT_KINDS.join('|')})(,(${EVENT_KINDS.join('|')}))*$`;

/**
 * The kinds GET /api/events lists when `kind` is not given: execs, as it always has (the page, the
 * kubectl plugin and scripts read exec fields). Throttles and gaps are in the ring too, for
 * `kind=exec,throttle,gap`; exits are not kept as their own records (they annotate their exec's `exit`).
 */
export const LIST_KINDS_DEFAULT = 'exec';

const filterProperties = {
  namespace: Type.Optional(Name),
  pod: Type.Optional(Name),
  container: Type.Optional(Name),
  image: Type.Optional(Text),
  workload: Type.Optional(Type.String({ minLength: 3, maxLength: 512, pattern: '^[^/]+/.+$', description: 'The pod\'s workload as KIND/NAME, as the metrics label it (Deployment/web).' })),
  comm: Type.Optional(Name),
  filename: Type.Optional(Text),
  q: Type.Optional(Text),
  result: Type.Optional(Result),
  attribution: Type.Optional(AttributionParam),
  drift: Type.Optional(Type.Boolean()),
  origin: Type.Optional(OriginParam),
  uid: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
  euid: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
  execId: Type.Optional(ExecIdParam),
  parentExecId: Type.Optional(ExecIdParam),
  sessionExecId: Type.Optional(ExecIdParam),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  kind: Type.Optional(Type.String({ pattern: KIND_LIST, description: 'Kinds of event, comma-separated: exec, exit, throttle, gap.' })),
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

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * An RFC 3339 time as an event's `time` writes it (UTC, nine fraction digits), so that it compares
 * with events' times as text; fraction digits beyond the ninth round up (`since` is inclusive).
 * Null when Date cannot represent it (a leap second).
 */
export function eventTimeOf(time: string): string | null {
  const match = RFC3339.exec(time);
  if (match === null) return null;
  const [, whole, fraction = '', zone] = match;
  const ms = Date.parse(`${whole}${zone}`);
  if (Number.isNaN(ms)) return null;
  const rest = fraction.slice(9);
  const nanos = BigInt(fraction.slice(0, 9).padEnd(9, '0')) + (/[1-9]/.test(rest) ? 1n : 0n);
  return formatTime(BigInt(ms) * 1_000_000n + nanos);
}

type Check = (record: EventRecord) => boolean;

/** An image reference without its tag or digest: `docker.io/library/nginx:1.27` → `docker.io/library/nginx`. */
export function repositoryOf(image: string): string {
  const at = image.indexOf('@');
  const named = at < 0 ? image : image.slice(0, at);
  const colon = named.lastIndexOf(':');
  // A colon before the last slash is a registry's port (`registry:5000/app`), not a tag.
  return colon > named.lastIndexOf('/') ? named.slice(0, colon) : named;
}

/** `q` over the filename and each argument (never across two), `filename` over the filename. */
function textCheck(filename: string | undefined, q: string | undefined): Check {
  return (record) => {
    if (record.kind !== 'exec') return false;
    const event = eventOf(record);
    if (filename !== undefined && !event.filename.includes(filename)) return false;
    return q === undefined || event.filename.includes(q) || event.argv.some((arg) => arg.includes(q));
  };
}

/**
 * Turns a validated query into a predicate over event records. Extra properties (limit, after)
 * are ignored. Strings match exactly (`image` the image as the pod status names it, or its
 * repository without the tag) except `filename` and `q`, which are case-sensitive
 * substrings (`q` over the filename and every argument, never across two), tested last on the
 * event the record holds. `since` is inclusive, `until` exclusive (a zoomed window `[since, until)`). An exit event has no filename, argv, result,
 * ids or parent: a filter on any of those matches execs only; `execId`, the pod fields, `comm`
 * and `since`/`until` match exits too. A throttle has the pod fields and `comm`; a gap only `since`/`until`
 * (it names its pods in `pods`). `kind` keeps the kinds it lists.
 * @throws FilterError when `since` or `until` is a valid-looking date-time that Date cannot represent.
 */
export function compileFilter(query: EventFilter): (record: EventRecord) => boolean {
  const checks: Check[] = [];
  const { namespace, pod, container, image, workload, comm, filename, q, result, attribution, drift, uid, euid, execId, parentExecId, sessionExecId, since, until, kind, origin } = query;
  if (kind !== undefined) {
    const kinds = new Set(kind.split(','));
    checks.push((r) => kinds.has(r.kind));
  }
  // Exit records carry null in the exec-only fields, which no parameter value equals.
  if (execId !== undefined) checks.push((r) => r.execId === execId);
  if (parentExecId !== undefined) checks.push((r) => r.parentExecId === parentExecId);
  if (sessionExecId !== undefined) checks.push((r) => r.sessionExecId === sessionExecId);
  if (euid !== undefined) checks.push((r) => r.euid === euid);
  if (namespace !== undefined) checks.push((r) => r.namespace === namespace);
  if (pod !== undefined) checks.push((r) => r.pod === pod);
  if (container !== undefined) checks.push((r) => r.container === container);
  if (image !== undefined) checks.push((r) => r.image !== null && (r.image === image || repositoryOf(r.image) === image));
  if (workload !== undefined) {
    const { kind, name } = workloadOf(workload);
    checks.push((r) => r.workload !== null && r.workload.kind === kind && r.workload.name === name);
  }
  if (comm !== undefined) checks.push((r) => r.comm === comm);
  if (result !== undefined) {
    const failure = result === 'failure';
    checks.push((r) => r.kind === 'exec' && r.failed === failure);
  }
  if (attribution !== undefined) checks.push((r) => r.attribution === attribution);
  // Whether the executed file came from the image: a property of an exec (an exit, a throttle or
  // a gap has no file, and none of them is the "others" that drift=false asks for).
  if (drift !== undefined) checks.push((r) => r.kind === 'exec' && r.drift === drift);
  if (origin !== undefined) {
    const wanted = new Set<Origin>(origin);
    checks.push((r) => r.origin !== null && wanted.has(r.origin));
  }
  if (uid !== undefined) checks.push((r) => r.uid === uid);
  if (since !== undefined) {
    const from = eventTimeOf(since);
    if (from === null) throw new FilterError('since', `"${since}" is not a representable time`);
    checks.push((r) => r.time >= from);
  }
  if (until !== undefined) {
    // Rounded up like since: an event's whole nanoseconds are before `until` exactly when they are before that.
    const to = eventTimeOf(until);
    if (to === null) throw new FilterError('until', `"${until}" is not a representable time`);
    checks.push((r) => r.time < to);
  }
  if (filename !== undefined || q !== undefined) checks.push(textCheck(filename, q));
  if (checks.length === 0) return () => true;
  return (record) => checks.every((check) => check(record));
}
