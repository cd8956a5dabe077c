/**
 * Starts both listeners and closes them gracefully: open event streams are ended first (the
 * events plugin's preClose hook), so they never hold shutdown.
 */
import type { AddressInfo } from 'node:net';
import { formatHostPort, type ListenAddress, type LogLevel } from '../config.js';
import type { EventStore } from '../events/store.js';
import type { EventHub } from '../events/stream.js';
import type { Metrics } from '../metrics/index.js';
import { buildApiApp } from './api-app.js';
import type { ApiToken } from './auth.js';
import type { App } from './base.js';
import type { ExcludedSource } from './excluded-routes.js';
import { buildMetricsApp, type LivenessCheck, type Readiness } from './metrics-app.js';

export interface ServersOptions {
  metricsAddress: ListenAddress;
  apiAddress: ListenAddress;
  metrics: Metrics;
  store: EventStore;
  hub: EventHub;
  readiness: Readiness;
  /** What /healthz reports (default: always live). */
  liveness?: LivenessCheck;
  logLevel: LogLevel;
  /** Interval of SSE heartbeat comments (default HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** Concurrent event streams served (default MAX_STREAMS_DEFAULT). */
  maxStreams?: number;
  /** The token the events API requires (--api-token-file), or none. */
  apiToken?: ApiToken | null;
  /** Host names the events API answers to besides IP addresses and localhost (--api-allowed-hosts). */
  apiAllowedHosts?: readonly string[];
  /** The events left out on purpose, by minute (GET /api/excluded). */
  excluded?: ExcludedSource;
}

export interface Servers {
  /** Base URLs actually bound (the port resolved when 0 was asked). */
  metricsUrl: string;
  apiUrl: string;
  /** Closes both listeners; idempotent. */
  close(): Promise<void>;
}

async function listen(app: App, address: ListenAddress): Promise<string> {
  await app.listen({ host: address.host, port: address.port });
  // A TCP listener's address() is always an AddressInfo (a string only for pipes).
  const { port } = app.server.address() as AddressInfo;
  return `http://${formatHostPort(address.host, port)}`;
}

/** Listens on both addresses; if the second fails, the first is closed before rethrowing. */
export async function startServers(opts: ServersOptions): Promise<Servers> {
  const metricsApp = buildMetricsApp({ metrics: opts.metrics, readiness: opts.readiness, liveness: opts.liveness, logLevel: opts.logLevel });
  const apiApp = buildApiApp({
    store: opts.store,
    hub: opts.hub,
    heartbeatMs: opts.heartbeatMs,
    maxStreams: opts.maxStreams,
    logLevel: opts.logLevel,
    token: opts.apiToken,
    allowedHosts: opts.apiAllowedHosts,
    excluded: opts.excluded,
  });
  try {
    const metricsUrl = await listen(metricsApp, opts.metricsAddress);
    const apiUrl = await listen(apiApp, opts.apiAddress);
    let closing: Promise<void> | null = null;
    return {
      metricsUrl,
      apiUrl,
      close() {
        closing ??= Promise.all([metricsApp.close(), apiApp.close()]).then(() => undefined);
        return closing;
      },
    };
  } catch (err) {
    await Promise.all([metricsApp.close(), apiApp.close()]);
    throw err;
  }
}
