/**
 * The metrics listener (--metrics-address): /metrics for Prometheus, /healthz and /readyz for
 * the kubelet. Scrapes and probes log at fatal only: they come every few seconds.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LogLevel } from '../config.js';
import { scrape } from '../metrics/exposition.js';
import type { Metrics } from '../metrics/index.js';
import { createApp, type App } from './base.js';

/** What /readyz reports: ready, or why not. */
export type Readiness = () => { ready: boolean; reasons: string[] };

export interface MetricsRoutesOptions {
  metrics: Metrics;
  readiness: Readiness;
}

const Ready = Type.Object({ status: Type.Literal('ready') });
const NotReady = Type.Object({ status: Type.Literal('not ready'), reasons: Type.Array(Type.String()) });

/** /metrics, /healthz and /readyz. */
export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, opts) => {
  app.get('/metrics', { logLevel: 'fatal' }, async (request, reply) => {
    const { contentType, body } = await scrape(opts.metrics.registry, request.headers.accept);
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });

  app.get(
    '/healthz',
    { logLevel: 'fatal', schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    { logLevel: 'fatal', schema: { response: { 200: Ready, 503: NotReady } } },
    async (_request, reply) => {
      const { ready, reasons } = opts.readiness();
      if (ready) return reply.code(200).send({ status: 'ready' });
      return reply.code(503).send({ status: 'not ready', reasons });
    },
  );
};

/** The metrics app, not listening yet (tests use inject). */
export function buildMetricsApp(opts: MetricsRoutesOptions & { logLevel: LogLevel }): App {
  const app = createApp({ logLevel: opts.logLevel });
  void app.register(metricsRoutes, { metrics: opts.metrics, readiness: opts.readiness });
  return app;
}
