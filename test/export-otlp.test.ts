// The OTLP exporter against a local receiver that decodes the real encodings: what a Collector
// would receive over each protocol (records, resource, headers), what the agent's metrics say it
// sent, and that an endpoint that is down loses nothing silently: every record is either sent or
// counted under export_overflow or export_error.
import t from 'tap';
import { OTLP_PROTOCOLS, type Config } from '../src/config.js';
import { eventRecord } from '../src/events/record.js';
import { NO_EXPORT, otlpConfigured } from '../src/export/exporter.js';
import { createOtlpExporter, EXPORT_BATCH, EXPORT_QUEUE } from '../src/export/otlp.js';
import type { Metrics } from '../src/metrics/index.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { idleMetrics } from './helpers/metrics.js';
import { closedPort, startGrpcReceiver, startHttpReceiver, testCa, type Receiver } from './helpers/otlp.js';
import { eventually, type Test } from './helpers/poll.js';

/** The value of one series of the registry (0 when absent). */
async function sample(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const series = family?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return series?.value ?? 0;
}

/** Sets environment variables for one test, as the SDK reads them when an exporter is made. */
function withEnv(t: Test, vars: Record<string, string>): void {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  t.teardown(() => {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}


const config = (otlpEndpoint: string | null, otlpProtocol: (typeof OTLP_PROTOCOLS)[number] = 'http/protobuf', otlpFilter: Config['otlpFilter'] = null) => ({
  nodeName: 'node-7',
  otlpEndpoint,
  otlpProtocol,
  otlpFilter,
});

t.test('nothing is exported unless an endpoint is configured', async (t) => {
  const metrics = idleMetrics();
  const deps = { metrics, version: '1.2.3', env: {}, report: () => t.fail('nothing to report') };
  t.equal(createOtlpExporter(config(null), deps), NO_EXPORT, 'no flag, no variable: the exporter that exports nothing');
  const event = makeEvent();
  NO_EXPORT.export(event, eventRecord(event));
  t.equal(NO_EXPORT.queueLength, 0, 'it queues nothing');
  await NO_EXPORT.close();
  t.notOk(otlpConfigured(config(null), { OTEL_EXPORTER_OTLP_HEADERS: 'a=b' }), 'headers alone do not turn export on');
  t.ok(otlpConfigured(config(null), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), 'the general endpoint variable does');
  t.ok(otlpConfigured(config(null), { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://c:4318/v1/logs' }), 'the logs endpoint variable does');
  t.ok(otlpConfigured(config('http://c:4318'), {}), '--otlp-endpoint does');
});

t.test('each protocol delivers every record to the receiver, field by field, with the headers', async (t) => {
  for (const protocol of OTLP_PROTOCOLS) {
    t.test(protocol, async (t) => {
      withEnv(t, { OTEL_EXPORTER_OTLP_HEADERS: 'x-scope-orgid=tenant-1,authorization=Bearer s3cr3t' });
      const receiver: Receiver = protocol === 'grpc' ? await startGrpcReceiver() : await startHttpReceiver();
      t.teardown(() => receiver.close());
      const metrics = idleMetrics();
      const exporter = createOtlpExporter(config(`${receiver.url}/`, protocol), { metrics, version: '1.2.3', env: {}, report: () => {} });
      const pod = makeEvent({ seq: 1, time: '2026-11-24T16:02:03.123456789Z', argv: ['curl', '-s', 'ü'], argc: 3, argvTruncated: true });
      const host = makeHostEvent({ seq: 2, retval: -2 });
      for (const event of [pod, host]) exporter.export(event, eventRecord(event));
      await exporter.close();
      t.equal(receiver.records.length, 2, 'two records received');
      const [first, second] = receiver.records;
      if (!first || !second) return;
      t.equal(first.encoding, protocol, `sent as ${protocol}`);
      t.equal(first.eventName, 'process.exec', 'event name process.exec');
      t.equal(first.timeUnixNano, '1795536123123456789', 'timestamp: the exec time, to the nanosecond');
      t.same(first.resource, { 'service.name': 'execwatch', 'service.version': '1.2.3', 'k8s.node.name': 'node-7', 'host.name': 'node-7' },
        'resource: service name and version, node');
      t.same(first.attributes['process.command_args'], ['curl', '-s', 'ü'], 'argv as a string array, UTF-8 intact');
      t.equal(first.attributes['process.pid'], pod.pid, 'process.pid an integer');
      t.equal(first.attributes['user.id'], '1000', 'user.id a string');
      t.equal(first.attributes['k8s.deployment.name'], 'web', 'the workload');
      t.equal(first.attributes['execwatch.argv_truncated'], true, 'a boolean');
      t.notOk('execwatch.fileless' in first.attributes, 'a flag that is false is left out');
      t.equal(second.attributes['execwatch.retval'], -2, 'a negative integer');
      t.notOk('k8s.pod.name' in second.attributes, 'a host exec has no pod attribute');
      t.equal(first.headers['x-scope-orgid'], 'tenant-1', 'OTEL_EXPORTER_OTLP_HEADERS carried');
      t.equal(first.headers.authorization, 'Bearer s3cr3t', 'every header of the variable');
      t.equal(await sample(metrics, 'execwatch_export_records_total'), 2, 'records sent counted');
      t.equal(await sample(metrics, 'execwatch_export_batches_total', { result: 'success' }), 1, 'one batch');
      t.ok(await sample(metrics, 'execwatch_export_last_success_timestamp_seconds') > Date.now() / 1000 - 60, 'last success: just now');
      t.equal(await sample(metrics, 'execwatch_events_lost_total', { stage: 'export_shutdown' }), 0, 'close() sent everything: nothing lost at shutdown');
    });
  }
});

t.test('without --otlp-endpoint the standard endpoint variable is used, as it is', async (t) => {
  for (const protocol of ['http/protobuf', 'grpc'] as const) {
    const receiver = protocol === 'grpc' ? await startGrpcReceiver() : await startHttpReceiver();
    t.teardown(() => receiver.close());
    withEnv(t, { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: protocol === 'grpc' ? receiver.url : `${receiver.url}/v1/logs` });
    const exporter = createOtlpExporter(config(null, protocol), { metrics: idleMetrics(), version: 'v', env: process.env, report: () => {} });
    const event = makeEvent();
    exporter.export(event, eventRecord(event));
    await exporter.close();
    t.equal(receiver.records.length, 1, `${protocol}: the record reached the endpoint of the variable`);
  }
});

t.test('OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are added to the resource, over the agent\'s own', async (t) => {
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  const send = async () => {
    const exporter = createOtlpExporter(config(receiver.url), { metrics: idleMetrics(), version: '1.2.3', env: {}, report: () => {} });
    const event = makeEvent();
    exporter.export(event, eventRecord(event));
    await exporter.close();
    return receiver.records.at(-1)?.resource;
  };
  withEnv(t, { OTEL_RESOURCE_ATTRIBUTES: 'k8s.cluster.name=prod-eu,deployment.environment.name=prod,team=sec%2Cops', OTEL_SERVICE_NAME: 'execwatch-prod' });
  t.same(await send(), {
    'service.name': 'execwatch-prod', 'service.version': '1.2.3', 'k8s.node.name': 'node-7', 'host.name': 'node-7',
    'k8s.cluster.name': 'prod-eu', 'deployment.environment.name': 'prod', team: 'sec,ops',
  }, 'the cluster and environment added, percent-decoded; OTEL_SERVICE_NAME names the service');
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'k8s.cluster.name=prod-eu,broken';
  delete process.env.OTEL_SERVICE_NAME;
  t.same(await send(), { 'service.name': 'execwatch', 'service.version': '1.2.3', 'k8s.node.name': 'node-7', 'host.name': 'node-7' },
    'a malformed OTEL_RESOURCE_ATTRIBUTES is ignored as a whole, as the specification says: the agent\'s own resource');
});

t.test('TLS: with OTEL_EXPORTER_OTLP_CERTIFICATE naming the test CA the records arrive; without it, nothing is sent and the batch counts as lost', async (t) => {
  const { caPath, server } = testCa(t.testdir({}));
  for (const protocol of ['http/protobuf', 'grpc'] as const) {
    t.test(protocol, async (t) => {
      const receiver = protocol === 'grpc' ? await startGrpcReceiver(server) : await startHttpReceiver(0, server);
      t.teardown(() => receiver.close());
      t.match(receiver.url, /^https:/, 'an https:// endpoint');
      withEnv(t, { OTEL_EXPORTER_OTLP_TIMEOUT: '2000', OTEL_EXPORTER_OTLP_CERTIFICATE: '' });
      // Read by the exporter when it is made: set before each.
      const attempt = async (certificate: string) => {
        process.env.OTEL_EXPORTER_OTLP_CERTIFICATE = certificate;
        const metrics = idleMetrics();
        const exporter = createOtlpExporter(config(receiver.url, protocol), { metrics, version: 'v', env: {}, report: () => {} });
        const event = makeEvent();
        exporter.export(event, eventRecord(event));
        await exporter.close();
        return { sent: await sample(metrics, 'execwatch_export_records_total'), lost: await sample(metrics, 'execwatch_events_lost_total', { stage: 'export_error' }) };
      };
      t.same(await attempt(caPath), { sent: 1, lost: 0 }, 'trusting the test CA: sent');
      t.equal(receiver.records.length, 1, 'the receiver got it');
      t.same(await attempt(''), { sent: 0, lost: 1 }, 'not trusting it: refused and counted as export_error');
      t.equal(receiver.records.length, 1, 'the receiver got nothing more');
    });
  }
});

t.test('--otlp-filter: only the events it matches are exported', async (t) => {
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  const exporter = createOtlpExporter(config(receiver.url, 'http/protobuf', { result: 'failure', namespace: 'shop' }), {
    metrics: idleMetrics(), version: 'v', env: {}, report: () => {},
  });
  const events = [makeEvent({ retval: -2 }), makeEvent(), makeEvent({ retval: -13, namespace: 'other' }), makeHostEvent({ retval: -2 })];
  for (const event of events) exporter.export(event, eventRecord(event));
  await exporter.close();
  t.same(receiver.records.map((r) => r.attributes['execwatch.seq']), [events[0]?.seq], 'only the failed exec in shop');
});

t.test('an endpoint that is down: the queue stays bounded and every record is sent or counted', async (t) => {
  // Each batch gives up after half a second of retries instead of ten.
  withEnv(t, { OTEL_EXPORTER_OTLP_TIMEOUT: '500' });
  const metrics = idleMetrics({ exportQueueLength: () => exporter.queueLength });
  const reports: string[] = [];
  const exporter = createOtlpExporter(config(`http://127.0.0.1:${await closedPort()}`), {
    metrics, version: 'v', env: {}, report: (line) => reports.push(line),
  });
  const total = EXPORT_QUEUE + 3 * EXPORT_BATCH;
  for (let i = 0; i < total; i += 1) {
    const event = makeEvent();
    exporter.export(event, eventRecord(event));
  }
  t.equal(exporter.queueLength, EXPORT_QUEUE, `the queue holds ${EXPORT_QUEUE}, no more`);
  t.equal(await sample(metrics, 'execwatch_export_queue_length'), EXPORT_QUEUE, 'the gauge shows the full queue');
  // The first batch left the queue for the exporter; the queue then filled and the rest overflowed.
  t.equal(await sample(metrics, 'execwatch_events_lost_total', { stage: 'export_overflow' }), total - EXPORT_QUEUE - EXPORT_BATCH,
    'what did not fit was counted at once as export_overflow');
  await eventually(async () => {
    const lost = (await sample(metrics, 'execwatch_events_lost_total', { stage: 'export_overflow' }))
      + (await sample(metrics, 'execwatch_events_lost_total', { stage: 'export_error' }));
    return lost === total;
  }, 'every record counted as lost', 30_000, 100);
  t.equal(await sample(metrics, 'execwatch_export_records_total'), 0, 'none sent');
  t.ok(await sample(metrics, 'execwatch_export_batches_total', { result: 'failure' }) >= 1, 'failed batches counted');
  t.equal(exporter.queueLength, 0, 'the queue drained');
  t.match(reports[0], /^OTLP export failed \(1 batches so far, .*export_error\): .*ECONNREFUSED/, 'the first failure is reported, with its cause');
  t.equal(reports.length, 1, 'once, not per batch');
  await exporter.close();
});

t.test('shutdown: what the drain could not send in time is counted as export_shutdown, never lost silently', async (t) => {
  // It takes every request and answers none before close() stops waiting.
  const receiver = await startHttpReceiver(0, undefined, { answerAfterMs: 60_000 });
  t.teardown(() => receiver.close());
  const metrics = idleMetrics();
  const reports: string[] = [];
  const exporter = createOtlpExporter(config(receiver.url), { metrics, version: 'v', env: {}, report: (line) => reports.push(line) });
  const total = 3 * EXPORT_BATCH;
  for (let i = 0; i < total; i += 1) {
    const event = makeEvent();
    exporter.export(event, eventRecord(event));
  }
  await exporter.close();
  t.ok(receiver.requests >= 1, 'the receiver took a batch, and never answered');
  const lost = async (stage: string) => sample(metrics, 'execwatch_events_lost_total', { stage });
  t.equal(await sample(metrics, 'execwatch_export_records_total'), 0, 'nothing counts as sent');
  t.equal(await lost('export_error'), 0, 'nor as refused');
  t.equal(await lost('export_shutdown'), total, `all ${total} records, in flight or still queued, count as export_shutdown`);
  t.same(reports, [`OTLP export: ${total} records not sent within 3000 ms of shutdown, counted as lost (stage export_shutdown)`], 'and it says so once');
  const late = makeEvent();
  exporter.export(late, eventRecord(late));
  t.equal(await lost('export_shutdown'), total + 1, 'an event delivered after close() counts too');
  await exporter.close();
  t.equal(await lost('export_shutdown'), total + 1, 'closing again counts nothing twice');
});
