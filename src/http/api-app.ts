/**
 * The events listener (--api-address, loopback by default because argv can hold secrets): the
 * JSON API (events, processes, the counts of excluded events), the SSE stream and the browse page.
 */
import type { LogLevel } from '../config.js';
import { requireToken, type ApiToken } from './auth.js';
import { createApp, type App, type BaseOptions } from './base.js';
import { eventsRoutes, type EventsRoutesOptions } from './events-routes.js';
import { excludedRoutes, type ExcludedSource } from './excluded-routes.js';
import { pageRoutes, type PageRoutesOptions } from './page.js';
import { processRoutes } from './process-routes.js';
import { sameOriginOnly } from './same-origin.js';

export interface ApiAppOptions extends EventsRoutesOptions {
  logLevel: LogLevel;
  logStream?: BaseOptions['logStream'];
  page?: PageRoutesOptions;
  /**
   * With a token, every /api/ route answers 401 without it. The page's files stay public: they
   * hold no data, and the page asks for the token itself.
   */
  token?: ApiToken | null;
  /** Names besides IP addresses and localhost that requests may give as Host (--api-allowed-hosts). */
  allowedHosts?: readonly string[];
  /** The events left out on purpose, by minute (GET /api/excluded); absent: no such route. */
  excluded?: ExcludedSource;
}

/** The API app, not listening yet (tests use inject or listen on port 0). */
export function buildApiApp(opts: ApiAppOptions): App {
  const app = createApp({ logLevel: opts.logLevel, logStream: opts.logStream });
  const { token } = opts;
  // Every route, the page's included: a rebinding page must not even learn that the agent is there.
  app.addHook('onRequest', sameOriginOnly(opts.allowedHosts ?? []));
  // An unwrapped plugin: the hook applies to the events routes only, not to the page or 404s.
  void app.register(async (scope) => {
    if (token) scope.addHook('onRequest', requireToken(token));
    await scope.register(eventsRoutes, { store: opts.store, hub: opts.hub, heartbeatMs: opts.heartbeatMs, maxStreams: opts.maxStreams });
    await scope.register(processRoutes, { store: opts.store });
    if (opts.excluded) await scope.register(excludedRoutes, { excluded: opts.excluded });
  });
  void app.register(pageRoutes, opts.page ?? {});
  return app;
}
