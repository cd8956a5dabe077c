// The metrics listener and startServers: /metrics (text and OpenMetrics), probes, promtool on a
// real scrape, both listeners bound and closed.
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { Gauge } from 'prom-client';
import t from 'tap';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { buildMetricsApp, MAX_SCRAPES_WAITING } from '../src/http/metrics-app.js';
import { startServers } from '../src/http/server.js';
import { createMetrics } from '../src/metrics/index.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { freePort } from './helpers/prometheus.js';

const metricsFor = () =>
  createMetrics({
    labels: ['namespace', 'workload', 'pod', 'container'],
    maxSeries: 100,
    version: '0.1.0',
    kernel: '6.18.0',
    captureStats: () => ({
      counters: { ringbuf_full: 2, state_map_full: 1, argv_read_error: 3, events: 9, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 },
      attached: ['execwatch_enter_execve', 'execwatch_sched_exec'],
      unavailable: [],
      decodeErrors: 0,
      pipelineErrors: 0,
    }),
    podCount: () => 7,
  });

t.test('/metrics serves the text format, or OpenMetrics when Accept asks', async (t) => {
  const metrics = metricsFor();
  metrics.observeExec(makeEvent());
  const app = buildMetricsApp({ metrics, readiness: () => ({ ready: true, reasons: [] }), logLevel: 'fatal' });
  t.teardown(() => app.close());
  const text = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(text.statusCode, 200, '200');
  t.equal(text.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8', 'Prometheus text');
  t.match(text.body, /^execwatch_execs_total\{namespace="shop",workload="Deployment\/web",pod="web-1",container="app",result="success"\} 1$/m, 'exec counted');
  t.match(text.body, /^execwatch_pods 7$/m, 'pods gauge');
  t.match(text.body, /^execwatch_bpf_attached\{program="execwatch_sched_exec"\} 1$/m, 'attached program');
  const om = await app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
  });
  t.equal(om.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8', 'OpenMetrics');
  t.match(om.body, /# EOF\n$/, 'OpenMetrics ends with # EOF');
});

t.test('concurrent scrapes share one collection; beyond the bound they get 503 with Retry-After', async (t) => {
  const metrics = metricsFor();
  let collections = 0;
  new Gauge({
    name: 'test_collections',
    help: 'Collections of the registry so far.',
    registers: [metrics.registry],
    collect() {
      collections += 1;
      this.set(collections);
    },
  });
  const app = buildMetricsApp({ metrics, readiness: () => ({ ready: true, reasons: [] }), logLevel: 'fatal' });
  t.teardown(() => app.close());
  const scrapeAll = (n: number, headers: Record<string, string> = {}) =>
    Promise.all(Array.from({ length: n }, () => app.inject({ method: 'GET', url: '/metrics', headers })));

  const together = await scrapeAll(MAX_SCRAPES_WAITING);
  t.same(together.map((r) => r.statusCode), together.map(() => 200), `${MAX_SCRAPES_WAITING} concurrent scrapes: all 200`);
  t.equal(collections, 1, 'one collection served them all');
  t.equal(new Set(together.map((r) => r.body)).size, 1, 'every scrape got the same body');
  t.match(together[0]?.body, /^test_collections 1$/m, 'the body of that one collection');

  const next = await scrapeAll(1);
  t.match(next[0]?.body, /^test_collections 2$/m, 'a later scrape collects afresh: nothing is served stale');

  const crowd = await scrapeAll(MAX_SCRAPES_WAITING + 3);
  const refused = crowd.filter((r) => r.statusCode === 503);
  t.equal(crowd.filter((r) => r.statusCode === 200).length, MAX_SCRAPES_WAITING, `the first ${MAX_SCRAPES_WAITING} are served`);
  t.equal(refused.length, 3, 'the rest get 503');
  t.same(refused.map((r) => r.headers['retry-after']), ['1', '1', '1'], 'with Retry-After: 1');
  t.match(refused[0]?.json(), { error: 'Service Unavailable', message: `${MAX_SCRAPES_WAITING} scrapes are already waiting for metrics; retry in 1 s` },
    'and a body saying why');
  t.equal(collections, 3, 'the crowd cost one collection');

  const mixed = await Promise.all([
    ...Array.from({ length: 2 }, () => app.inject({ method: 'GET', url: '/metrics' })),
    ...Array.from({ length: 2 }, () => app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'application/openmetrics-text' } })),
  ]);
  t.same(mixed.map((r) => String(r.headers['content-type']).split(';')[0]), ['text/plain', 'text/plain', 'application/openmetrics-text', 'application/openmetrics-text'],
    'each scrape gets the format it asked for');
  t.equal(collections, 5, 'one collection per format');
  t.equal((await scrapeAll(1))[0]?.statusCode, 200, 'once they are answered, scrapes are admitted again');
});

t.test('/healthz is 200 while running; /readyz follows readiness', async (t) => {
  let state = { ready: false, reasons: ['BPF programs are not attached', 'pod cache not synced'] };
  const app = buildMetricsApp({ metrics: metricsFor(), readiness: () => state, logLevel: 'fatal' });
  t.teardown(() => app.close());
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.same([health.statusCode, health.json()], [200, { status: 'ok' }], 'healthz');
  const notReady = await app.inject({ method: 'GET', url: '/readyz' });
  t.same([notReady.statusCode, notReady.json()], [503, { status: 'not ready', reasons: state.reasons }], '503 with reasons');
  state = { ready: true, reasons: [] };
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.same([ready.statusCode, ready.json()], [200, { status: 'ready' }], '200 ready');
  const other = await app.inject({ method: 'GET', url: '/api/events' });
  t.equal(other.statusCode, 404, 'the events API is not on the metrics listener');
});

/** A port free right now. */
t.test('startServers binds both listeners; a real scrape passes promtool check metrics', async (t) => {
  const metrics = metricsFor();
  const store = new EventStore({ maxEvents: 10 });
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => metrics.lost('subscriber_overflow') });
  const servers = await startServers({
    metricsAddress: { host: '127.0.0.1', port: 0 },
    apiAddress: { host: '::1', port: 0 },
    metrics,
    store,
    hub,
    readiness: () => ({ ready: true, reasons: [] }),
    logLevel: 'fatal',
  });
  t.teardown(() => servers.close());
  t.match(servers.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'metrics URL with the bound port');
  t.match(servers.apiUrl, /^http:\/\/\[::1\]:\d+$/, 'IPv6 API URL in brackets');
  for (const e of [makeEvent(), makeEvent({ retval: -2, argvTruncated: true }), makeHostEvent()]) {
    metrics.observeExec(e);
    store.push(eventRecord(e));
  }
  metrics.eventDelay(0.004);
  metrics.enrichment('pod');
  const scrape = await fetch(`${servers.metricsUrl}/metrics`);
  const body = await scrape.text();
  t.equal(scrape.status, 200, 'scrape 200');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  t.equal(lint.error, undefined, 'promtool runs (Debian package prometheus)');
  t.equal(lint.status, 0, 'promtool exit 0');
  t.equal(`${lint.stdout}${lint.stderr}`, '', 'promtool reports nothing');
  for (const family of [
    'execwatch_execs_total',
    'execwatch_events_lost_total',
    'execwatch_kernel_events_total',
    'execwatch_argv_truncated_total',
    'execwatch_argv_read_errors_total',
    'execwatch_enrichment_total',
    'execwatch_pods',
    'execwatch_kube_watch_restarts_total',
    'execwatch_bpf_attached',
    'execwatch_event_delay_seconds',
    'execwatch_build_info',
    'process_cpu_seconds_total',
  ] as const) {
    t.match(body, new RegExp(`^# TYPE ${family} `, 'm'), `${family} exposed`);
  }
  const events = await fetch(`${servers.apiUrl}/api/events?limit=1`);
  t.equal(((await events.json()) as { events: unknown[] }).events.length, 1, 'API served on the API address');
  const both = [servers.close(), servers.close()];
  t.equal(both[0], both[1], 'close is idempotent');
  await Promise.all(both);
  await t.rejects(fetch(`${servers.metricsUrl}/metrics`), 'metrics listener closed');
});

t.test('if the API address cannot be bound, the metrics listener is released and the error surfaces', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  const taken = (blocker.address() as AddressInfo).port;
  const metricsPort = await freePort();
  const metrics = metricsFor();
  await t.rejects(
    startServers({
      metricsAddress: { host: '127.0.0.1', port: metricsPort },
      apiAddress: { host: '127.0.0.1', port: taken },
      metrics,
      store: new EventStore({ maxEvents: 1 }),
      hub: new EventHub({ maxQueue: 1, onOverflow: () => undefined }),
      readiness: () => ({ ready: true, reasons: [] }),
      logLevel: 'fatal',
    }),
    { code: 'EADDRINUSE' },
    'EADDRINUSE surfaces',
  );
  const again = createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(metricsPort, '127.0.0.1', resolve);
  });
  t.pass('the metrics port is free again');
  await new Promise((resolve) => again.close(resolve));
});

