// The whole agent on the real kernel, enriching from the API-server double: fake containers are
// real cgroup v2 directories named as each runtime names them, pods come from list+watch, and the
// result is checked where a user looks: /api/events, /metrics and the browse page.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent, type Agent } from '../src/agent.js';
import { launchChromium } from './helpers/chromium.js';
import { loadNativeBinding } from '../src/capture/native.js';
import type { ExecEvent } from '../src/events/schema.js';
import { startApiServer } from './helpers/apiserver.js';
import { ensureTracefs, execHelper, kernelTest, makeCgroup, marker, repoRoot } from './helpers/kernel.js';
import {
  cgroupArea, configOf, events, execOf, kubeconfigFor, NAMESPACE, podsGauge, ready, runInCgroup, sampleValue, samples, type FakeContainer, type Sample,
} from './helpers/kube.js';
import { eventually, type Test } from './helpers/poll.js';

const NODE = 'kube-e2e-node';
const GRACE_MS = 2000;

/**
 * Each runtime's cgroup path of a container, from the pod level down (the levels above are
 * named kubepods… too, but the kernel hands the agent only the leaf and its parent).
 * `runtime` is the prefix the kubelet puts on `containerID` in the pod status.
 */
const RUNTIMES = [
  {
    what: 'containerd, systemd driver',
    runtime: 'containerd',
    path: (uid: string, id: string) => ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`],
  },
  {
    what: 'containerd, cgroupfs driver',
    runtime: 'containerd',
    path: (uid: string, id: string) => ['kubepods', 'burstable', `pod${uid}`, id],
  },
  {
    what: 'CRI-O, systemd driver',
    runtime: 'cri-o',
    path: (uid: string, id: string) => ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `crio-${id}.scope`],
  },
  {
    what: 'CRI-O, cgroupfs driver',
    runtime: 'cri-o',
    path: (uid: string, id: string) => ['kubepods', 'besteffort', `pod${uid}`, `crio-${id}`],
  },
  {
    what: 'Docker (cri-dockerd), systemd driver',
    runtime: 'docker',
    path: (uid: string, id: string) => ['kubepods.slice', `kubepods-pod${uid.replaceAll('-', '_')}.slice`, `docker-${id}.scope`],
  },
  {
    what: 'Docker (cri-dockerd), cgroupfs driver',
    runtime: 'docker',
    path: (uid: string, id: string) => ['kubepods', `pod${uid}`, id],
  },
  {
    what: 'containerd in a kind node',
    runtime: 'containerd',
    path: (uid: string, id: string) => ['kubelet.slice', 'kubelet-kubepods.slice', `kubelet-kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`],
  },
  {
    // runc on cgroupfs given a systemd-style cgroupsPath makes the "slice:prefix:id" a directory.
    what: 'kubelet systemd driver with runc on cgroupfs (CRI-O, guaranteed QoS)',
    runtime: 'cri-o',
    path: (uid: string, id: string) => ['kubepods', `kubepods-pod${uid.replaceAll('-', '_')}.slice:crio:${id}`],
  },
] as const;

/**
 * The same driver mismatch with containerd and a QoS class: a 145-character leaf, the longest name
 * in use; the record keeps leaf names up to 255 bytes (EXECWATCH_CGROUP_LEAF_LEN).
 */
const OVERLONG = {
  what: 'kubelet systemd driver with runc on cgroupfs (containerd, besteffort QoS)',
  runtime: 'containerd',
  path: (uid: string, id: string) => ['kubepods', 'besteffort', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice:cri-containerd:${id}`],
} as const;

/** The execwatch_execs_total samples of one pod. */
async function execsOfPod(metricsUrl: string, pod: string): Promise<Sample[]> {
  return (await samples(metricsUrl, 'execwatch_execs_total')).filter((s) => s.labels.pod === pod);
}

/** What a user sees of an exec's pod, in the API and on /metrics. */
async function assertEnriched(t: Test, agent: Agent, c: FakeContainer, m: string): Promise<void> {
  const event = (await execOf(agent.apiUrl, m)) as ExecEvent;
  t.match(
    event,
    {
      namespace: NAMESPACE,
      pod: c.podName,
      podUid: c.uid,
      container: 'app',
      containerId: c.id,
      image: 'registry.example/app:1',
      imageId: `registry.example/app@sha256:${createHash('sha256').update('app').digest('hex')}`,
      workload: { kind: 'Deployment', name: c.deployment },
      node: NODE,
      argv: ['true', m],
      retval: 0,
      attribution: 'pod',
    },
    'the event names namespace, pod, container, its image and the Deployment',
  );
  const byPod = await events(agent.apiUrl, { namespace: NAMESPACE, pod: c.podName, container: 'app', image: 'registry.example/app' });
  t.same(byPod.map((e) => e.argv), [['true', m]], 'filtering /api/events by namespace, pod, container and image repository finds it');
  t.same(
    await execsOfPod(agent.metricsUrl, c.podName),
    [{ labels: { namespace: NAMESPACE, workload: `Deployment/${c.deployment}`, pod: c.podName, container: 'app', origin: 'workload', result: 'success' }, value: 1 }],
    'execwatch_execs_total counts it under the pod labels',
  );
}

t.test('the agent enriches execs from the API server on the real kernel', kernelTest(), async (t) => {
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
      '--pod-grace-period', `${GRACE_MS}ms`,
      // Long enough for the late pod below (1 s) on a loaded machine.
      '--enrich-wait', '5s',
      // Other tests may exec in bursts on this machine meanwhile: keep ours in the ring.
      '--recent-events', '200000',
      '--log-level', 'warn',
    ]),
    { binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test' },
  );
  t.teardown(() => agent.close());
  await eventually(() => ready(agent.metricsUrl), '/readyz to report the pod cache synced');

  t.test('every runtime layout resolves to its pod and workload', async (t) => {
    for (const layout of RUNTIMES) {
      await t.test(layout.what, async (t) => {
        const c = container(layout.runtime === 'cri-o' ? 'crio' : layout.runtime, layout.path, layout.runtime);
        const pods = await podsGauge(agent.metricsUrl);
        api.addPod(c.pod());
        // The pod is known before the exec: this is the path without waiting.
        await eventually(async () => (await podsGauge(agent.metricsUrl)) === pods + 1, 'execwatch_pods to count the new pod');
        const m = marker('runtime');
        await runInCgroup(c.cgroup, m);
        await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events');
        await assertEnriched(t, agent, c, m);
      });
    }
  });

  t.test('a pod that names a cgroup after another pod\'s container does not run as that pod', async (t) => {
    const victim = container('vault', RUNTIMES[0].path, 'containerd');
    const attacker = container('shell', RUNTIMES[0].path, 'containerd');
    api.addPod(victim.pod());
    api.addPod(attacker.pod());
    // A pod allowed to write cgroupfs makes a directory named after the victim's container:
    // beside its own container in its pod's slice, and inside its own container's cgroup.
    const forged = [
      ['in the attacker pod\'s slice', join(dirname(attacker.cgroup), basename(victim.cgroup))],
      ['inside the attacker\'s container', join(attacker.cgroup, basename(victim.cgroup))],
    ] as const;
    const conflicts = await sampleValue(agent.metricsUrl, 'execwatch_enrichment_total', { result: 'conflict' });
    const markers: string[] = [];
    for (const [what, cgroup] of forged) {
      makeCgroup(cgroup);
      const m = marker('forged');
      markers.push(m);
      await runInCgroup(cgroup, m);
      await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events');
      t.match(
        await execOf(agent.apiUrl, m),
        { containerId: victim.id, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'conflict', cgroup: basename(cgroup) },
        `${what}: flagged as a conflict, named after neither pod`,
      );
    }
    t.equal(await sampleValue(agent.metricsUrl, 'execwatch_enrichment_total', { result: 'conflict' }), conflicts + 2, 'execwatch_enrichment_total{result="conflict"} counts both');
    const listed = (await events(agent.apiUrl, { attribution: 'conflict', limit: '10000' })).map((e) => e.argv[1]);
    t.same(markers.filter((m) => listed.includes(m)), markers, '?attribution=conflict lists both');
    t.same(await execsOfPod(agent.metricsUrl, victim.podName), [], 'nothing counted under the victim pod');
    const m = marker('victim');
    await runInCgroup(victim.cgroup, m);
    await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the victim\'s own exec in /api/events');
    await assertEnriched(t, agent, victim, m);
  });

  t.test(`${OVERLONG.what}: a 145-character cgroup name`, async (t) => {
    const c = container('containerd', OVERLONG.path, OVERLONG.runtime);
    api.addPod(c.pod());
    const m = marker('overlong');
    await runInCgroup(c.cgroup, m);
    await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events');
    const event = (await execOf(agent.apiUrl, m)) as ExecEvent;
    t.equal(event.cgroup, basename(c.cgroup), 'the event carries the whole leaf name');
    t.equal(event.cgroupTruncated, false, 'not marked truncated');
    t.equal(event.containerId, c.id, 'the container id is read from it');
    t.equal(event.pod, c.podName, 'and the exec is shown with its pod');
  });

  t.test('a container whose pod appears 1 s after its first exec is still enriched', async (t) => {
    const c = container('late', RUNTIMES[0].path, 'containerd');
    const m = marker('late');
    await runInCgroup(c.cgroup, m);
    // The pod object reaches the API server only after the container has started execing.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.equal(await execOf(agent.apiUrl, m), undefined, 'the exec waits for its pod instead of being shown without one');
    const addedAt = Date.now();
    api.addPod(c.pod());
    await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events once its pod is known');
    const event = (await execOf(agent.apiUrl, m)) as ExecEvent;
    t.ok(Date.parse(event.time) <= addedAt - 900, `the exec (${event.time}) came ~1 s before its pod (${new Date(addedAt).toISOString()})`);
    await assertEnriched(t, agent, c, m);
  });

  t.test('a pod whose status names its container only later is enriched with the container', async (t) => {
    const c = container('starting', RUNTIMES[1].path, 'containerd');
    api.addPod(c.pod(false));
    const m = marker('starting');
    await runInCgroup(c.cgroup, m);
    await new Promise((resolve) => setTimeout(resolve, 500));
    api.updatePod(c.pod(true));
    await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events');
    await assertEnriched(t, agent, c, m);
  });

  t.test('a deleted pod keeps its series for the grace period, then they disappear', async (t) => {
    const c = container('gone', RUNTIMES[2].path, 'cri-o');
    api.addPod(c.pod());
    const m = marker('gone');
    await runInCgroup(c.cgroup, m);
    await eventually(async () => (await execsOfPod(agent.metricsUrl, c.podName)).length === 1, 'the pod series on /metrics');
    const pods = await podsGauge(agent.metricsUrl);
    const deletedAt = Date.now();
    api.deletePod(NAMESPACE, c.podName);
    await eventually(async () => (await podsGauge(agent.metricsUrl)) === pods - 1, 'execwatch_pods to drop the deleted pod');
    // The grace period starts when the agent sees the deletion, which the gauge has just shown
    // (within one 50 ms poll): the series must still be there.
    t.equal((await execsOfPod(agent.metricsUrl, c.podName)).length, 1, 'the series stays within the grace period');
    await eventually(async () => (await execsOfPod(agent.metricsUrl, c.podName)).length === 0, 'the series to leave /metrics', GRACE_MS + 8000);
    t.ok(Date.now() - deletedAt >= GRACE_MS, `gone after the ${GRACE_MS} ms grace period (${Date.now() - deletedAt} ms)`);
    const event = (await execOf(agent.apiUrl, m)) as ExecEvent;
    t.equal(event.pod, c.podName, 'the recorded event still names the deleted pod');
  });

  t.test('the browse page shows the pod of an exec', async (t) => {
    const c = container('page', RUNTIMES[3].path, 'cri-o');
    api.addPod(c.pod());
    const m = marker('page');
    // The exec may come before the informer delivers the pod: it then waits for it.
    await runInCgroup(c.cgroup, m);
    await eventually(async () => (await execOf(agent.apiUrl, m)) !== undefined, 'the exec in /api/events');
    const event = (await execOf(agent.apiUrl, m)) as ExecEvent;

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${agent.apiUrl}/?pod=${encodeURIComponent(c.podName)}`);
    const row = page.locator(`tr[data-seq="${event.seq}"]`);
    await row.waitFor();
    t.equal(await row.locator('td.where').textContent(), `${NAMESPACE}/${c.podName}/app`, 'namespace/pod/container shown');
    t.equal(await row.locator('td.where').getAttribute('title'), `Deployment/${c.deployment}`, 'the workload on hover');
    t.equal(await row.locator('td.argv').textContent(), `true ${m}`, 'the exec’s argv');
    t.equal(await page.locator('#events tbody tr').count(), 1, 'only that pod’s exec under its pod filter');
    t.same(errors, [], 'no page errors');
  });
});

t.test('execwatch with --kubeconfig at the double shows a fake container’s pod', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const node = 'kube-e2e-cli';
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  const c = cgroupArea(t, node)('cli', RUNTIMES[0].path, 'containerd');
  api.addPod(c.pod());

  const child = spawn(
    process.execPath,
    [...process.execArgv, join(repoRoot, 'src', 'main.ts'), '--kubeconfig', kubeconfig, '--node-name', node,
      '--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', '--recent-events', '200000'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await eventually(async () => /events\s+http:\/\//.test(err) || child.exitCode !== null, `the start-up lines (${err})`, 30_000);
  const metricsUrl = /metrics\s+(http:\/\/\S+)\/metrics/.exec(err)?.[1];
  const apiUrl = /events\s+(http:\/\/\S+?)\/\s/.exec(err)?.[1];
  if (metricsUrl === undefined || apiUrl === undefined) throw new Error(`execwatch did not start (exit ${child.exitCode}): ${err}`);
  await eventually(() => ready(metricsUrl), '/readyz once the pods are listed');

  const m = marker('cli');
  await runInCgroup(c.cgroup, m);
  await eventually(async () => (await execOf(apiUrl, m)) !== undefined, 'the exec in /api/events');
  t.match(
    await execOf(apiUrl, m),
    { namespace: NAMESPACE, pod: c.podName, container: 'app', containerId: c.id, workload: { kind: 'Deployment', name: c.deployment }, node },
    '/api/events shows the pod of the exec',
  );
  t.same(
    await execsOfPod(metricsUrl, c.podName),
    [{ labels: { namespace: NAMESPACE, workload: `Deployment/${c.deployment}`, pod: c.podName, container: 'app', origin: 'workload', result: 'success' }, value: 1 }],
    '/metrics counts it under the pod',
  );
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exit 0');
});
