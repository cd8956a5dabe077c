// The whole agent on the real kernel while its API server (the double) is away: unreachable at
// start, then gone mid-run and back. Capture, /metrics and /api/events must not depend on it; the
// pod cache must catch up without losing or duplicating pods. Finer cases (410, stalled watches,
// token rotation) are proven at the pod cache level in podcache.test.ts and kubeconfig.test.ts.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { parseConfig } from '../src/config.js';
import type { ExecEvent } from '../src/events/types.js';
import { makePod, startApiServer } from './helpers/apiserver.js';
import { cgroup2Root, ensureTracefs, execHelper, kernelTest, makeCgroup, marker } from './helpers/kernel.js';

const NODE = 'kube-faults-node';

/** The type of a subtest's `t` (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The value of one sample of /metrics, by name and exact label text (`{a="b"}` or ''). */
async function sample(metricsUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

/** A fake container of a pod on NODE: a real cgroup v2 directory named as containerd names it. */
function fakeContainer(t: Test, label: string) {
  const uid = randomUUID();
  const id = randomBytes(32).toString('hex');
  const top = join(cgroup2Root(), marker(`faults-${label}`));
  const cgroup = join(top, 'kubepods', 'besteffort', `pod${uid}`, id);
  makeCgroup(cgroup);
  t.teardown(() => {
    for (let dir = cgroup; dir.length >= top.length; dir = join(dir, '..')) rmdirSync(dir);
  });
  const name = `${label}-${randomBytes(3).toString('hex')}`;
  const pod = makePod({ name, namespace: 'shop', uid, nodeName: NODE, containers: [{ name: 'app', id }] });
  /** Execs /usr/bin/true in the container; resolves to its event once /api/events shows it. */
  const exec = async (apiUrl: string): Promise<ExecEvent> => {
    const m = marker(label);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(execHelper(), ['cgroup', cgroup, '/usr/bin/true', 'true', m], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exec-helper exited ${code}`))));
    });
    let found: ExecEvent | undefined;
    await eventually(async () => {
      const res = await fetch(`${apiUrl}/api/events?${new URLSearchParams({ q: m })}`);
      found = ((await res.json()) as { events: ExecEvent[] }).events.find((e) => e.filename === '/usr/bin/true');
      return found !== undefined;
    }, `the exec ${m} in /api/events`);
    return found as ExecEvent;
  };
  return { name, id, pod, exec };
}

t.test('the agent without its API server: unreachable at start, then gone mid-run and back', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const dir = mkdtempSync(join(tmpdir(), 'execwatch-kubeconfig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = api.kubeconfigPath(dir);
  const first = fakeContainer(t, 'first');
  const second = fakeContainer(t, 'second');
  const third = fakeContainer(t, 'third');
  await api.stopListening();

  const parsed = parseConfig(['--kubeconfig', kubeconfig, '--node-name', NODE, '--metrics-address', '127.0.0.1:0',
    '--api-address', '127.0.0.1:0', '--enrich-wait', '300ms', '--recent-events', '200000', '--log-level', 'warn'], {});
  if (parsed.kind !== 'run') throw new Error('not a run command');
  const agent = await startAgent(parsed.config, {
    binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test',
  });
  t.teardown(() => agent.close());

  // Unreachable at start.
  let readyz = { status: 0, body: { reasons: [] as string[] } };
  await eventually(async () => {
    const res = await fetch(`${agent.metricsUrl}/readyz`);
    readyz = { status: res.status, body: (await res.json()) as { reasons: string[] } };
    return /ECONNREFUSED/.test(readyz.body.reasons.join());
  }, 'the refused connection in /readyz');
  t.equal(readyz.status, 503, '/readyz: not ready');
  t.match(readyz.body, { reasons: [new RegExp(`^pod watch: connect ECONNREFUSED 127\\.0\\.0\\.1:${api.port} \\(retrying in [\\d.]+m?s\\)$`)] },
    'saying the API server refuses connections and when it is tried again');
  const early = await first.exec(agent.apiUrl);
  t.match(early, { containerId: first.id, pod: null, namespace: null }, 'capture runs: the event carries its container id, no pod');
  t.ok(await sample(agent.metricsUrl, 'execwatch_enrichment_total{result="unresolved"}') >= 1, '/metrics counts it as unresolved');
  await eventually(async () => (await sample(agent.metricsUrl, 'execwatch_kube_watch_restarts_total')) >= 1, 'a restart counted');

  api.addPod(first.pod);
  api.addPod(second.pod);
  await api.listen();
  await eventually(async () => (await fetch(`${agent.metricsUrl}/readyz`)).status === 200, '/readyz once the pods are listed');
  t.match(await first.exec(agent.apiUrl), { pod: first.name, container: 'app', containerId: first.id }, 'enriched once the API server is back');

  // Gone mid-run.
  await api.stopListening();
  const restarts = await sample(agent.metricsUrl, 'execwatch_kube_watch_restarts_total');
  api.addPod(third.pod);
  api.addPod(makePod({ name: 'no-container-yet', namespace: 'shop', nodeName: NODE }));
  api.deletePod('shop', second.name);
  await eventually(async () => (await sample(agent.metricsUrl, 'execwatch_kube_watch_restarts_total')) > restarts, 'restarts while it is gone');
  t.match(await first.exec(agent.apiUrl), { pod: first.name, container: 'app' }, 'meanwhile, execs are enriched from the cache');
  t.equal((await fetch(`${agent.metricsUrl}/readyz`)).status, 200, 'and the agent stays ready');
  t.equal(await sample(agent.metricsUrl, 'execwatch_pods'), 2, 'execwatch_pods: the last known pods');

  await api.listen();
  await eventually(async () => (await sample(agent.metricsUrl, 'execwatch_pods')) === 3,
    'the changes made meanwhile: two pods added, one deleted', 30_000);
  t.equal(api.watchers, 1, 'watching again');
  t.match(await third.exec(agent.apiUrl), { pod: third.name, container: 'app', containerId: third.id }, 'the pod added meanwhile is known');
  t.match(await second.exec(agent.apiUrl), { pod: second.name }, 'the pod deleted meanwhile still resolves for late events');
});
