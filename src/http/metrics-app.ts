/**
 * The metrics listener (--metrics-address): /metrics for Prometheus, /healthz and /readyz for
 * the kubelet. Scrapes and probes log at fatal only: they come every few seconds. Concurrent
 * scrapes share one collection, and at most MAX_SCRAPES_WAITING wait for it (shared-scrape.ts).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Liveness } from '../capture/watchdog.js';
import type { LogLevel } from '../config.js';
import type { Metrics } from '../metrics/index.js';
import { SharedScrapes } from '../metrics/shared-scrape.js';
import { createApp, type App } from './base.js';

/**
 * Scrapes waiting for a collection at once; one more gets 503. A node has one or two Prometheus
 * servers scraping it, and a waiting scrape costs little: the bound is for crowds, not for them.
 */
export const MAX_SCRAPES_WAITING = 8;
/** Retry-After of that 503, in seconds. Prometheus ignores it and tries again at its next interval. */
const SCRAPE_RETRY_AFTER_S = 1;

/** What /readyz reports: ready, or why not. */
export type Readiness = () => { ready: boolean; reasons: string[] };

/** What /healthz reports: live (the delivery watchdog, capture/watchdog.ts), or why not. */
export type LivenessCheck = () => Liveness;

export interface MetricsRoutesOptions {
  metrics: Metrics;
  readiness: Readiness;
  /** Default: always live. */
  liveness?: LivenessCheck;
}

const Ready = Type.Object({ status: Type.Literal('ready') });
const NotReady = Type.Object({ status: Type.Literal('not ready'), reasons: Type.Array(Type.String()) });
const Live = Type.Object({ status: Type.Literal('ok') });
const NotLive = Type.Object({ status: Type.Literal('unhealthy'), reasons: Type.Array(Type.String()) });
const ALWAYS_LIVE: LivenessCheck = () => ({ live: true, reasons: [] });

/** /metrics, /healthz and /readyz. */
export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, opts) => {
  const scrapes = new SharedScrapes(opts.metrics.registry, MAX_SCRAPES_WAITING);
  app.get('/metrics', { logLevel: 'fatal' }, async (request, reply) => {
    const shared = scrapes.get(request.headers.accept);
    if (shared === null) {
      // 503, not 429: the server is busy, whoever asks; to Prometheus any non-200 is a failed scrape.
      return reply.code(503).header('retry-after', String(SCRAPE_RETRY_AFTER_S)).send({
        error: 'Service Unavailable',
        message: `${MAX_SCRAPES_WAITING} scrapes are already waiting for metrics; retry in ${SCRAPE_RETRY_AFTER_S} s`,
      });
    }
    const { contentType, body } = await shared;
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });

  const liveness = opts.liveness ?? ALWAYS_LIVE;
  app.get(
    '/healthz',
    { logLevel: 'fatal', schema: { response: { 200: Live, 503: NotLive } } },
    async (_request, reply) => {
      const { live, reasons } = liveness();
      if (live) return reply.code(200).send({ status: 'ok' });
      return reply.code(503).send({ status: 'unhealthy', reasons });
    },
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
  void app.register(metricsRoutes, { metrics: opts.metrics, readiness: opts.readiness, liveness: opts.liveness });
  return app;
}
