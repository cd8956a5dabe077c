/**
 * The events listener (--api-address, loopback by default because argv can hold secrets): the
 * JSON API, the SSE stream and the browse page.
 */
import type { LogLevel } from '../config.js';
import { createApp, type App } from './base.js';
import { eventsRoutes, type EventsRoutesOptions } from './events-routes.js';
import { pageRoutes, type PageRoutesOptions } from './page.js';

export interface ApiAppOptions extends EventsRoutesOptions {
  logLevel: LogLevel;
  page?: PageRoutesOptions;
}

/** The API app, not listening yet (tests use inject or listen on port 0). */
export function buildApiApp(opts: ApiAppOptions): App {
  const app = createApp({ logLevel: opts.logLevel });
  void app.register(eventsRoutes, { store: opts.store, hub: opts.hub, heartbeatMs: opts.heartbeatMs, maxStreams: opts.maxStreams });
  void app.register(pageRoutes, opts.page ?? {});
  return app;
}
