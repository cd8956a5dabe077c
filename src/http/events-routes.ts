/**
 * GET /api/events (the recent-events ring, newest first) and GET /api/events/stream (Server-Sent
 * Events from the hub, replaying from the ring after Last-Event-ID or ?after=).
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  compileFilter,
  EventsQuery,
  FilterError,
  LIST_KINDS_DEFAULT,
  StreamQuery,
  type EventFilter,
} from '../events/filter.js';
import type { EventStore } from '../events/store.js';
import type { CloseReason, EventHub, Sink } from '../events/stream.js';
import { textOf, type EventRecord } from '../events/record.js';
import { EventsBody, ExecEventSchema, ExitEventSchema, GapEventSchema, ThrottleEventSchema } from '../events/schema.js';
import { ErrorBody, errorResponses, openEventStream } from './base.js';

/** Default interval of SSE heartbeat comments: below common 30-60 s idle timeouts. */
export const HEARTBEAT_MS = 15_000;
/** How long a closing stream may take to flush before its socket is destroyed. */
export const END_GRACE_MS = 1_000;
/** Default cap on concurrent streams (--max-streams). */
export const MAX_STREAMS_DEFAULT = 32;
/** Seconds a client refused for too many streams is asked to wait (Retry-After). */
const STREAMS_RETRY_AFTER_S = 5;

export interface EventsRoutesOptions {
  store: EventStore;
  hub: EventHub;
  heartbeatMs?: number;
  /** Concurrent streams served; one more gets 429 (default MAX_STREAMS_DEFAULT). */
  maxStreams?: number;
}

/**
 * What the stream carries: Server-Sent Events, each named by its event's kind, whose data is the
 * event. The route writes the frames itself (the schema documents them; fastify's serializer is
 * not involved).
 */
const StreamBody = {
  description: 'Server-Sent Events: `id` the seq, `event:` the kind (`exec`, `exit`, `throttle`, `gap`), `data` the event.',
  content: { 'text/event-stream': { schema: Type.Union([ExecEventSchema, ExitEventSchema, ThrottleEventSchema, GapEventSchema]) } },
} as const;

/** Characters of JSON per chunk of a GET /api/events answer. */
const CHUNK_CHARS = 64 * 1024;

/**
 * `{"events":[…],"lastSeq":N}` (EventsBody) in chunks of about CHUNK_CHARS, written as the socket
 * takes them: a full ring is ~20 MB of JSON with 2 KiB argv, and as one string (plus its Buffer
 * copy, plus the garbage of building it) it more than doubled the agent's peak RSS. `lastSeq` is
 * the hub's when `records` were taken, not when the last chunk goes.
 */
export function* eventsJsonChunks(records: readonly EventRecord[], lastSeq: number): Generator<string> {
  let chunk = '{"events":[';
  for (let i = 0; i < records.length; i += 1) {
    const json = textOf(records[i] as EventRecord);
    chunk += i === 0 ? json : `,${json}`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  yield `${chunk}],"lastSeq":${lastSeq}}`;
}

/** The filter, or a 400 message naming the parameter that cannot be used. */
function filterOf(query: EventFilter): ((record: EventRecord) => boolean) | string {
  try {
    return compileFilter(query);
  } catch (err) {
    /* c8 ignore next -- compileFilter throws nothing but FilterError; anything else is a bug. */
    if (!(err instanceof FilterError)) throw err;
    return `querystring/${err.parameter} ${err.message}`;
  }
}

/** Last-Event-ID is only ever one of our seqs; anything else is ignored rather than refused. */
function lastEventId(header: string | string[] | undefined): number | undefined {
  return typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
}

/** The part of an HTTP response a sink uses. */
export type SinkResponse = Pick<ServerResponse, 'write' | 'end' | 'destroy' | 'once'>;

/**
 * An HTTP response as a hub sink: an overflowing subscriber is destroyed at once; on shutdown
 * the response is ended, and destroyed if it has not closed within END_GRACE_MS.
 */
export function responseSink(res: SinkResponse): Sink {
  return {
    write: (chunk) => res.write(chunk),
    close(reason: CloseReason) {
      if (reason === 'overflow') {
        res.destroy();
        return;
      }
      res.end();
      // A client that stopped reading would keep end() from finishing, and shutdown waiting.
      const timer = setTimeout(() => res.destroy(), END_GRACE_MS);
      timer.unref();
      res.once('close', () => clearTimeout(timer));
    },
  };
}

/** The two events routes, plus the heartbeat timer and closing of open streams on shutdown. */
export const eventsRoutes: FastifyPluginAsyncTypebox<EventsRoutesOptions> = async (app, opts) => {
  const { store, hub } = opts;
  const maxStreams = opts.maxStreams ?? MAX_STREAMS_DEFAULT;
  const heartbeat = setInterval(() => hub.heartbeat(), opts.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();
  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    hub.closeAll();
  });

  app.get(
    '/api/events',
    { schema: { querystring: EventsQuery, response: { 200: EventsBody, ...errorResponses } } },
    async (request, reply) => {
      const filter = filterOf({ ...request.query, kind: request.query.kind ?? LIST_KINDS_DEFAULT });
      if (typeof filter === 'string') {
        return reply.code(400).send({ error: 'Bad Request', message: filter });
      }
      const records = store.query(filter, request.query.limit);
      const lastSeq = hub.lastSeq;
      return reply
        .header('cache-control', 'no-store')
        .type('application/json; charset=utf-8')
        // fastify pipes a stream as is (no response serializer): the chunks make an EventsBody.
        .send(Readable.from(eventsJsonChunks(records, lastSeq)) as unknown as Static<typeof EventsBody>);
    },
  );

  app.get(
    '/api/events/stream',
    { schema: { querystring: StreamQuery, response: { 200: StreamBody, ...errorResponses, 429: ErrorBody } } },
    async (request, reply) => {
      const filter = filterOf(request.query);
      if (typeof filter === 'string') {
        return reply.code(400).send({ error: 'Bad Request', message: filter });
      }
      // Each stream holds a socket and a queue: the cap bounds what readers can make the agent hold.
      if (hub.count >= maxStreams) {
        return reply
          .code(429)
          .header('retry-after', String(STREAMS_RETRY_AFTER_S))
          .send({ error: 'Too Many Requests', message: `${maxStreams} streams are open already (--max-streams): close one or retry later` });
      }
      const asked = lastEventId(request.headers['last-event-id']) ?? request.query.after;
      // seq starts at 1 again when the agent restarts: a client of its earlier run resumes after
      // a seq this run has not reached, and gets everything the ring holds rather than nothing.
      const from = asked !== undefined && asked > hub.lastSeq ? 0 : asked;
      const replay = from === undefined ? undefined : store.replay(from, filter);
      const res = openEventStream(reply);
      // Gone while the token was checked: a subscription made now would hold a --max-streams
      // place until the agent stops.
      if (res === null) return reply;
      const subscription = hub.subscribe(filter, responseSink(res), replay);
      res.on('drain', () => subscription.drained());
      res.on('close', () => subscription.unsubscribe());
      return reply;
    },
  );
};
