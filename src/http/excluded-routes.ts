/**
 * GET /api/excluded: how many events were left out on purpose (out of scope, --exclude-origin)
 * in a window, by reason, counted by whole minutes (src/events/excluded.ts). They are no events,
 * so GET /api/events cannot show them; the browse page's completeness banner reads this.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EXCLUDED_REASONS, type ExcludedReason, type ExcludedWindow } from '../events/excluded.js';
import { errorResponses } from './base.js';

/** What answers for the counts: the history, read up to now first. */
export interface ExcludedSource {
  /**
   * The counts of [sinceMs, untilMs) as of now, taken after the read: what the read counts lands
   * in a minute up to it, even when the read crossed into a minute begun after the request came.
   */
  window(sinceMs: number, untilMs: number): ExcludedWindow;
}

export interface ExcludedRoutesOptions {
  excluded: ExcludedSource;
}

export const ExcludedQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Start of the window (inclusive); default: as far back as kept.' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'End of the window (exclusive); default: now.' })),
  },
  { additionalProperties: false },
);

const Count = Type.Integer({ minimum: 0 });
/** One count per reason of EXCLUDED_REASONS. */
export const ExcludedCountsSchema = Type.Object(Object.fromEntries(EXCLUDED_REASONS.map((reason) => [reason, Count])) as Record<ExcludedReason, typeof Count>);

export const ExcludedBody = Type.Object({
  from: Type.String({ description: 'Start of the first whole minute counted: never before the start of the minute the agent started in, nor more than a day ago.' }),
  to: Type.String({ description: 'End of the last minute counted, or now.' }),
  excluded: ExcludedCountsSchema,
});

export const excludedRoutes: FastifyPluginAsyncTypebox<ExcludedRoutesOptions> = async (app, opts) => {
  app.get('/api/excluded', { schema: { querystring: ExcludedQuery, response: { 200: ExcludedBody, ...errorResponses } } }, async (request, reply) => {
    // Unbounded when not given: the source bounds them by the minutes kept and by its own now.
    const since = request.query.since === undefined ? -Infinity : Date.parse(request.query.since);
    const until = request.query.until === undefined ? Infinity : Date.parse(request.query.until);
    for (const [name, ms] of [['since', since], ['until', until]] as const) {
      if (Number.isNaN(ms)) return reply.code(400).send({ error: 'Bad Request', message: `querystring/${name} "${request.query[name]}" is not a representable time` });
    }
    const { fromMs, toMs, excluded } = opts.excluded.window(since, until);
    return reply.header('cache-control', 'no-store').send({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), excluded });
  });
};
