// The execwatch_* families: names, labels, values, the series cap and the OpenMetrics rendering.
import { Counter, Gauge, Registry, type Metric, type RegistryContentType } from 'prom-client';
import t from 'tap';
import type { MetricLabel } from '../src/config.js';
import { prefersOpenMetrics, renderOpenMetrics, scrape } from '../src/metrics/exposition.js';
import { createMetrics, DELAY_BUCKETS, LOST_STAGES, type CaptureStats, type Metrics } from '../src/metrics/index.js';
import { makeEvent, makeExit, makeHostEvent } from './helpers/events.js';

const ALL_LABELS: MetricLabel[] = ['namespace', 'workload', 'pod', 'container'];

function stats(over: Partial<CaptureStats> = {}): CaptureStats {
  return {
    counters: { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 },
    attached: ['handle_exec'],
    unavailable: [],
    decodeErrors: 0,
    pipelineErrors: 0,
    ...over,
  };
}

function build(over: { labels?: MetricLabel[]; maxSeries?: number; read?: () => CaptureStats; podCount?: () => number } = {}) {
  return createMetrics({
    labels: over.labels ?? ALL_LABELS,
    maxSeries: over.maxSeries ?? 100,
    version: '1.2.3',
    kernel: '6.18.0-test',
    captureStats: over.read ?? (() => stats()),
    podCount: over.podCount,
  });
}

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/** Every sample of a family, as a scrape would see it (collect() runs). */
async function samples(metrics: Metrics, name: string): Promise<Sample[]> {
  const json = await metrics.registry.getMetricsAsJSON();
  const family = json.find((m) => m.name === name);
  if (family === undefined) throw new Error(`${name} not registered`);
  return family.values as Sample[];
}

async function value(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const found = (await samples(metrics, name)).find((s) =>
    Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v),
  );
  return found?.value;
}

t.test('every family exists from the start, with expected series at zero', async (t) => {
  const metrics = build({ read: () => stats({ attached: [] }) });
  const cases = [
    ['execwatch_execs_total', { namespace: '', workload: '', pod: '', container: '', result: 'success' }, 0],
    ['execwatch_execs_total', { namespace: '', workload: '', pod: '', container: '', result: 'failure' }, 0],
    ['execwatch_exits_total', { namespace: '', workload: '', pod: '', container: '', status: 'ok' }, 0],
    ['execwatch_exits_total', { namespace: '', workload: '', pod: '', container: '', status: 'error' }, 0],
    ['execwatch_exits_total', { namespace: '', workload: '', pod: '', container: '', status: 'signal' }, 0],
    ['execwatch_events_lost_total', { stage: 'ringbuf_full' }, 0],
    ['execwatch_events_lost_total', { stage: 'process_map_full' }, 0],
    ['execwatch_events_lost_total', { stage: 'state_map_full' }, 0],
    ['execwatch_events_lost_total', { stage: 'decode_error' }, 0],
    ['execwatch_events_lost_total', { stage: 'pipeline_error' }, 0],
    ['execwatch_events_lost_total', { stage: 'subscriber_overflow' }, 0],
    ['execwatch_events_lost_total', { stage: 'log_overflow' }, 0],
    ['execwatch_kernel_events_total', {}, 0],
    ['execwatch_argv_truncated_total', {}, 0],
    ['execwatch_argv_read_errors_total', {}, 0],
    ['execwatch_enrichment_total', { result: 'pod' }, 0],
    ['execwatch_enrichment_total', { result: 'host' }, 0],
    ['execwatch_enrichment_total', { result: 'unresolved' }, 0],
    ['execwatch_pods', {}, 0],
    ['execwatch_kube_watch_restarts_total', {}, 0],
    ['execwatch_event_delay_seconds', { le: '+Inf' }, 0],
    ['execwatch_build_info', { version: '1.2.3', kernel: '6.18.0-test' }, 1],
  ] as const;
  for (const [name, labels, want] of cases) {
    t.equal(await value(metrics, name, labels), want, `${name}${JSON.stringify(labels)} = ${want}`);
  }
  t.same(await samples(metrics, 'execwatch_bpf_attached'), [], 'no program attached yet: no series');
  t.ok(await value(metrics, 'process_cpu_seconds_total'), 'default process metrics in the same registry');
});

t.test('observeExec counts by pod labels and result; host processes have empty labels', async (t) => {
  const metrics = build();
  metrics.observeExec(makeEvent());
  metrics.observeExec(makeEvent());
  metrics.observeExec(makeEvent({ retval: -13, argvTruncated: true }));
  metrics.observeExec(makeHostEvent({ retval: -2 }));
  metrics.observeExec(makeEvent({ namespace: null, pod: null, container: null, workload: null }));
  const pod = { namespace: 'shop', workload: 'Deployment/web', pod: 'web-1', container: 'app' };
  const host = { namespace: '', workload: '', pod: '', container: '' };
  t.equal(await value(metrics, 'execwatch_execs_total', { ...pod, result: 'success' }), 2, 'pod successes');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...pod, result: 'failure' }), 1, 'pod failure');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...host, result: 'failure' }), 1, 'host failure');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...host, result: 'success' }), 1, 'unresolved pod counts as empty labels');
  t.equal(await value(metrics, 'execwatch_argv_truncated_total'), 1, 'truncated argv counted');
  t.equal(await value(metrics, 'execwatch_argv_truncated_total'), 1, 'and once only, however many scrapes');
  const bare = build();
  bare.observeExec(makeEvent({ workload: null }));
  t.equal(await value(bare, 'execwatch_execs_total', { pod: 'web-1', workload: '', result: 'success' }), 1, 'a pod without controller has an empty workload');
  bare.observeExec(makeEvent({ container: null }));
  t.equal(await value(bare, 'execwatch_execs_total', { pod: 'web-1', container: '', result: 'success' }), 1, 'a pod found by UID only has an empty container');
});

t.test('a container whose workload changes counts under the new one; an equal workload object is the same series', async (t) => {
  const metrics = build();
  metrics.observeExec(makeEvent({ workload: { kind: 'Deployment', name: 'web' } }));
  metrics.observeExec(makeEvent({ workload: { kind: 'Deployment', name: 'web' } }));
  metrics.observeExec(makeEvent({ workload: { kind: 'StatefulSet', name: 'web' } }));
  t.equal(await value(metrics, 'execwatch_execs_total', { workload: 'Deployment/web', result: 'success' }), 2, 'two objects, one controller: one series');
  t.equal(await value(metrics, 'execwatch_execs_total', { workload: 'StatefulSet/web', result: 'success' }), 1, 'the new controller has its own');
});

t.test('counts accumulate between scrapes and each scrape adds only what is new', async (t) => {
  const metrics = build();
  const pod = { namespace: 'shop', workload: 'Deployment/web', pod: 'web-1', container: 'app', result: 'success' };
  for (let i = 0; i < 3; i += 1) metrics.observeExec(makeEvent());
  t.equal(await value(metrics, 'execwatch_execs_total', pod), 3, 'first scrape');
  t.equal(await value(metrics, 'execwatch_execs_total', pod), 3, 'a second scrape counts nothing twice');
  metrics.observeExec(makeEvent());
  t.equal(await value(metrics, 'execwatch_execs_total', pod), 4, 'a later exec is added');
});

t.test('the label set follows --metric-labels, result always kept', async (t) => {
  const metrics = build({ labels: ['namespace'] });
  metrics.observeExec(makeEvent({ pod: 'a' }));
  metrics.observeExec(makeEvent({ pod: 'b' }));
  const found = await samples(metrics, 'execwatch_execs_total');
  t.same(found.map((s) => s.labels).at(-1), { namespace: 'shop', result: 'success' }, 'only namespace and result');
  t.equal(await value(metrics, 'execwatch_execs_total', { namespace: 'shop' }), 2, 'pods aggregated');
  metrics.forgetPod('shop', 'a');
  t.equal(await value(metrics, 'execwatch_execs_total', { namespace: 'shop' }), 2, 'a shared series is not removed for one pod');
});

t.test('beyond maxSeries new pods are counted under _other', async (t) => {
  const metrics = build({ maxSeries: 2 });
  // Host processes count under the empty-label series, which take no slot under the cap.
  metrics.observeExec(makeHostEvent());
  for (const pod of ['a', 'b', 'c', 'd']) metrics.observeExec(makeEvent({ pod }));
  metrics.observeExec(makeEvent({ pod: 'a' }));
  metrics.observeExec(makeEvent({ pod: 'd', retval: -1 }));
  const other = { namespace: '_other', workload: '_other', pod: '_other', container: '_other' };
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'a' }), 2, 'a pod under the cap keeps counting');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'c' }), undefined, 'no series for c');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...other, result: 'success' }), 2, 'c and d successes in _other');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...other, result: 'failure' }), 1, 'd failure in _other');
  const podSeries = (await samples(metrics, 'execwatch_execs_total')).filter((s) => !['', '_other'].includes(String(s.labels.pod)));
  t.equal(podSeries.length, 2, 'pod series capped at maxSeries');
});

t.test('forgetPod removes a deleted pod’s series and frees room under the cap', async (t) => {
  const metrics = build({ maxSeries: 3 });
  metrics.observeExec(makeEvent({ pod: 'a' }));
  metrics.observeExec(makeEvent({ pod: 'a', retval: -1 }));
  metrics.observeExec(makeEvent({ pod: 'b' }));
  metrics.forgetPod('shop', 'a');
  metrics.forgetPod('shop', 'unknown');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'a' }), undefined, 'series of a gone');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'b' }), 1, 'b untouched');
  metrics.observeExec(makeEvent({ pod: 'c' }));
  metrics.observeExec(makeEvent({ pod: 'd' }));
  metrics.observeExec(makeEvent({ pod: 'e' }));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'c' }), 1, 'c gets its own series in the freed room');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'd' }), 1, 'd too');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'e' }), undefined, 'e is beyond the cap again');
});

t.test('each exec counts under its own label values, whatever its container counted before', async (t) => {
  const metrics = build({ maxSeries: 2 });
  const id = (n: number) => String(n).padStart(64, '0');
  // The enricher hands every event of a container the same strings and workload object.
  const web = { kind: 'Deployment', name: 'web' };
  const inA = { containerId: id(1), pod: 'a', workload: web };
  metrics.observeExec(makeEvent(inA));
  metrics.observeExec(makeEvent(inA));
  // The same container id, then label values in new objects: equal ones, then a changed one.
  metrics.observeExec(makeEvent({ ...inA, workload: { kind: 'Deployment', name: 'web' } }));
  metrics.observeExec(makeEvent({ ...inA, workload: { kind: 'StatefulSet', name: 'web' } }));
  metrics.observeExec(makeEvent(inA));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'a', workload: 'Deployment/web' }), 4, 'equal values: the same series');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'a', workload: 'StatefulSet/web' }), 1, 'a changed value: its own series');
  // The cap reached: container 2 counts under _other until a forgotten pod frees room.
  const inB = { containerId: id(2), pod: 'b', workload: web };
  metrics.observeExec(makeEvent(inB));
  metrics.observeExec(makeEvent(inB));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: '_other' }), 2, 'b beyond the cap, every exec');
  metrics.forgetPod('shop', 'a');
  metrics.observeExec(makeEvent(inB));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'b' }), 1, 'b gets the freed room');
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: '_other' }), 2, 'and _other keeps what it counted');
  metrics.observeExec(makeEvent(inA));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'a', workload: 'Deployment/web' }), 1, 'a forgotten pod that execs again counts in a new series');
  metrics.observeExec(makeEvent({ ...inB, containerId: null }));
  t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'b' }), 2, 'an event without container id counts by its labels too');

});

t.test('freed room goes to a container that so far counted under _other, whichever result', async (t) => {
  const workload = { kind: 'Deployment', name: 'web' };
  const cases = [
    { name: 'failures only', retval: -2, result: 'failure' },
    { name: 'successes', retval: 0, result: 'success' },
  ] as const;
  for (const c of cases) {
    const metrics = build({ maxSeries: 1 });
    metrics.observeExec(makeEvent({ pod: 'a', containerId: 'a'.repeat(64), workload }));
    const inB = { pod: 'b', containerId: 'b'.repeat(64), workload, retval: c.retval };
    metrics.observeExec(makeEvent(inB));
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: '_other', result: c.result }), 1, `${c.name}: b overflows`);
    metrics.forgetPod('shop', 'a');
    metrics.observeExec(makeEvent(inB));
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'b', result: c.result }), 1, `${c.name}: b's next exec takes the freed slot`);
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: '_other', result: c.result }), 1, `${c.name}: _other keeps what it counted`);
  }
});

t.test('containers evicted from the cache (4,096 kept) lose no counts and make no new series', async (t) => {
  const id = (n: number) => String(n).padStart(64, '0');
  const web = { kind: 'Deployment', name: 'web' };
  const many = build({ maxSeries: 10_000 });
  // Cycling through 5,000 containers evicts each one before it comes round again.
  for (let round = 0; round < 3; round += 1) {
    for (let n = 0; n < 5000; n += 1) many.observeExec(makeEvent({ containerId: id(n), pod: `p${n}`, workload: web, retval: round === 2 ? -1 : 0 }));
  }
  const series = (await samples(many, 'execwatch_execs_total')).filter((s) => String(s.labels.pod).startsWith('p'));
  const success = series.filter((s) => s.labels.result === 'success');
  const failure = series.filter((s) => s.labels.result === 'failure');
  t.equal(success.length, 5000, 'one success series per pod');
  t.ok(success.every((s) => s.value === 2), 'two successes in each, the one after the eviction included');
  t.equal(failure.length, 5000, 'one failure series per pod');
  t.ok(failure.every((s) => s.value === 1), 'one failure in each');
  t.equal(await value(many, 'execwatch_execs_total', { pod: '_other' }), undefined, 'nothing overflowed');
});

t.test('forgetPod then the same pod again: a new series, inside the cap, removable again', async (t) => {
  const cases = [
    { name: 'every label', labels: ALL_LABELS, again: { namespace: 'shop' } },
    // Without namespace, shop/web-1 and dev/web-1 share the series shop/web-1 made: forgetting
    // shop/web-1 removes it, and dev/web-1's cached container must not bring it back unseen.
    { name: 'no namespace label', labels: ['pod', 'container'] as MetricLabel[], again: { namespace: 'dev' } },
  ] as const;
  for (const c of cases) {
    const metrics = build({ labels: [...c.labels], maxSeries: 1 });
    // As the enricher does, every event of a container carries the same workload object.
    const workload = { kind: 'Deployment', name: 'web' };
    const again = { ...c.again, containerId: 'd'.repeat(64), workload };
    metrics.observeExec(makeEvent({ workload }));
    metrics.observeExec(makeEvent(again));
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'web-1' }), 2, `${c.name}: counted before`);
    metrics.forgetPod('shop', 'web-1');
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'web-1' }), undefined, `${c.name}: series gone`);
    metrics.observeExec(makeEvent(again));
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'web-1' }), 1, `${c.name}: the pod's next exec counts from 1`);
    metrics.observeExec(makeEvent({ pod: 'web-2', containerId: 'e'.repeat(64), workload }));
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'web-2' }), undefined, `${c.name}: the new series holds the only slot`);
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: '_other' }), 1, `${c.name}: so another pod overflows`);
    metrics.forgetPod(c.again.namespace, 'web-1');
    t.equal(await value(metrics, 'execwatch_execs_total', { pod: 'web-1' }), undefined, `${c.name}: and forgetPod removes the new series too`);
  }
});

t.test('observeExit counts by pod labels and status, with the series rules of execs_total', async (t) => {
  const metrics = build({ maxSeries: 2 });
  metrics.observeExit(makeExit({ pod: 'a', status: 'ok' }));
  metrics.observeExit(makeExit({ pod: 'a', status: 'signal', code: null, signal: 9 }));
  metrics.observeExit(makeExit({ pod: 'a', status: 'signal', code: null, signal: 9 }));
  metrics.observeExit(makeExit({ pod: 'b', status: 'error', code: 1 }));
  metrics.observeExit(makeExit({ pod: null, namespace: null, container: null, workload: null, status: 'error', code: 2 }));
  const labels = { namespace: 'shop', workload: 'Deployment/web', container: 'app' };
  t.equal(await value(metrics, 'execwatch_exits_total', { ...labels, pod: 'a', status: 'ok' }), 1, 'a ok');
  t.equal(await value(metrics, 'execwatch_exits_total', { ...labels, pod: 'a', status: 'signal' }), 2, 'a signal');
  t.equal(await value(metrics, 'execwatch_exits_total', { namespace: '_other', workload: '_other', pod: '_other', container: '_other', status: 'error' }), 1, 'b beyond the cap: _other');
  t.equal(await value(metrics, 'execwatch_exits_total', { namespace: '', workload: '', pod: '', container: '', status: 'error' }), 1, 'a host process: empty labels');
  metrics.forgetPod('shop', 'a');
  t.equal(await value(metrics, 'execwatch_exits_total', { ...labels, pod: 'a', status: 'ok' }), undefined, 'forgetPod removes its exit series too');
});

t.test('kernel counters are read at scrape time and never decrease', async (t) => {
  let now = stats();
  let reads = 0;
  const metrics = build({
    read: () => {
      reads += 1;
      return now;
    },
  });
  t.equal(reads, 0, 'nothing read at build');
  metrics.observeExec(makeEvent());
  metrics.enrichment('pod');
  metrics.eventDelay(0.01);
  t.equal(reads, 0, 'nor by recording');
  const readsAtStart = reads;
  now = stats({ counters: { ringbuf_full: 5, state_map_full: 2, argv_read_error: 3, events: 40, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 6 }, decodeErrors: 1, pipelineErrors: 2 });
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'process_map_full' }), 6, 'process_map_full');
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 5, 'ringbuf_full');
  t.ok(reads > readsAtStart, 'read during the scrape');
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'state_map_full' }), 2, 'state_map_full');
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'decode_error' }), 1, 'decode_error');
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'pipeline_error' }), 2, 'pipeline_error');
  t.equal(await value(metrics, 'execwatch_argv_read_errors_total'), 3, 'argv read errors');
  t.equal(await value(metrics, 'execwatch_kernel_events_total'), 40, 'events the kernel produced');
  now = stats({ counters: { ringbuf_full: 1, state_map_full: 2, argv_read_error: 4, events: 30, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, decodeErrors: 1 });
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 5, 'a lower reading does not decrease the counter');
  t.equal(await value(metrics, 'execwatch_kernel_events_total'), 40, 'nor the kernel events');
  t.equal(await value(metrics, 'execwatch_argv_read_errors_total'), 4, 'a higher reading raises it to the value');
  metrics.lost('subscriber_overflow');
  metrics.lost('log_overflow', 3);
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'subscriber_overflow' }), 1, 'user-space loss');
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'log_overflow' }), 3, 'user-space loss by n');
});

t.test('loss stages are a closed set: a misspelt stage does not compile, nor count', async (t) => {
  const metrics = build();
  // @ts-expect-error -- 'subscriber_overflw' is not a LostStage: npm run typecheck fails if it becomes one.
  const typo = () => metrics.lost('subscriber_overflw');
  t.throws(typo, 'refused at run time too (a JavaScript caller)');
  const stages = (await samples(metrics, 'execwatch_events_lost_total')).map((s) => s.labels.stage);
  t.same(stages, [...LOST_STAGES], 'no series for the misspelt stage, every known one present');
});

t.test('a failing stats read keeps the last values and the scrape succeeds', async (t) => {
  let fail = true;
  const metrics = build({
    read: () => {
      if (fail) throw new Error('tracer closed');
      return stats({ counters: { ringbuf_full: 7, state_map_full: 0, argv_read_error: 0, events: 12, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 } });
    },
  });
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 0, 'zero before any reading');
  t.same(await samples(metrics, 'execwatch_bpf_attached'), [], 'no attach state before any reading');
  fail = false;
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 7, 'read once it works');
  fail = true;
  t.equal(await value(metrics, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 7, 'kept when the read fails');
  t.equal(await value(metrics, 'execwatch_argv_read_errors_total'), 0, 'other kernel counters too');
  t.equal(await value(metrics, 'execwatch_kernel_events_total'), 12, 'the kernel events too');
});

t.test('in one scrape the kernel events are read after the losses, so they never fall short', async (t) => {
  // A kernel that goes on emitting while the agent scrapes: every read returns the counters as
  // they are, then one more event is counted and lost (events first, as the BPF program does).
  const kernel = { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
  const metrics = build({
    read: () => {
      const snapshot = stats({ counters: { ...kernel } });
      kernel.events += 1;
      kernel.ringbuf_full += 1;
      return snapshot;
    },
  });
  for (let scrape = 1; scrape <= 3; scrape += 1) {
    const text = await metrics.registry.metrics();
    const read = (re: RegExp) => Number(re.exec(text)?.[1]);
    const lost = read(/^execwatch_events_lost_total\{stage="ringbuf_full"\} (\d+)$/m);
    const events = read(/^execwatch_kernel_events_total (\d+)$/m);
    t.ok(lost < events, `scrape ${scrape}: ringbuf_full ${lost} < kernel events ${events}`);
  }
});

t.test('bpf_attached is 1 per attached program and drops to 0 on detach', async (t) => {
  let attached = ['handle_exec', 'handle_exit'];
  const metrics = build({ read: () => stats({ attached }) });
  t.equal(await value(metrics, 'execwatch_bpf_attached', { program: 'handle_exit' }), 1, 'attached');
  attached = ['handle_exec'];
  t.equal(await value(metrics, 'execwatch_bpf_attached', { program: 'handle_exit' }), 0, 'detached shows 0');
  t.equal(await value(metrics, 'execwatch_bpf_attached', { program: 'handle_exec' }), 1, 'other still 1');
});

t.test('bpf_attached shows a program this kernel cannot use as 0 from the first scrape', async (t) => {
  const metrics = build({ read: () => stats({ attached: ['handle_exec'], unavailable: ['handle_enter_compat'] }) });
  t.equal(await value(metrics, 'execwatch_bpf_attached', { program: 'handle_enter_compat' }), 0, 'unavailable: 0');
  t.equal(await value(metrics, 'execwatch_bpf_attached', { program: 'handle_exec' }), 1, 'attached: 1');
});

t.test('the other recorders: pods, enrichment, restarts, delay', async (t) => {
  let pods = 3;
  const metrics = build({ podCount: () => pods });
  t.equal(await value(metrics, 'execwatch_pods'), 3, 'pods read at scrape');
  pods = 4;
  t.equal(await value(metrics, 'execwatch_pods'), 4, 'and again');
  metrics.enrichment('pod');
  metrics.enrichment('unresolved');
  metrics.enrichment('unresolved');
  t.equal(await value(metrics, 'execwatch_enrichment_total', { result: 'unresolved' }), 2, 'unresolved');
  t.equal(await value(metrics, 'execwatch_enrichment_total', { result: 'pod' }), 1, 'pod');
  metrics.kubeWatchRestart();
  t.equal(await value(metrics, 'execwatch_kube_watch_restarts_total'), 1, 'restart');
  for (const s of [0.0005, 0.003, 0.2, 7]) metrics.eventDelay(s);
  const delay = await samples(metrics, 'execwatch_event_delay_seconds');
  const bucket = (le: number | string) => delay.find((s) => s.labels.le === le)?.value;
  t.equal(bucket(0.001), 1, '≤ 1 ms');
  t.equal(bucket(0.005), 2, '≤ 5 ms');
  t.equal(bucket(5), 3, '≤ 5 s');
  t.equal(bucket('+Inf'), 4, 'all');
  const sample = (name: string) => delay.find((s) => s.metricName === name)?.value;
  t.equal(sample('execwatch_event_delay_seconds_count'), 4, 'count');
  t.equal(sample('execwatch_event_delay_seconds_sum'), 0.0005 + 0.003 + 0.2 + 7, 'sum');
  metrics.eventDelay(0.0025);
  const again = await samples(metrics, 'execwatch_event_delay_seconds');
  t.equal(again.find((s) => s.labels.le === 0.0025)?.value, 2, 'a delay equal to a bound counts in that bucket');
  t.same(again.map((s) => s.labels.le).filter((le) => le !== undefined), [...DELAY_BUCKETS, '+Inf'], 'every bound, in order');
});

t.test('execwatch_event_delay_seconds is a histogram on /metrics, cumulative over DELAY_BUCKETS', async (t) => {
  const metrics = build();
  const observed = [0.0004, 0.001, 0.003, 0.04, 0.04, 1.5, 9] as const;
  for (const s of observed) metrics.eventDelay(s);
  const text = await metrics.registry.metrics();
  t.match(text, /^# TYPE execwatch_event_delay_seconds histogram$/m, 'typed histogram');
  const cases = [
    ['0.001', 2],
    ['0.0025', 2],
    ['0.005', 3],
    ['0.025', 3],
    ['0.05', 5],
    ['1', 5],
    ['2.5', 6],
    ['5', 6],
    ['+Inf', 7],
  ] as const;
  for (const [le, want] of cases) {
    t.match(text, new RegExp(`^execwatch_event_delay_seconds_bucket\\{le="${le.replace('+', '\\+')}"\\} ${want}$`, 'm'), `le=${le}: ${want}`);
  }
  const bounds = [...text.matchAll(/^execwatch_event_delay_seconds_bucket\{le="([^"]+)"\}/gm)].map((m) => m[1]);
  t.same(bounds, [...DELAY_BUCKETS.map(String), '+Inf'], 'one bucket per DELAY_BUCKETS bound, in order, then +Inf');
  t.match(text, /^execwatch_event_delay_seconds_count 7$/m, 'count');
  const sum = Number(/^execwatch_event_delay_seconds_sum (\S+)$/m.exec(text)?.[1]);
  t.ok(Math.abs(sum - observed.reduce((a, b) => a + b, 0)) < 1e-9, `sum ${sum}`);
});

t.test('Accept negotiation picks OpenMetrics only when preferred', async (t) => {
  const cases = [
    { accept: undefined, om: false },
    { accept: '*/*', om: false },
    { accept: 'text/plain', om: false },
    { accept: 'application/openmetrics-text', om: true },
    { accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', om: true },
    { accept: 'text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5', om: false },
    { accept: 'application/openmetrics-text;q=0', om: false },
    { accept: 'application/openmetrics-text;q=abc, text/plain', om: false },
  ] as const;
  for (const c of cases) t.equal(prefersOpenMetrics(c.accept), c.om, `Accept: ${c.accept}`);
});

t.test('OpenMetrics rendering: families, suffixes, info, escaping, EOF', async (t) => {
  const metrics = build();
  metrics.observeExec(makeEvent({ namespace: 'we"ird\\ns', pod: 'p\nq' }));
  metrics.eventDelay(0.002);
  const { contentType, body } = await scrape(metrics.registry, 'application/openmetrics-text; version=1.0.0');
  t.match(contentType, /^application\/openmetrics-text; version=1\.0\.0/, 'content type');
  const lines = body.split('\n');
  t.equal(lines.at(-2), '# EOF', 'ends with # EOF');
  t.equal(lines.at(-1), '', 'and a final newline');
  t.ok(lines.includes('# TYPE execwatch_execs counter'), 'counter family without _total');
  t.ok(lines.some((l) => l.startsWith('execwatch_execs_total{namespace="we\\"ird\\\\ns",workload="Deployment/web",pod="p\\nq"')), 'sample with _total, labels escaped');
  t.ok(lines.includes('# TYPE execwatch_build info'), 'build_info as an info family');
  t.ok(lines.includes('execwatch_build_info{version="1.2.3",kernel="6.18.0-test"} 1'), 'info sample');
  t.ok(lines.includes('execwatch_event_delay_seconds_bucket{le="+Inf"} 1'), 'histogram buckets');
  t.ok(lines.includes('execwatch_event_delay_seconds_count 1'), 'histogram count');
  t.ok(lines.includes('# TYPE execwatch_pods gauge'), 'gauge family');
  t.notOk(lines.some((l) => l.startsWith('# TYPE') && l.endsWith('_total counter')), 'no counter family keeps _total');
  const text = await scrape(metrics.registry, undefined);
  t.match(text.contentType, /^text\/plain; version=0\.0\.4/, 'text format by default');
  t.match(text.body, /^execwatch_execs_total\{/m, 'text format keeps the _total family names after an OpenMetrics scrape');
});

t.test('why OpenMetrics is rendered here: prom-client cannot serve both formats from one set of metrics', async (t) => {
  // Every way prom-client offers to get OpenMetrics out of metrics that also serve the text
  // format. Each OpenMetrics scrape renames the counter objects themselves (execwatch_execs_total
  // becomes execwatch_execs), so the text scrape after it exposes the wrong series name. When
  // these assertions fail, prom-client can do it: serve OpenMetrics through it and delete
  // renderOpenMetrics. (prom-client's typings already bind a registry to one format; the casts
  // are to try anyway.)
  type AnyRegistry = Registry<RegistryContentType>;
  const cases = [
    {
      name: 'setContentType on the registry, and back',
      openMetrics: async (registry: AnyRegistry) => {
        registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
        const body = await registry.metrics();
        registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        return body;
      },
    },
    {
      name: 'a second, OpenMetrics registry holding the same metrics',
      openMetrics: async (registry: AnyRegistry) => {
        const om: AnyRegistry = new Registry<RegistryContentType>();
        om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
        for (const metric of registry.getMetricsAsArray()) om.registerMetric(metric as unknown as Metric);
        return om.metrics();
      },
    },
    {
      name: 'Registry.merge, switched to OpenMetrics',
      openMetrics: async (registry: AnyRegistry) => {
        const merged = Registry.merge([registry as Registry]) as AnyRegistry;
        merged.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
        return merged.metrics();
      },
    },
  ] as const;
  for (const c of cases) {
    const metrics = build();
    metrics.observeExec(makeEvent());
    const before = await metrics.registry.metrics();
    t.match(before, /^execwatch_execs_total\{/m, `${c.name}: the text format names the series execwatch_execs_total`);
    const om = await c.openMetrics(metrics.registry as AnyRegistry);
    t.match(om, /^# TYPE execwatch_execs counter$/m, `${c.name}: prom-client's OpenMetrics names the family without _total`);
    t.match(om, /^# TYPE execwatch_build_info gauge$/m, `${c.name}: and has no info type (ours: # TYPE execwatch_build info)`);
    const after = await metrics.registry.metrics();
    t.notMatch(after, /^execwatch_execs_total\{/m, `${c.name}: the next text scrape has lost execwatch_execs_total`);
    t.match(after, /^execwatch_execs\{/m, `${c.name}: it exposes execwatch_execs instead, a series no query or alert knows`);
  }
  // The hand-written renderer leaves the registry as it was.
  const metrics = build();
  metrics.observeExec(makeEvent());
  await scrape(metrics.registry, 'application/openmetrics-text');
  t.match(await metrics.registry.metrics(), /^execwatch_execs_total\{/m, 'after renderOpenMetrics the text scrape still has execwatch_execs_total');
});

t.test('OpenMetrics special values and unsuffixed counters', async (t) => {
  const registry = new Registry();
  new Counter({ name: 'odd_counter', help: 'no suffix', registers: [registry] }).inc(2);
  const g = new Gauge({ name: 'special', help: 'a\\b\nc', labelNames: ['k'], registers: [registry] });
  g.set({ k: 'nan' }, Number.NaN);
  g.set({ k: 'inf' }, Infinity);
  g.set({ k: 'ninf' }, -Infinity);
  new Gauge({ name: 'not_really_info', help: 'x', registers: [registry] }).set(2);
  const body = await renderOpenMetrics(registry);
  t.match(body, /^odd_counter_total 2$/m, 'counter sample gets _total');
  t.match(body, /^# TYPE odd_counter counter$/m, 'family name as given');
  t.match(body, /^special\{k="nan"\} NaN$/m, 'NaN');
  t.match(body, /^special\{k="inf"\} \+Inf$/m, '+Inf');
  t.match(body, /^special\{k="ninf"\} -Inf$/m, '-Inf');
  t.match(body, /^# HELP special a\\\\b\\nc$/m, 'help escaped');
  t.match(body, /^# TYPE not_really_info gauge$/m, 'an _info gauge not at 1 stays a gauge');
});

t.test('out-of-scope execs: the kernel\'s read at scrape, the agent\'s added as they happen, and the table\'s size', async (t) => {
  let now = stats();
  let table = { host: 4, namespace: 2, pod: 0 };
  const metrics = createMetrics({ labels: ALL_LABELS, maxSeries: 10, version: '1', kernel: 'k', captureStats: () => now, scopeCgroups: () => table });
  for (const reason of ['host', 'namespace', 'pod']) {
    t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason }), 0, `${reason}: at zero from the start`);
  }
  now = stats({ counters: { ...stats().counters, excluded_host: 7, excluded_namespace: 3, excluded_pod: 1 } });
  metrics.excludedLate('namespace');
  t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason: 'host' }), 7, 'host: the kernel\'s count');
  t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason: 'namespace' }), 4, 'namespace: the kernel\'s and the agent\'s');
  t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason: 'pod' }), 1, 'pod');
  t.equal(await value(metrics, 'execwatch_scope_late_total'), 1, 'the agent\'s count as late');
  t.equal(await value(metrics, 'execwatch_scope_cgroups', { reason: 'host' }), 4, 'table entries by reason');
  table = { host: 1, namespace: 0, pod: 5 };
  t.equal(await value(metrics, 'execwatch_scope_cgroups', { reason: 'pod' }), 5, 'read at every scrape');
  t.equal(await value(build(), 'execwatch_scope_cgroups', { reason: 'pod' }), 0, 'zero without a scope');
});

t.test('the ring buffer\'s size, for alerts on the bytes waiting in it', async (t) => {
  const metrics = createMetrics({ labels: ALL_LABELS, maxSeries: 10, version: '1', kernel: 'k', captureStats: () => stats(), ringbufBytes: 8 * 1024 * 1024 });
  t.equal(await value(metrics, 'execwatch_ringbuf_size_bytes'), 8 * 1024 * 1024, '--ringbuf-bytes');
  t.equal(await value(build(), 'execwatch_ringbuf_size_bytes'), 0, '0 when not told');
});

t.test('throttled execs and lost events by pod: read from the kernel at every scrape, capped, forgotten with their pod', async (t) => {
  const pod = (namespace: string, name: string) => ({ containerId: `c-${name}`, namespace, pod: name, container: 'app', workload: null });
  const host = { containerId: null, namespace: null, pod: null, container: null, workload: null };
  let reads = 0;
  // What the agent's readCgroups does: each reading counts what the kernel counted since.
  const pending: (() => void)[] = [];
  const m: Metrics = createMetrics({
    labels: ALL_LABELS, maxSeries: 2, version: '1', kernel: 'k', captureStats: () => stats(),
    readCgroups: () => {
      reads += 1;
      for (const count of pending.splice(0)) count();
    },
  });
  t.same(await samples(m, 'execwatch_events_throttled_total'), [{ labels: { namespace: '', pod: '' }, value: 0 }], 'throttled: the host\'s series at zero from the start, labelled namespace and pod only');
  t.same(await samples(m, 'execwatch_events_lost_by_pod_total'), [{ labels: { namespace: '', pod: '' }, value: 0 }], 'lost by pod likewise');
  t.ok(reads >= 2, 'each family reads the kernel\'s counts when scraped');
  pending.push(() => {
    m.throttled(pod('shop', 'a'), 40);
    m.throttled(pod('shop', 'b'), 2);
    m.throttled(pod('shop', 'c'), 1);
    m.throttled(host, 3);
    m.lostBy(pod('shop', 'a'), 7);
    m.lostBy({ ...host, namespace: '_other', pod: '_other' }, 1);
  });
  t.equal(await value(m, 'execwatch_events_throttled_total', { namespace: 'shop', pod: 'a' }), 40, 'a pod\'s throttled execs, counted when scraped');
  t.equal(await value(m, 'execwatch_events_throttled_total', { namespace: '_other', pod: '_other' }), 1, 'beyond --max-series pods: _other');
  t.equal(await value(m, 'execwatch_events_throttled_total', { namespace: '', pod: '' }), 3, 'host processes: empty labels');
  t.equal(await value(m, 'execwatch_events_lost_by_pod_total', { namespace: 'shop', pod: 'a' }), 7, 'a pod\'s lost events');
  t.equal(await value(m, 'execwatch_events_lost_by_pod_total', { namespace: '_other', pod: '_other' }), 1, 'the kernel\'s own overflow');
  m.forgetPod('shop', 'a');
  t.equal(await value(m, 'execwatch_events_throttled_total', { namespace: 'shop', pod: 'a' }), undefined, 'a deleted pod\'s throttled series goes');
  t.equal(await value(m, 'execwatch_events_lost_by_pod_total', { namespace: 'shop', pod: 'a' }), undefined, 'and its lost series');
  const failing = createMetrics({ labels: ALL_LABELS, maxSeries: 2, version: '1', kernel: 'k', captureStats: () => stats(), readCgroups: () => { throw new Error('tracer closed'); } });
  t.equal(await value(failing, 'execwatch_events_throttled_total'), 0, 'a reading that fails leaves what was counted');
});

t.test('the origin label: execs counted by where they came from, host and pod alike; host at zero from the start', async (t) => {
  const metrics = build({ labels: [...ALL_LABELS, 'origin'] });
  const host = { namespace: '', workload: '', pod: '', container: '' };
  const pod = { namespace: 'shop', workload: 'Deployment/web', pod: 'web-1', container: 'app' };
  t.equal(await value(metrics, 'execwatch_execs_total', { ...host, origin: 'host', result: 'success' }), 0, 'the host\'s series exist at zero');
  metrics.observeExec(makeHostEvent());
  metrics.observeExec(makeEvent({ origin: 'exec' }));
  metrics.observeExec(makeEvent({ origin: 'exec' }));
  metrics.observeExec(makeEvent({ origin: 'probe' }));
  metrics.observeExec(makeEvent({ origin: 'workload', namespace: null, pod: null, container: null, workload: null }));
  metrics.observeExit(makeExit({ origin: 'probe' }));
  t.equal(await value(metrics, 'execwatch_execs_total', { ...host, origin: 'host', result: 'success' }), 1, 'a host exec');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...pod, origin: 'exec', result: 'success' }), 2, 'one container\'s execs of one origin share a series');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...pod, origin: 'probe', result: 'success' }), 1, 'and another origin has its own');
  t.equal(await value(metrics, 'execwatch_execs_total', { ...host, origin: 'workload', result: 'success' }), 1, 'an unresolved pod\'s exec, by its origin');
  t.equal(await value(metrics, 'execwatch_exits_total', { ...pod, origin: 'probe', status: 'ok' }), 1, 'exits by origin too');
});

t.test('execwatch_drift_execs_total and execwatch_sessions_total: per container, without origin; excluded by origin counted', async (t) => {
  const metrics = build({ labels: [...ALL_LABELS, 'origin'] });
  const pod = { namespace: 'shop', workload: 'Deployment/web', pod: 'web-1', container: 'app' };
  metrics.observeExec(makeEvent({ drift: true, origin: 'exec' }));
  metrics.observeExec(makeEvent({ drift: true, origin: 'workload' }));
  metrics.observeExec(makeEvent({ fileless: true }));
  metrics.observeExec(makeEvent());
  t.equal(await value(metrics, 'execwatch_drift_execs_total', { ...pod, kind: 'drift' }), 2, 'the container\'s drift execs, whatever their origin');
  t.equal(await value(metrics, 'execwatch_drift_execs_total', { ...pod, kind: 'fileless' }), 1, 'its fileless one');
  t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason: 'origin' }), 0, 'excluded by origin: at zero from the start');
  metrics.excluded('origin');
  t.equal(await value(metrics, 'execwatch_events_excluded_total', { reason: 'origin' }), 1, 'and counted');
  metrics.sessionOpened(makeEvent({ origin: 'exec' }));
  metrics.sessionOpened(makeEvent({ origin: 'debug', container: 'debugger' }));
  t.equal(await value(metrics, 'execwatch_sessions_total', { ...pod, origin: 'exec' }), 1, 'an exec session');
  t.equal(await value(metrics, 'execwatch_sessions_total', { ...pod, container: 'debugger', origin: 'debug' }), 1, 'a debug session, in its ephemeral container');
  metrics.forgetPod('shop', 'web-1');
  t.equal(await value(metrics, 'execwatch_drift_execs_total', { ...pod, kind: 'drift' }), undefined, 'a deleted pod\'s drift series go with it');
  t.equal(await value(metrics, 'execwatch_sessions_total', { ...pod, origin: 'exec' }), undefined, 'and its session series');
});
