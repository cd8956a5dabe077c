/**
 * GET /api/processes/:execId: one process as the recent-events ring knows it: its latest exec
 * event (with its exit once known), its ancestors, the exec events of its children that the
 * ring still holds, for a process that opened an `exec` or `debug` session (`kubectl exec`),
 * every exec event of that session the ring holds, and its own exec attempts that failed.
 * Everything comes from the ring's records, whose JSON text is sent as it is.
 */
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ExecIdParam } from '../events/filter.js';
import { eventOf, textOf, type EventRecord } from '../events/record.js';
import { ProcessBody } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import { errorResponses } from './base.js';

/** Children (and session execs, and failed attempts) listed at most: a fork bomb's parent must not make one answer hold the whole ring. */
export const MAX_CHILDREN = 1000;

export interface ProcessRoutesOptions {
  store: EventStore;
}

export const processRoutes: FastifyPluginAsyncTypebox<ProcessRoutesOptions> = async (app, opts) => {
  const { store } = opts;
  app.get(
    '/api/processes/:execId',
    { schema: { params: Type.Object({ execId: ExecIdParam }), response: { 200: ProcessBody, ...errorResponses } } },
    async (request, reply) => {
      const { execId } = request.params;
      const [exec] = store.query((r) => r.kind === 'exec' && r.execId === execId && !r.failed, 1);
      if (exec === undefined) {
        return reply.code(404).send({ error: 'Not Found', message: `no exec of process ${execId} in the recent events` });
      }
      const children = store.query((r) => r.parentExecId === execId && !r.failed, MAX_CHILDREN);
      // A failed exec leaves the process as it was: its execId is the caller's own.
      const failed = store.query((r) => r.kind === 'exec' && r.execId === execId && r.failed, MAX_CHILDREN);
      // Only a process whose own exec opened a session has one to list (its sessionExecId is itself).
      const session = exec.sessionExecId === execId ? store.query((r) => r.kind === 'exec' && r.sessionExecId === execId, MAX_CHILDREN) : [];
      const ancestors = JSON.stringify(eventOf(exec).ancestors);
      const list = (records: readonly EventRecord[]) => `[${records.map(textOf).join(',')}]`;
      const body = `{"exec":${textOf(exec)},"ancestors":${ancestors},"children":${list(children)},"session":${list(session)},"failed":${list(failed)}}`;
      return reply
        .header('cache-control', 'no-store')
        .type('application/json; charset=utf-8')
        // Sent as is, like GET /api/events: the records' texts make a ProcessBody.
        .send(Readable.from([body]) as unknown as Static<typeof ProcessBody>);
    },
  );
};
