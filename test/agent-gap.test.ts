// Whose losses (issue 19): the agent (a child process, so that it can be stopped) is held with
// SIGSTOP while two pods exec, one far more than the other, into a ring far too small for them.
// What a user sees once it continues: execwatch_events_lost_by_pod_total names both pods, each
// with at least the execs of it that did not arrive; the stream, the API and the log lines carry
// a `gap` event saying how many events were lost between when and when, and whose; and
// delivered + lost + excluded + throttled is still what the kernel saw.
import { spawn } from 'node:child_process';
import t from 'tap';
import type { GapEvent } from '../src/events/schema.js';
import { startApiServer } from './helpers/apiserver.js';
import { startSmallRingAgent } from './helpers/command.js';
import { ensureTracefs, execHelper, kernelTest, marker } from './helpers/kernel.js';
import { cgroupArea, events, kubeconfigFor, NAMESPACE, podsGauge, sampleValue } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';
import { openSse, type SseFrame } from './helpers/sse.js';

const NODE = 'gap-node';
const containerd = (uid: string, id: string) => ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`];

/** `count` execs of /usr/bin/true with marker `m` inside `cgroup`, one after the other. */
function burstIn(cgroup: string, count: number, m: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const helper = execHelper();
    const child = spawn(helper, ['cgroup', cgroup, helper, 'exec-helper', 'burst', String(count), '1', '/usr/bin/true', 'true', m], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exec-helper burst exited ${code}: ${err}`))));
  });
}

/** The sum of every sample of `name` in one scrape's text, of those whose labels `keep` keeps. */
function sum(text: string, name: string, keep: (labels: string) => boolean = () => true): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{(.*)\\})? (\\S+)$`, 'gm'))].filter((m) => keep(m[1] ?? '')).reduce((n, m) => n + Number(m[2]), 0);
}

t.test('a forced ring overflow: the lost events are counted by pod, and a gap marks the feed', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const container = cgroupArea(t, NODE);
  const busy = container('busy', containerd, 'containerd');
  const calm = container('calm', containerd, 'containerd');
  api.addPod(busy.pod());
  api.addPod(calm.pod());

  // The smallest ring there is: about 110 records of a short exec.
  const agent = await startSmallRingAgent(t, ['--kubeconfig', kubeconfigFor(t, api), '--node-name', NODE]);
  const metricsUrl = agent.metricsBase;
  await eventually(async () => (await podsGauge(metricsUrl)) === 2, 'execwatch_pods to count the two pods', 30_000);
  const stream = await openSse(`${agent.apiUrl}/api/events/stream?kind=gap`);
  t.teardown(() => stream.close());

  const BUSY = 2000;
  const CALM = 300;
  const [mBusy, mCalm] = [marker('busy'), marker('calm')];
  agent.child.kill('SIGSTOP');
  await Promise.all([burstIn(busy.cgroup, BUSY, mBusy), burstIn(calm.cgroup, CALM, mCalm)]);
  agent.child.kill('SIGCONT');

  const lostOf = (pod: string) => sampleValue(metricsUrl, 'execwatch_events_lost_by_pod_total', { namespace: NAMESPACE, pod });
  const deliveredOf = async (m: string) => (await events(agent.apiUrl, { q: m, filename: '/usr/bin/true', limit: '10000' })).length;
  // Each pod's execs that did not arrive were lost, and counted against it (with its exits lost,
  // and the helper's own exec in its cgroup, it may be more).
  await eventually(async () => (await lostOf(busy.podName)) >= BUSY - (await deliveredOf(mBusy)), 'the busy pod\'s missing execs counted against it', 30_000);
  await eventually(async () => (await lostOf(calm.podName)) >= CALM - (await deliveredOf(mCalm)), 'the calm pod\'s missing execs counted against it', 30_000);
  const [dBusy, dCalm] = [await deliveredOf(mBusy), await deliveredOf(mCalm)];
  t.comment(`busy: ${dBusy} of ${BUSY} delivered, ${await lostOf(busy.podName)} lost; calm: ${dCalm} of ${CALM} delivered, ${await lostOf(calm.podName)} lost`);
  t.ok(dBusy < BUSY && dCalm < CALM, 'the ring overflowed for both pods');
  t.ok((await lostOf(busy.podName)) > 0 && (await lostOf(calm.podName)) > 0, 'execwatch_events_lost_by_pod_total names both pods');

  // Every loss is counted against some cgroup (other machine's processes meanwhile: the host's
  // series), and the books balance; both in one scrape, once nothing is in flight.
  await eventually(async () => {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const ringbufFull = sum(text, 'execwatch_events_lost_total', (labels) => labels.includes('stage="ringbuf_full"'));
    const lost = sum(text, 'execwatch_events_lost_total', (labels) => !/state_map_full|process_map_full/.test(labels));
    const accounted = sum(text, 'execwatch_execs_total') + sum(text, 'execwatch_exits_total') + lost + sum(text, 'execwatch_events_excluded_total') + sum(text, 'execwatch_events_throttled_total');
    return sum(text, 'execwatch_events_lost_by_pod_total') === ringbufFull && accounted === sum(text, 'execwatch_kernel_events_total');
  }, 'sum(lost_by_pod) = ringbuf_full, and delivered + lost + excluded + throttled = the kernel\'s count', 30_000);
  t.pass('sum(execwatch_events_lost_by_pod_total) = execwatch_events_lost_total{stage="ringbuf_full"}; delivered + lost + excluded + throttled = execwatch_kernel_events_total');

  // The feed says where it is incomplete: on the stream as it happens, and in the ring for later.
  const [frame] = await stream.waitFor((f) => f.event === 'gap' && (JSON.parse(f.data as string) as GapEvent).pods.some((p) => p.pod === busy.podName), 1, 10_000);
  const live = JSON.parse((frame as SseFrame).data as string) as GapEvent;
  t.match(live, { kind: 'gap', node: NODE }, 'the stream carries a gap event naming the busy pod');
  t.ok(live.lost > 0 && live.from <= live.to, `${live.lost} events lost between ${live.from} and ${live.to}`);
  // Gaps before the stream was opened (a machine busy with other tests may overflow so small a
  // ring at any time) are in the ring too.
  const ringbufFull = await sampleValue(metricsUrl, 'execwatch_events_lost_total', { stage: 'ringbuf_full' });
  const listed = async () => (await events(agent.apiUrl, { kind: 'gap', limit: '10000' })) as unknown as GapEvent[];
  await eventually(async () => (await listed()).reduce((n, g) => n + g.lost, 0) >= ringbufFull, 'the gaps in GET /api/events?kind=gap to account for every loss', 10_000);
  const gaps = await listed();
  t.equal(gaps.reduce((n, g) => n + g.lost, 0), await sampleValue(metricsUrl, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }), 'the gaps\' `lost` add up to ringbuf_full');
  t.ok(gaps.some((g) => g.seq === live.seq), 'the streamed gap among them');
  const named = (pod: string) => gaps.flatMap((g) => g.pods).filter((p) => p.namespace === NAMESPACE && p.pod === pod).reduce((n, p) => n + p.lost, 0);
  t.equal(named(busy.podName), await lostOf(busy.podName), 'the gaps name the busy pod, with its losses');
  t.equal(named(calm.podName), await lostOf(calm.podName), 'and the calm one, with its');
  await eventually(() => agent.out().split('\n').filter((line) => line.includes('"kind":"gap"')).length === gaps.length, 'every gap on a --log-events line');
  t.pass('--log-events carries them too');

  agent.child.kill('SIGTERM');
  t.equal(await agent.exited, 0, 'the agent shuts down cleanly');
});
