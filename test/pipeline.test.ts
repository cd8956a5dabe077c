// The data path after capture (createPipeline): seq is given at delivery, so delivery order is
// seq order and a stream resumed from any seq misses nothing delivered after it.
import { PassThrough } from 'node:stream';
import t from 'tap';
import { eventOf, type EventRecord } from '../src/events/record.js';
import type { ExecEvent, ExitEvent, GapEvent, ThrottleEvent } from '../src/events/schema.js';
import { buildApiApp } from '../src/http/api-app.js';
import type { PodInfo, PodLookup } from '../src/kube/types.js';
import { createPipeline, type PipelineConfig, type PipelineDeps } from '../src/pipeline.js';
import { execIdFor, makeExit, makeHostEvent } from './helpers/events.js';
import { idleMetrics } from './helpers/metrics.js';
import { openSse } from './helpers/sse.js';

const CONTAINER = 'c'.repeat(64);

/** A pod cache that learns one pod when told to, and says so. */
function lateLookup() {
  const pods: PodInfo[] = [];
  const listeners: (() => void)[] = [];
  const lookup: PodLookup = {
    synced: true,
    byContainerId: (id) => pods.find((p) => p.containers.has(id)),
    byPodUid: (uid) => pods.find((p) => p.uid === uid),
    onChange(listener) {
      listeners.push(listener);
      return () => {};
    },
  };
  const learn = () => {
    pods.push({ uid: 'u-1', namespace: 'shop', name: 'web-1', workload: { kind: 'Deployment', name: 'web' }, containers: new Map([[CONTAINER, { name: 'app', image: 'registry.example/app:1', imageId: null, ephemeral: false, probes: [['cat', '/tmp/healthy']] }]]), labels: {} });
    for (const listener of listeners) listener();
  };
  return { lookup, learn };
}

function setup(config: Partial<PipelineConfig> = {}, scope?: PipelineDeps['scope'], podOf?: PipelineDeps['podOf']) {
  // As the agent wires it: the gauge reads the pipeline's waiting room at scrape time.
  const metrics = idleMetrics({ enrichmentWaiting: () => pipeline.pending });
  const { lookup, learn } = lateLookup();
  const stdout = new PassThrough();
  const lines: string[] = [];
  stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter((l) => l !== '')));
  const pipeline = createPipeline(
    { recentEvents: 100, redact: [], defaultRedaction: true, enrichWaitMs: 60_000, logEvents: false, ...config },
    { metrics, podCache: lookup, stdout, ...(scope ? { scope } : {}), ...(podOf ? { podOf } : {}) },
  );
  /** An exec as the decoder hands it over: no seq yet, no pod fields. */
  const captured = (overrides: Partial<ExecEvent>): ExecEvent =>
    ({ ...makeHostEvent(overrides), seq: 0 });
  /** An exit as the decoder hands it over. */
  const exited = (overrides: Partial<ExitEvent>): ExitEvent =>
    ({ ...makeExit({ containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved', cgroup: 'session-1.scope', cgroupParent: 'user-1000.slice', ...overrides }), seq: 0 });
  return { pipeline, learn, captured, exited, lines, metrics };
}

t.test('an event that waited for its pod gets its seq when delivered, after those that went ahead', async (t) => {
  const { pipeline, learn, captured } = setup();
  const held = captured({ pid: 1, cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice' });
  pipeline.sink(held, 0);
  pipeline.sink(captured({ pid: 2 }), 0);
  pipeline.sink(captured({ pid: 3 }), 0);
  t.equal(pipeline.pending, 1, 'the container\'s exec waits for its pod');
  learn();
  t.equal(pipeline.pending, 0, 'and leaves when the pod is known');
  const delivered = pipeline.store.query(() => true, 10).reverse().map(eventOf);
  t.same(delivered.map((e) => [e.seq, e.pid, e.pod]), [[1, 2, null], [2, 3, null], [3, 1, 'web-1']], 'seq follows delivery');
  t.equal(pipeline.delivered, 3, 'delivered counts them');
});

t.test('execwatch_enrichment_waiting_events shows the events waiting for their pod', async (t) => {
  const { pipeline, learn, captured, metrics } = setup();
  const gauge = async () => /^execwatch_enrichment_waiting_events (\d+)$/m.exec(await metrics.registry.metrics())?.[1];
  t.equal(await gauge(), '0', 'none at first');
  for (const pid of [1, 2]) pipeline.sink(captured({ pid, cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice' }), 0);
  t.equal(await gauge(), '2', 'two execs of a container whose pod is not known yet');
  learn();
  t.equal(await gauge(), '0', 'none once the pod is known');
});

t.test('a stream resumed from a seq given before a held event was delivered replays that event', async (t) => {
  const { pipeline, learn, captured } = setup();
  const app = buildApiApp({ store: pipeline.store, hub: pipeline.hub, logLevel: 'fatal', heartbeatMs: 60_000 });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());

  pipeline.sink(captured({ pid: 1, cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice' }), 0);
  pipeline.sink(captured({ pid: 2 }), 0);
  const first = await openSse(`${base}/api/events/stream?after=0`);
  const [seen] = await first.waitFor((f) => f.event === 'exec');
  first.close();
  t.equal(JSON.parse(seen?.data as string).pid, 2, 'a client saw the event that went ahead');

  // While it is away: another event, then the held one leaves.
  pipeline.sink(captured({ pid: 3 }), 0);
  learn();
  const resumed = await openSse(`${base}/api/events/stream`, { 'last-event-id': seen?.id as string });
  const frames = await resumed.waitFor((f) => f.event === 'exec', 2);
  resumed.close();
  t.same(frames.map((f) => JSON.parse(f.data as string).pid), [3, 1], 'the resume replays both, the held one included');
});

t.test('--log-events writes each delivered event once, as the API serves it', async (t) => {
  const { pipeline, captured, lines } = setup({ logEvents: true });
  pipeline.sink(captured({ pid: 7, argv: ['sh', '-c', 'echo "hi"\n'] }), 0);
  await new Promise((resolve) => setImmediate(resolve));
  const [record] = pipeline.store.query(() => true, 1);
  t.same(lines, [record?.json], 'one line, the event\'s JSON');
  t.equal(eventOf(record as EventRecord).pid, 7, 'of that event');
});

t.test('redaction happens before anything is kept', async (t) => {
  const { pipeline, captured } = setup({ redact: [/hunter\d/g] });
  pipeline.sink(captured({ argv: ['mysql', '-phunter2'] }), 0);
  t.same(pipeline.store.query(() => true, 1).map(eventOf)[0]?.argv, ['mysql', '-p***'], 'the ring holds the redacted argv');
});

t.test('flush lets waiting events out at shutdown, in order', async (t) => {
  const { pipeline, captured } = setup();
  pipeline.sink(captured({ pid: 1, cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice' }), 0);
  pipeline.flush();
  t.same(pipeline.store.query(() => true, 10).map(eventOf).map((e) => [e.seq, e.containerId, e.pod]), [[1, CONTAINER, null]], 'delivered unresolved, with its container id');
});


t.test('an event the scope judges out of scope is not delivered and takes no seq', async (t) => {
  const judged: number[] = [];
  const { pipeline, captured } = setup({}, { judge: (event) => (judged.push(event.pid), event.pid === 2 ? 'host' : null) });
  pipeline.sink(captured({ pid: 1 }), 0);
  pipeline.sink(captured({ pid: 2 }), 0);
  pipeline.sink(captured({ pid: 3 }), 0);
  t.same(judged, [1, 2, 3], 'every event judged, after enrichment');
  t.same(pipeline.store.query(() => true, 10).map((r) => [eventOf(r).pid, eventOf(r).seq]), [[3, 2], [1, 1]], 'the out-of-scope one is not in the store, and seq goes on without it');
  t.match(pipeline.excluded.window(0, Date.now() + 1, Date.now()).excluded, { host: 1, namespace: 0 }, 'and counted, by its reason, in the minutes the page reads');
});

t.test('the exit of a process the scope judges out of scope is not delivered either', async (t) => {
  // pid 2's exec went through while its pod was unknown; by its exit the pod is known and out of scope.
  const { pipeline, captured, exited } = setup({}, { judge: (event) => (event.kind === 'exit' && event.pid === 2 ? 'namespace' : null) });
  const frames: string[] = [];
  pipeline.hub.subscribe(() => true, { write: (chunk) => frames.push(chunk) > 0, close: () => {} });
  pipeline.sink(captured({ pid: 2, execId: execIdFor(2) }), 0);
  pipeline.sink(exited({ pid: 2, execId: execIdFor(2) }), 0);
  pipeline.sink(captured({ pid: 3, execId: execIdFor(3) }), 0);
  pipeline.sink(exited({ pid: 3, execId: execIdFor(3) }), 0);
  t.same(frames.map((f) => /^event: (\w+)$/m.exec(f)?.[1]), ['exec', 'exec', 'exit'], 'pid 2\'s exit is not streamed');
  t.match(frames[2], /"pid":3/, 'pid 3\'s is');
  t.match(pipeline.excluded.window(0, Date.now() + 1, Date.now()).excluded, { namespace: 1 }, 'counted by its reason');
  t.equal(pipeline.processes.size, 0, 'both processes have left the process table');
});

t.test('an exit: on the stream and the log as its own event, on its exec in the ring, counted', async (t) => {
  const { pipeline, captured, exited, lines, metrics } = setup({ logEvents: true });
  const frames: string[] = [];
  pipeline.hub.subscribe(() => true, { write: (chunk) => frames.push(chunk) > 0, close: () => {} });
  pipeline.sink(captured({ pid: 10, execId: execIdFor(10) }), 0);
  pipeline.sink(captured({ pid: 11, execId: execIdFor(11) }), 0);
  pipeline.sink(exited({ pid: 10, status: 'signal', code: null, signal: 9, duration: 0.25 }), 0);
  t.same(frames.map((f) => /^event: (\w+)$/m.exec(f)?.[1]), ['exec', 'exec', 'exit'], 'the stream names each frame by its kind');
  const logged = lines.map((l) => JSON.parse(l) as { kind: string; seq: number; execId: string });
  t.same(logged.map((l) => [l.kind, l.seq, l.execId]), [['exec', 1, execIdFor(10)], ['exec', 2, execIdFor(11)], ['exit', 3, execIdFor(10)]], 'one seq for all events; the log has the exit');
  const held = pipeline.store.query(() => true, 10).map(eventOf);
  t.same(held.map((e) => e.seq), [2, 1], 'the ring keeps the execs only');
  t.same(held[1]?.exit, { time: '2026-11-24T16:02:05.000000000Z', status: 'signal', code: null, signal: 9, coreDumped: false, duration: 0.25 }, 'the exec shows how its process ended');
  t.equal(held[0]?.exit, undefined, 'the other one has not ended');
  t.match(await metrics.registry.metrics(), /^execwatch_exits_total\{namespace="",pod="",status="signal"\} 1$/m, 'execwatch_exits_total counts it');
  t.match(await metrics.registry.metrics(), /^execwatch_event_delay_seconds_count 2$/m, 'the delay histogram observes the two execs, not the exit');
  t.equal(pipeline.processes.get(execIdFor(10)), undefined, 'the process table let it go');
  pipeline.sink(exited({ pid: 99 }), 0);
  t.equal(lines.length, 4, 'an exit of a process the table does not know is still delivered');
});

t.test('ancestors: the parent, its parent, … from the process table, up to --ancestors', async (t) => {
  const { pipeline, captured, exited } = setup({ ancestors: 2 });
  const chain = [1, 2, 3, 4].map((pid) => captured({ pid, execId: execIdFor(pid), parentExecId: execIdFor(pid - 1), comm: `p${pid}`, argv: [`p${pid}`, 'x'.repeat(300)] }));
  for (const e of chain) pipeline.sink(e, 0);
  const newest = eventOf(pipeline.store.query(() => true, 1)[0] as EventRecord);
  t.same(newest.ancestors.map((a) => a.pid), [3, 2], 'nearest first, at most 2');
  t.equal(newest.ancestors[0]?.argv.join('').length, 256, 'their argv is cut at 256 bytes');
  // The parent exits before its child's child execs: its entry stays while a child lives.
  pipeline.sink(exited({ pid: 3, execId: execIdFor(3) }), 0);
  pipeline.sink(captured({ pid: 5, execId: execIdFor(5), parentExecId: execIdFor(4) }), 0);
  const fifth = eventOf(pipeline.store.query(() => true, 1)[0] as EventRecord);
  t.same(fifth.ancestors.map((a) => a.pid), [4, 3], 'an exited grandparent still shows');
  const off = setup({ ancestors: 0 });
  for (const e of chain) off.pipeline.sink({ ...e, ancestors: [] }, 0);
  t.same(eventOf(off.pipeline.store.query(() => true, 1)[0] as EventRecord).ancestors, [], '--ancestors 0: none');
});

t.test('origin: classified at delivery; --exclude-origin probe drops a probe, what it starts and its exit, and counts them', async (t) => {
  const { pipeline, learn, captured, exited, metrics } = setup({ excludeOrigins: ['probe'] });
  learn();
  const inPod = { cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice' };
  // As the kernel saw them: entered from outside its pid namespace (exec), or inside (workload).
  pipeline.sink(captured({ ...inPod, pid: 20, execId: execIdFor(20), origin: 'exec', argv: ['cat', '/tmp/healthy'] }), 0);
  pipeline.sink(captured({ ...inPod, pid: 21, execId: execIdFor(21), parentExecId: execIdFor(20), origin: 'workload', argv: ['true'] }), 0);
  pipeline.sink(exited({ ...inPod, pid: 20, execId: execIdFor(20) }), 0);
  pipeline.sink(captured({ ...inPod, pid: 30, execId: execIdFor(30), origin: 'exec', argv: ['sh'] }), 0);
  pipeline.sink(captured({ ...inPod, pid: 31, execId: execIdFor(31), parentExecId: execIdFor(30), origin: 'workload', argv: ['id'] }), 0);
  const frames: string[] = [];
  pipeline.hub.subscribe(() => true, { write: (chunk) => frames.push(chunk) > 0, close: () => {} });
  pipeline.sink(exited({ ...inPod, pid: 31, execId: execIdFor(31) }), 0);
  const held = pipeline.store.query(() => true, 10).map(eventOf).reverse();
  t.same(held.map((e) => [e.pid, e.seq, e.origin, e.sessionExecId]), [[30, 1, 'exec', execIdFor(30)], [31, 2, 'exec', execIdFor(30)]], 'the session is delivered, the probe and its child are not and take no seq');
  t.match(frames[0], /"kind":"exit".*"origin":"exec","sessionExecId":"[^"]+"/, 'an exit carries its exec\'s origin and session');
  t.match(await metrics.registry.metrics(), /^execwatch_events_excluded_total\{reason="origin"\} 3$/m, 'the probe\'s exec, its child\'s and its exit are counted as excluded');
  t.equal(pipeline.excluded.window(0, Date.now() + 1, Date.now()).excluded.origin, 3, 'in the minutes the page reads too');
  // The session's shell execs anew (`exec bash`): the same process, the same session, not a new one.
  pipeline.sink(captured({ ...inPod, pid: 30, execId: execIdFor(30), origin: 'exec', argv: ['bash'] }), 0);
  t.match(await metrics.registry.metrics(), /^execwatch_sessions_total\{namespace="shop",pod="web-1",origin="exec"\} 1$/m, 'execwatch_sessions_total counts the session once');
  const plain = setup();
  plain.learn();
  plain.pipeline.sink(plain.captured({ ...inPod, pid: 40, origin: 'exec', argv: ['cat', '/tmp/healthy'] }), 0);
  t.equal(eventOf(plain.pipeline.store.query(() => true, 1)[0] as EventRecord).origin, 'probe', 'without --exclude-origin the probe is delivered as one');
});

t.test('throttles and gaps: the kernel\'s start once, the stop and the gap from the counts, by pod in the metrics', async (t) => {
  const S = 1_000_000_000n;
  const podOf = (id: string) => id === '55'
    ? { containerId: null, namespace: 'shop', pod: 'web-1', podUid: 'u-1', container: null, workload: null, attribution: 'pod' as const }
    : { containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved' as const };
  const { pipeline, learn, lines, metrics } = setup({ logEvents: true, nodeName: 'n1' }, undefined, podOf);
  learn();
  const start: ThrottleEvent = {
    seq: 0, kind: 'throttle', phase: 'start', time: '1970-01-01T00:00:10.000000000Z', node: 'n1', since: '1970-01-01T00:00:10.000000000Z', suppressed: 0, pid: 9, comm: 'loop',
    cgroupId: '55', cgroup: `cri-containerd-${CONTAINER}.scope`, cgroupParent: 'kubepods-podx.slice', cgroupTruncated: false,
    containerId: null, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'unresolved',
  };
  pipeline.sink({ ...start }, 0);
  pipeline.sink({ ...start }, 0);
  const reading = (nowNs: bigint, ringbufFull: number, growth: { cgroupId: string; throttled: number; lost: number; lastNs: bigint }[]) => ({ growth, ringbufFull, excluded: { host: 0, namespace: 0, pod: 0 }, nowNs, bootOffsetNs: 0n });
  pipeline.cgroups(reading(10n * S, 0, [{ cgroupId: '55', throttled: 20, lost: 2, lastNs: 10n * S }, { cgroupId: '0', throttled: 0, lost: 1, lastNs: 10n * S }, { cgroupId: '66', throttled: 0, lost: 0, lastNs: 0n }]));
  pipeline.cgroups(reading(12n * S, 3, []));
  const kinds = (kind: string) => pipeline.store.query((r) => r.kind === kind, 10).reverse().map(eventOf) as unknown[];
  const throttles = kinds('throttle') as ThrottleEvent[];
  t.same(throttles.map((e) => [e.phase, e.suppressed, e.pod, e.container]), [['start', 0, 'web-1', 'app'], ['stop', 20, 'web-1', 'app']], 'one start (the second report dropped), enriched; its stop, with the counts, once the cgroup was quiet a second');
  const [gap] = kinds('gap') as GapEvent[];
  t.match(gap, { kind: 'gap', node: 'n1', lost: 3, pods: [{ namespace: 'shop', pod: 'web-1', lost: 2 }, { namespace: '_other', pod: '_other', lost: 1 }] }, 'the reading that found ringbuf_full grown made a gap, naming the pods');
  t.same(lines.map((l) => (JSON.parse(l) as { kind: string }).kind), ['throttle', 'gap', 'throttle'], 'each on a --log-events line, in delivery order');
  const text = await metrics.registry.metrics();
  t.match(text, /^execwatch_events_throttled_total\{namespace="shop",pod="web-1"\} 20$/m, 'throttled execs by pod');
  t.match(text, /^execwatch_events_lost_by_pod_total\{namespace="shop",pod="web-1"\} 2$/m, 'lost events by pod');
  t.match(text, /^execwatch_events_lost_by_pod_total\{namespace="_other",pod="_other"\} 1$/m, 'the kernel\'s overflow under _other');
  // Readings at the wall clock's now (boot ns + offset), as the agent's are.
  const nowOffset = BigInt(Date.now()) * 1_000_000n - 12n * S;
  pipeline.cgroups({ ...reading(12n * S, 3, []), excluded: { host: 0, namespace: 4, pod: 1 }, bootOffsetNs: nowOffset });
  pipeline.cgroups({ ...reading(12n * S, 3, []), excluded: { host: 2, namespace: 4, pod: 1 }, bootOffsetNs: nowOffset });
  t.same(pipeline.excluded.window(0, Date.now() + 1, Date.now()).excluded, { host: 2, namespace: 4, pod: 1, origin: 0 }, 'the kernel\'s out-of-scope counts, counted once each, in the minute of the reading');
  pipeline.cgroups(reading(13n * S, 3, [{ cgroupId: '77', throttled: 4, lost: 0, lastNs: 13n * S }]), true);
  t.same((kinds('throttle') as ThrottleEvent[]).slice(2).map((e) => [e.phase, e.suppressed, e.pid]), [['start', 0, 0], ['stop', 4, 0]], 'at shutdown, counts with no start get a made-up one, and every episode ends');
  const quiet = setup();
  quiet.pipeline.cgroups(reading(1n, 5, [{ cgroupId: '9', throttled: 0, lost: 5, lastNs: 1n }]));
  t.match(quiet.pipeline.store.query((r) => r.kind === 'gap', 1).map(eventOf), [{ node: '', pods: [{ namespace: null, pod: null, lost: 5 }] }], 'without a node name or a way to find pods: the gap still says how many');
});
