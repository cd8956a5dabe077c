// The whole agent on the real kernel while its API server (the double) is away: unreachable at
// start, then gone mid-run and back. Capture, /metrics and /api/events must not depend on it; the
// pod cache must catch up without losing or duplicating pods. Finer cases (410, stalled watches,
// token rotation) are proven at the pod cache level in podcache.test.ts and kubeconfig.test.ts.
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makePod, startApiServer } from './helpers/apiserver.js';
import { ensureTracefs, execHelper, kernelTest, marker } from './helpers/kernel.js';
import {
  cgroupArea, configOf, execOf, kubeconfigFor, NAMESPACE, podsGauge, ready, runInCgroup, sampleValue, type FakeContainer,
} from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

const NODE = 'kube-faults-node';
/** A containerd container of a best-effort pod, cgroupfs driver. */
const LAYOUT = (uid: string, id: string) => ['kubepods', 'besteffort', `pod${uid}`, id];
/** Generous: the pod cache backs off between tries while the API server is away. */
const WAIT_MS = 20_000;

/** Execs /usr/bin/true in container `c`; resolves to its event once /api/events shows it. */
async function execIn(c: FakeContainer, apiUrl: string): Promise<ExecEvent> {
  const m = marker(c.deployment);
  await runInCgroup(c.cgroup, m);
  let found: ExecEvent | undefined;
  await eventually(async () => (found = await execOf(apiUrl, m)) !== undefined, `the exec ${m} in /api/events`, WAIT_MS);
  return found as ExecEvent;
}

const restarts = (metricsUrl: string) => sampleValue(metricsUrl, 'execwatch_kube_watch_restarts_total');

t.test('the agent without its API server: unreachable at start, then gone mid-run and back', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  const container = cgroupArea(t, NODE);
  const first = container('first', LAYOUT, 'containerd');
  const second = container('second', LAYOUT, 'containerd');
  const third = container('third', LAYOUT, 'containerd');
  await api.stopListening();

  const config = configOf(['--kubeconfig', kubeconfig, '--node-name', NODE, '--metrics-address', '127.0.0.1:0',
    '--api-address', '127.0.0.1:0', '--enrich-wait', '300ms', '--recent-events', '200000', '--log-level', 'warn']);
  const agent = await startAgent(config, {
    binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test',
  });
  t.teardown(() => agent.close());

  // Unreachable at start.
  let readyz = { status: 0, body: { reasons: [] as string[] } };
  await eventually(async () => {
    const res = await fetch(`${agent.metricsUrl}/readyz`);
    readyz = { status: res.status, body: (await res.json()) as { reasons: string[] } };
    return /ECONNREFUSED/.test(readyz.body.reasons.join());
  }, 'the refused connection in /readyz', WAIT_MS);
  t.equal(readyz.status, 503, '/readyz: not ready');
  t.match(readyz.body, { reasons: [new RegExp(`^pod watch: connect ECONNREFUSED 127\\.0\\.0\\.1:${api.port} \\(retrying in [\\d.]+m?s\\)$`)] },
    'saying the API server refuses connections and when it is tried again');
  const early = await execIn(first, agent.apiUrl);
  t.match(early, { containerId: first.id, pod: null, namespace: null }, 'capture runs: the event carries its container id, no pod');
  t.ok(await sampleValue(agent.metricsUrl, 'execwatch_enrichment_total', { result: 'unresolved' }) >= 1, '/metrics counts it as unresolved');
  await eventually(async () => (await restarts(agent.metricsUrl)) >= 1, 'a restart counted', WAIT_MS);

  api.addPod(first.pod());
  api.addPod(second.pod());
  await api.listen();
  await eventually(() => ready(agent.metricsUrl), '/readyz once the pods are listed', WAIT_MS);
  t.match(await execIn(first, agent.apiUrl), { pod: first.podName, container: 'app', containerId: first.id }, 'enriched once the API server is back');

  // Gone mid-run.
  await api.stopListening();
  const before = await restarts(agent.metricsUrl);
  api.addPod(third.pod());
  api.addPod(makePod({ name: 'no-container-yet', namespace: NAMESPACE, nodeName: NODE }));
  api.deletePod(NAMESPACE, second.podName);
  await eventually(async () => (await restarts(agent.metricsUrl)) > before, 'restarts while it is gone', WAIT_MS);
  t.match(await execIn(first, agent.apiUrl), { pod: first.podName, container: 'app' }, 'meanwhile, execs are enriched from the cache');
  t.ok(await ready(agent.metricsUrl), 'and the agent stays ready');
  t.equal(await podsGauge(agent.metricsUrl), 2, 'execwatch_pods: the last known pods');

  await api.listen();
  await eventually(async () => (await podsGauge(agent.metricsUrl)) === 3,
    'the changes made meanwhile: two pods added, one deleted', 30_000);
  t.equal(api.watchers, 1, 'watching again');
  t.match(await execIn(third, agent.apiUrl), { pod: third.podName, container: 'app', containerId: third.id }, 'the pod added meanwhile is known');
  t.match(await execIn(second, agent.apiUrl), { pod: second.podName }, 'the pod deleted meanwhile still resolves for late events');
});
