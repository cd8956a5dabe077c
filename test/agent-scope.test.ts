// Scope in the kernel (issue 19), the whole agent on the real kernel: pods in `shop` and
// `kube-system` from the API-server double, their containers real cgroup v2 directories named as
// containerd names them, --exclude-namespaces kube-system --exclude-host --exclude-pods. What a
// user sees: the out-of-scope execs are not delivered and are counted by reason; the kernel drops
// them before any argv is read (its run time per excluded exec, from kernel.bpf_stats_enabled, is
// a fraction of an included one's); a pod or a container created while the agent runs is in scope
// (or out of it) from its first exec.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { startApiServer } from './helpers/apiserver.js';
import { ensureTracefs, execHelper, kernelTest, makeCgroup, marker, progRuns, type ProgRun } from './helpers/kernel.js';
import { cgroupArea, configOf, events, execOf, kubeconfigFor, NAMESPACE, podsGauge, ready, runInCgroup, sampleValue, type FakeContainer } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';
import { openSse, type SseFrame } from './helpers/sse.js';
import type { ThrottleEvent } from '../src/events/schema.js';
import { spawn } from 'node:child_process';

const NODE = 'scope-node';
const containerd = (uid: string, id: string) => ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`];

/** `c`'s pod, in namespace `namespace` and with `labels` added. */
function podIn(c: FakeContainer, namespace: string, labels: Record<string, string> = {}) {
  const pod = c.pod();
  return { ...pod, metadata: { ...pod.metadata, namespace, labels: { ...pod.metadata?.labels, ...labels } } };
}

/** `count` execs of /usr/bin/true with `args` inside `cgroup` (the helper joins it, then forks them). */
function burstIn(cgroup: string, count: number, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const helper = execHelper();
    const child = spawn(helper, ['cgroup', cgroup, helper, 'exec-helper', 'burst', String(count), '1', '/usr/bin/true', 'true', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exec-helper burst exited ${code}: ${err}`))));
  });
}

/** The programs an execve goes through: syscall entry, sched_process_exec, syscall exit. */
const EXEC_PROGRAMS = ['handle_enter_execve', 'handle_exec', 'handle_exit_execve'] as const;

function delta(before: Record<string, ProgRun>, after: Record<string, ProgRun>): { ns: number; runs: number; byProgram: Record<string, number> } {
  const byProgram: Record<string, number> = {};
  let ns = 0;
  for (const name of EXEC_PROGRAMS) {
    byProgram[name] = (after[name] as ProgRun).ns - (before[name] as ProgRun).ns;
    ns += byProgram[name];
  }
  // Every execve reaches the syscall entry: its runs are the execs of the whole machine meanwhile.
  return { ns, runs: (after.handle_enter_execve as ProgRun).runs - (before.handle_enter_execve as ProgRun).runs, byProgram };
}

t.test('scope in the kernel: namespaces, host and pod selectors', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  const container = cgroupArea(t, NODE);

  const agent = await startAgent(
    configOf([
      '--kubeconfig', kubeconfig,
      '--node-name', NODE,
      '--metrics-address', '127.0.0.1:0',
      '--api-address', '127.0.0.1:0',
      '--enrich-wait', '5s',
      '--recent-events', '200000',
      '--log-level', 'warn',
      '--exclude-namespaces', 'kube-*,monitoring',
      '--exclude-host',
      '--exclude-pods', 'probe=true',
      // The cost test's included execs carry the largest argv there is, and the ring holds them.
      '--argv-max-bytes', '32768',
      '--ringbuf-bytes', '64Mi',
      // The bursts below are the point here: no rate limit (the next test has one).
      '--cgroup-rate', '0',
    ]),
    { binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test' },
  );
  t.teardown(() => agent.close());
  await eventually(() => ready(agent.metricsUrl), '/readyz to report the pod cache synced');

  const excluded = (reason: string) => sampleValue(agent.metricsUrl, 'execwatch_events_excluded_total', { reason });
  const late = () => sampleValue(agent.metricsUrl, 'execwatch_scope_late_total');
  const inTable = (reason: string) => sampleValue(agent.metricsUrl, 'execwatch_scope_cgroups', { reason });

  const shop = container('shop', containerd, 'containerd');
  const system = container('system', containerd, 'containerd');
  const probe = container('probe', containerd, 'containerd');
  const pods = await podsGauge(agent.metricsUrl);
  api.addPod(shop.pod());
  api.addPod(podIn(system, 'kube-system'));
  api.addPod(podIn(probe, 'shop', { probe: 'true' }));
  await eventually(async () => (await podsGauge(agent.metricsUrl)) === pods + 3, 'execwatch_pods to count the three pods');
  await eventually(
    // Each pod's cgroup and its container's.
    async () => (await inTable('namespace')) === 2 && (await inTable('pod')) === 2 && (await inTable('host')) > 0,
    'the kube-system pod, the probe pod and the host in the kernel table',
  );

  await t.test('out-of-scope execs are dropped and counted, in-scope ones delivered', async (t) => {
    const before = { namespace: await excluded('namespace'), pod: await excluded('pod'), late: await late() };
    const [mShop, mSystem, mProbe] = [marker('shop'), marker('system'), marker('probe')];
    await runInCgroup(system.cgroup, mSystem);
    await runInCgroup(probe.cgroup, mProbe);
    await runInCgroup(shop.cgroup, mShop);
    await eventually(async () => (await execOf(agent.apiUrl, mShop)) !== undefined, 'the shop exec in /api/events');
    t.match(await execOf(agent.apiUrl, mShop), { namespace: 'shop', pod: shop.podName }, 'the shop exec is delivered with its pod');
    await eventually(async () => (await excluded('pod')) === before.pod + 1, 'excluded{reason="pod"} to count the probe exec');
    t.equal(await excluded('namespace'), before.namespace + 1, 'execwatch_events_excluded_total{reason="namespace"} counts the kube-system exec');
    t.equal(await execOf(agent.apiUrl, mSystem), undefined, 'the kube-system exec is not delivered');
    t.equal(await execOf(agent.apiUrl, mProbe), undefined, 'the probe=true pod\'s exec is not delivered');
    t.equal(await late(), before.late, 'both were dropped in the kernel (none reached the agent)');
    t.ok((await excluded('host')) > 0, 'host execs (this test runner\'s, to begin with) are counted under reason="host"');
  });

  await t.test('a container created a moment ago is out of scope from its first exec, in the kernel', async (t) => {
    const before = { namespace: await excluded('namespace'), late: await late() };
    const fresh = join(dirname(system.cgroup), `cri-containerd-${randomBytes(32).toString('hex')}.scope`);
    makeCgroup(fresh);
    const m = marker('fresh');
    await runInCgroup(fresh, m);
    await eventually(async () => (await excluded('namespace')) === before.namespace + 1, 'the new container\'s exec counted as excluded');
    t.equal(await late(), before.late, 'dropped by the kernel: the pod\'s cgroup covers the new container');
    t.equal(await execOf(agent.apiUrl, m), undefined, 'not delivered');
  });

  await t.test('a pod created while the agent runs is in scope, or out of it, from its very first exec', async (t) => {
    const newShop = container('newshop', containerd, 'containerd');
    const newSystem = container('newsystem', containerd, 'containerd');
    const before = { namespace: await excluded('namespace'), late: await late() };
    // The pods and their cgroups appear together, and each runs at once: the kernel table cannot
    // know them yet, so this is the path where the agent judges.
    api.addPod(newShop.pod());
    api.addPod(podIn(newSystem, 'kube-system'));
    const [mShop, mSystem] = [marker('newshop'), marker('newsystem')];
    await Promise.all([runInCgroup(newShop.cgroup, mShop), runInCgroup(newSystem.cgroup, mSystem)]);
    await eventually(async () => (await execOf(agent.apiUrl, mShop)) !== undefined, 'the new shop pod\'s first exec in /api/events');
    t.match(await execOf(agent.apiUrl, mShop), { namespace: 'shop', pod: newShop.podName, argv: ['true', mShop] }, 'the new shop pod\'s first exec is delivered with its pod');
    // Either the kernel dropped the exec (and so reports no exit), or its table lagged and the
    // agent dropped the exec and then, once it came, the exit: both counted, as late ones.
    await eventually(async () => {
      const counted = { excluded: (await excluded('namespace')) - before.namespace, late: (await late()) - before.late };
      return (counted.late === 0 && counted.excluded === 1) || (counted.late === 2 && counted.excluded === 2);
    }, 'the new kube-system pod\'s first exec, and its exit if the exec got through the kernel, counted as excluded');
    t.equal(await execOf(agent.apiUrl, mSystem), undefined, 'the new kube-system pod\'s first exec is not delivered');
  });

  await t.test('an excluded exec costs a fraction of an included one in the kernel: no argv is read', async (t) => {
    const stats = '/proc/sys/kernel/bpf_stats_enabled';
    const was = readFileSync(stats, 'utf8');
    writeFileSync(stats, '1\n');
    t.teardown(() => writeFileSync(stats, was));
    const ids = agent.programIds();
    const N = 500;
    // What an excluded exec is spared is the argv read and the record: with 32 KiB of argv (the
    // largest budget) that is most of an included exec's cost, whatever the machine's load.
    const long = ['x'.repeat(32_000), marker('cost')];
    const r0 = progRuns(process.pid, ids);
    await burstIn(system.cgroup, N, long);
    const r1 = progRuns(process.pid, ids);
    await burstIn(shop.cgroup, N, long);
    const r2 = progRuns(process.pid, ids);
    const out = delta(r0, r1);
    const inc = delta(r1, r2);
    // Every other exec on the machine meanwhile is a host process's, excluded too: the first
    // phase's average is the excluded cost; the second phase's own execs are what is left once
    // the others are taken out at that cost.
    const excludedNs = out.ns / out.runs;
    const includedNs = (inc.ns - (inc.runs - N) * excludedNs) / N;
    t.comment(`per excluded exec ${excludedNs.toFixed(0)} ns over ${out.runs} execs (${JSON.stringify(out.byProgram)}); per included exec ${includedNs.toFixed(0)} ns (${N} of ${inc.runs} execs; ${JSON.stringify(inc.byProgram)})`);
    t.ok(out.runs >= N && inc.runs >= N, 'the bursts ran');
    t.ok(excludedNs < includedNs / 5, `an excluded exec costs under a fifth of an included one (${excludedNs.toFixed(0)} ns against ${includedNs.toFixed(0)} ns)`);
  });

  await t.test('delivered + lost + excluded + throttled = what the kernel saw', async (t) => {
    // Host execs go on meanwhile: the sums agree in a scrape between two of them.
    await eventually(async () => {
      // One scrape: the four families at the same moment.
      const text = await (await fetch(`${agent.metricsUrl}/metrics`)).text();
      const sum = (name: string, keep: (labels: string) => boolean = () => true) =>
        [...text.matchAll(new RegExp(`^${name}(?:\\{(.*)\\})? (\\S+)$`, 'gm'))].filter((m) => keep(m[1] ?? '')).reduce((n, m) => n + Number(m[2]), 0);
      // Execs and the exits of processes whose exec was delivered.
      const delivered = sum('execwatch_execs_total') + sum('execwatch_exits_total');
      // The stages past the kernel's emit; state_map_full and process_map_full count no emitted event.
      const lost = sum('execwatch_events_lost_total', (labels) => !/state_map_full|process_map_full/.test(labels));
      const excl = sum('execwatch_events_excluded_total');
      const throttled = sum('execwatch_events_throttled_total');
      const kernel = sum('execwatch_kernel_events_total');
      return delivered + lost + excl + throttled === kernel;
    }, 'the counts to add up', 20_000);
    t.pass('they add up');
  });
});

// In this file, after the scope test: the bursts there would be throttled by this agent too.
t.test('fairness: a pod re-execing in a loop is throttled, and another pod\'s exec still gets through', kernelTest(), async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  const container = cgroupArea(t, NODE);
  // Made before the agent starts: a test area with no kubepods below it yet would be a host
  // subtree to its first scan, and --exclude-host would drop the loop's first execs until the next.
  const loop = container('loop', containerd, 'containerd');
  const quiet = container('quiet', containerd, 'containerd');
  const RATE = 20;
  const agent = await startAgent(
    configOf([
      '--kubeconfig', kubeconfig,
      '--node-name', NODE,
      '--metrics-address', '127.0.0.1:0',
      '--api-address', '127.0.0.1:0',
      '--enrich-wait', '5s',
      '--recent-events', '200000',
      '--log-level', 'warn',
      // Host processes (this test runner's, other tests') are left out before the rate is applied.
      '--exclude-host',
      '--cgroup-rate', `${RATE}/s`,
      '--cgroup-burst', String(RATE),
    ]),
    { binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test' },
  );
  t.teardown(() => agent.close());
  await eventually(() => ready(agent.metricsUrl), '/readyz to report the pod cache synced');
  api.addPod(loop.pod());
  api.addPod(quiet.pod());
  await eventually(async () => (await podsGauge(agent.metricsUrl)) >= 2, 'execwatch_pods to count the two pods');
  const throttled = () => sampleValue(agent.metricsUrl, 'execwatch_events_throttled_total', { namespace: NAMESPACE, pod: loop.podName });
  t.ok(Number.isNaN(await sampleValue(agent.metricsUrl, 'execwatch_events_throttled_total', { namespace: NAMESPACE, pod: quiet.podName })), 'no throttled series for a pod never throttled');
  const stream = await openSse(`${agent.apiUrl}/api/events/stream?kind=throttle`);
  t.teardown(() => stream.close());

  // 400 execs as fast as they go (several hundred a second: over ten times the rate), and meanwhile
  // one exec in the other pod.
  const N = 400;
  const mLoop = marker('loop');
  const mQuiet = marker('quiet');
  const storm = burstIn(loop.cgroup, N, [mLoop]);
  await new Promise((r) => setTimeout(r, 200));
  await runInCgroup(quiet.cgroup, mQuiet);
  await storm;
  await eventually(async () => (await execOf(agent.apiUrl, mQuiet)) !== undefined, 'the quiet pod\'s exec in /api/events');
  t.match(await execOf(agent.apiUrl, mQuiet), { pod: quiet.podName }, 'the quiet pod\'s exec is delivered while the other loops');

  // The loop's execs: the N of /usr/bin/true and the helper's own exec in its cgroup.
  const execs = N + 1;
  const deliveredOfLoop = async () => (await events(agent.apiUrl, { pod: loop.podName, limit: '10000' })).length;
  await eventually(async () => (await deliveredOfLoop()) + (await throttled()) === execs, 'delivered + throttled{pod} to account for every exec of the loop', 15_000).catch(async (err) => {
    t.comment(`delivered ${await deliveredOfLoop()}, throttled ${await throttled()}, lost ${JSON.stringify(await sampleValue(agent.metricsUrl, 'execwatch_events_lost_total', { stage: 'ringbuf_full' }))}, unresolved ${(await events(agent.apiUrl, { q: mLoop, limit: '10000' })).filter((e) => e.pod === null).length}`);
    throw err;
  });
  const delivered = await deliveredOfLoop();
  const suppressed = await throttled();
  t.comment(`${delivered} of ${execs} delivered, ${suppressed} throttled`);
  t.ok(delivered >= RATE && delivered < execs / 2, `the loop was cut to about its rate: ${delivered} of ${execs} delivered`);

  // An episode ends a second after its last throttled exec, found by the agent (a loop stalled for
  // over a second on a busy machine makes two episodes: every start gets its stop all the same).
  const ofLoop = (f: SseFrame) => f.event === 'throttle' && (JSON.parse(f.data as string) as ThrottleEvent).pod === loop.podName;
  const loopEpisodes = () => stream.frames.filter(ofLoop).map((f) => JSON.parse(f.data as string) as ThrottleEvent);
  await eventually(() => loopEpisodes().filter((e) => e.phase === 'stop').reduce((n, e) => n + e.suppressed, 0) === suppressed, 'the stops to account for every throttled exec', 15_000);
  const episodes = loopEpisodes();
  const starts = episodes.filter((e) => e.phase === 'start');
  const stops = episodes.filter((e) => e.phase === 'stop');
  t.comment(`throttle events of the loop: ${episodes.map((e) => `${e.phase} ${e.suppressed}`).join(', ')}`);
  t.equal(starts.length, stops.length, 'every start has its stop');
  t.ok(starts.length >= 1, 'the loop went over its rate: a start');
  t.match(starts[0], { kind: 'throttle', phase: 'start', node: NODE, namespace: NAMESPACE, pod: loop.podName, container: 'app', attribution: 'pod', suppressed: 0 }, 'the start names the loop\'s pod and container, from the kernel\'s record');
  t.ok((starts[0] as ThrottleEvent).pid > 0, 'and the process whose exec was the first throttled');
  t.equal(stops.reduce((n, e) => n + e.suppressed, 0) + delivered, execs, 'suppressed (the stops\' counts) + delivered = the loop\'s execs');
  t.match(stops[0], { phase: 'stop', since: (starts[0] as ThrottleEvent).time, pod: loop.podName }, 'the stop carries its start\'s time and pod');
  t.equal(stream.frames.filter((f) => f.event === 'throttle').length, episodes.length, 'no throttle event of another pod (the quiet one stayed under its rate)');
  const listed = (await events(agent.apiUrl, { kind: 'throttle', pod: loop.podName })) as unknown as ThrottleEvent[];
  t.same(listed.map((e) => e.seq).sort((a, b) => a - b), episodes.map((e) => e.seq), 'GET /api/events?kind=throttle lists them too');
  t.notOk((await events(agent.apiUrl, { pod: loop.podName, limit: '10000' })).some((e) => (e.kind as string) !== 'exec'), 'and without kind= it lists execs only');

  await eventually(async () => {
    const text = await (await fetch(`${agent.metricsUrl}/metrics`)).text();
    const sum = (name: string, keep: (labels: string) => boolean = () => true) =>
      [...text.matchAll(new RegExp(`^${name}(?:\\{(.*)\\})? (\\S+)$`, 'gm'))].filter((m) => keep(m[1] ?? '')).reduce((n, m) => n + Number(m[2]), 0);
    const lost = sum('execwatch_events_lost_total', (labels) => !/state_map_full|process_map_full/.test(labels));
    return sum('execwatch_execs_total') + sum('execwatch_exits_total') + lost + sum('execwatch_events_excluded_total') + sum('execwatch_events_throttled_total') === sum('execwatch_kernel_events_total');
  }, 'delivered + lost + excluded + throttled to equal what the kernel saw', 20_000);
  t.pass('delivered + lost + excluded + throttled = what the kernel saw');
});
