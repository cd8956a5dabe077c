// The shipped Grafana dashboard against a real Prometheus scraping a real agent: after real execs
// in a fake pod, every query of every panel (variables substituted as Grafana does) returns
// data; and the dashboard is one Grafana imports as it is.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { parseConfig } from '../src/config/parse.js';
import { packageVersion } from '../src/package.js';
import { makePod, startApiServer } from './helpers/apiserver.js';
import { chartDir } from './helpers/helm.js';
import { cgroup2Root, execHelper, kernelTest, makeCgroup, marker, namespaceInit, waitFor } from './helpers/kernel.js';
import { startPrometheus, type Sample } from './helpers/prometheus.js';

interface DatasourceRef { type?: string; uid?: string }
interface Target { refId: string; expr: string; datasource?: DatasourceRef | string | null }
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: DatasourceRef | string | null;
  targets?: Target[];
  collapsed?: boolean;
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: DatasourceRef | string | null;
  includeAll?: boolean;
  allValue?: string;
  multi?: boolean;
}
interface Dashboard {
  id?: number | null;
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations?: { list: { datasource?: DatasourceRef | string | null; builtIn?: number }[] };
}

const dashboardFile = join(chartDir, 'dashboards', 'execwatch.json');
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** Every panel, those inside collapsed rows included. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Panel types Grafana ships (no plugin to install). */
const BUILTIN_PANELS = new Set(['row', 'stat', 'timeseries', 'table', 'gauge', 'bargauge', 'barchart', 'piechart', 'heatmap', 'text', 'logs', 'state-timeline']);

t.test('the dashboard imports into Grafana as it is', async (t) => {
  // chart.test.ts checks the ConfigMap carries this file, the variables' names and each panel's
  // queries; here: what Grafana's import and its sidecar need.
  t.match(dashboard.uid, /^[A-Za-z0-9_-]{1,40}$/, 'a uid Grafana accepts (at most 40 of A-Z a-z 0-9 _ -)');
  t.ok(dashboard.id === undefined || dashboard.id === null, 'no numeric id: an import would overwrite that dashboard');
  t.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion} has datasource references by uid (36+)`);
  t.ok(dashboard.title.length > 0, 'a title');

  const panels = allPanels(dashboard.panels);
  const ids = panels.map((p) => p.id);
  t.ok(ids.every((id) => Number.isInteger(id) && id > 0), 'every panel has a positive integer id');
  t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'panel ids are unique, rows and collapsed rows included');
  for (const p of panels) {
    t.ok(BUILTIN_PANELS.has(p.type), `${p.title}: panel type ${p.type} ships with Grafana`);
    const g = p.gridPos;
    t.ok(g && g.w >= 1 && g.h >= 1 && g.x >= 0 && g.y >= 0 && g.x + g.w <= 24, `${p.title}: gridPos inside the 24 columns`);
  }
  const top = dashboard.panels;
  for (const [i, a] of top.entries()) {
    for (const b of top.slice(i + 1)) {
      const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w
        && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
      t.notOk(overlap, `"${a.title}" and "${b.title}" do not overlap`);
    }
  }

  // The datasource variable everywhere: a dashboard naming one Prometheus breaks on every other Grafana.
  const dsVars = dashboard.templating.list.filter((v) => v.type === 'datasource');
  t.same(dsVars.map((v) => [v.name, v.query]), [['datasource', 'prometheus']], 'one datasource variable, of Prometheus data sources');
  for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
    t.same(v.datasource, DATASOURCE, `variable ${v.name} queries through $datasource`);
  }
  const names = dashboard.templating.list.map((v) => v.name);
  t.equal(new Set(names).size, names.length, 'variable names are unique');
  for (const p of panels.filter((p) => p.type !== 'row')) {
    t.same(p.datasource, DATASOURCE, `${p.title}: the panel uses $datasource`);
    const targets = p.targets ?? [];
    t.ok(targets.length > 0, `${p.title}: has a query`);
    const refIds = targets.map((x) => x.refId);
    t.equal(new Set(refIds).size, refIds.length, `${p.title}: refIds are unique`);
    for (const target of targets) t.same(target.datasource, DATASOURCE, `${p.title} ${target.refId}: the query uses $datasource`);
  }
  for (const p of panels.filter((p) => p.type === 'row')) {
    t.ok(p.datasource === undefined || p.datasource === null || JSON.stringify(p.datasource) === JSON.stringify(DATASOURCE), `row ${p.title}: no fixed datasource`);
    t.same(p.targets ?? [], [], `row ${p.title}: no queries`);
  }
  for (const a of dashboard.annotations?.list ?? []) {
    const builtin = a.builtIn === 1 && typeof a.datasource === 'object' && a.datasource?.type === 'grafana';
    t.ok(builtin || JSON.stringify(a.datasource) === JSON.stringify(DATASOURCE), 'annotations use $datasource or Grafana itself');
  }
});

// ---------------------------------------------------------------------------------------------
// Grafana's variable substitution, as far as the dashboard uses it.

/** Prometheus scrape interval of the test; the data source's "scrape interval" setting in Grafana. */
const SCRAPE_SECONDS = 1;
/**
 * Grafana's built-in variables for the dashboard's default range (now-1h) on a ~1,000 px wide
 * panel: $__interval is range/width rounded (here below the scrape interval, so the scrape
 * interval), $__rate_interval is max($__interval + scrape interval, 4 × scrape interval).
 */
const BUILTINS: Record<string, string> = {
  __interval: `${SCRAPE_SECONDS}s`,
  __interval_ms: String(SCRAPE_SECONDS * 1000),
  __rate_interval: `${Math.max(2 * SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)}s`,
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

/** A multi-value selection formatted as Grafana does for Prometheus: regex-escaped, alternatives in a group. */
function promRegex(values: readonly string[]): string {
  const escaped = values.map((v) => v.replace(/[\\^$*+?.()|[\]{}]/g, '\\$&'));
  return escaped.length === 1 ? (escaped[0] as string) : `(${escaped.join('|')})`;
}

/** Replaces `$name`, `${name}` and `[[name]]`; an unknown variable is an error, not left in. */
function interpolate(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string;
    const value = values[name] ?? BUILTINS[name];
    if (value === undefined) throw new Error(`${whole} in ${expr} is no variable of the dashboard nor a Grafana built-in`);
    return value;
  });
}

/** The label_values(<match>, <label>) query of a variable. */
function labelValuesQuery(v: Variable): { match: string; label: string } {
  const q = typeof v.query === 'string' ? v.query : v.query.query;
  const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
  if (!m) throw new Error(`variable ${v.name}: ${q} is not label_values(...)`);
  return { match: m[1] as string, label: m[2] as string };
}

const discard = () => new Writable({ write: (_chunk, _encoding, done) => done() });

t.test('a real Prometheus scraping the agent answers every dashboard query', kernelTest(), async (t) => {
  const helper = execHelper();
  const node = marker('promnode');

  // A pod of a Deployment on this node, with its container a real cgroup named as containerd names it.
  const containerId = randomBytes(32).toString('hex');
  const podUid = randomUUID();
  const api = await startApiServer();
  t.teardown(() => api.close());
  api.addPod(makePod({
    name: 'web-7d9f8-abcde', namespace: 'shop', uid: podUid, nodeName: node,
    containers: [{ name: 'app', id: containerId }],
    owner: { kind: 'ReplicaSet', name: 'web-7d9f8' }, labels: { 'pod-template-hash': '7d9f8' },
  }));
  const top = join(cgroup2Root(), marker('prom'));
  const podCgroup = join(top, `kubepods-burstable-pod${podUid.replaceAll('-', '_')}.slice`);
  const leaf = join(podCgroup, `cri-containerd-${containerId}.scope`);
  makeCgroup(leaf);
  // A second pod of the namespace whose container runs away in bursts, above --cgroup-rate's burst.
  const noisyContainerId = randomBytes(32).toString('hex');
  const noisyUid = randomUUID();
  api.addPod(makePod({
    name: 'worker-5c6d7-fghij', namespace: 'shop', uid: noisyUid, nodeName: node,
    containers: [{ name: 'loop', id: noisyContainerId }],
    owner: { kind: 'ReplicaSet', name: 'worker-5c6d7' }, labels: { 'pod-template-hash': '5c6d7' },
  }));
  const noisyPod = join(top, `kubepods-burstable-pod${noisyUid.replaceAll('-', '_')}.slice`);
  const noisyLeaf = join(noisyPod, `cri-containerd-${noisyContainerId}.scope`);
  makeCgroup(noisyLeaf);
  // Registered before the exec loops' teardowns, so it runs after them (teardowns run last-in first-out).
  t.teardown(() => [leaf, noisyLeaf, noisyPod, podCgroup, top].forEach((d) => rmdirSync(d)));

  // The web pod's loop makes 6 execs in its cgroup every 250 ms (24/s, 12 at once when two ticks
  // meet; failed execs count too): under the rate and the burst. The noisy pod's 31 at once every
  // second: over the burst, throttled.
  const parsed = parseConfig(
    [
      '--node-name', node, '--kubeconfig', api.kubeconfigPath(t.testdir()), '--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0',
      '--cgroup-rate', '40', '--cgroup-burst', '16',
    ],
    {},
  );
  if (parsed.kind !== 'run') throw new Error(`parseConfig returned ${parsed.kind}`);
  const agent = await startAgent(parsed.config, { binding: loadNativeBinding(), stdout: discard(), version: packageVersion() });
  t.teardown(() => agent.close());
  const ready = async () => (await fetch(`${agent.metricsUrl}/readyz`)).status === 200;
  for (let i = 0; !(await ready()); i++) {
    if (i > 100) throw new Error('the agent is not ready after 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }

  // The container's init, pid 1 of a pid namespace of its own, for sessions to enter (issue 18).
  const init = spawn(helper, ['cgroup', leaf, '/usr/bin/unshare', 'unshare', '--pid', '--fork', '--kill-child', '/bin/sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => init.kill('SIGKILL'));
  let initPid: number | undefined;
  await waitFor(() => (initPid = namespaceInit(leaf)) !== undefined, 'the container\'s init');

  // Execs in the pod (successful and failed, a session entering it as kubectl exec does, a
  // fileless one) and on the host, until the queries are done: rates over a few seconds need
  // increases inside their window.
  const m = marker('prom-exec');
  let running = 0;
  const execOnce = (file: string, args: string[]) => {
    running++;
    const child = spawn(file, args, { stdio: 'ignore' });
    child.once('error', () => running--);
    child.once('exit', () => running--);
  };
  const loop = setInterval(() => {
    execOnce(helper, ['cgroup', leaf, '/usr/bin/true', 'true', m]);
    execOnce(helper, ['cgroup', leaf, '/nonexistent/execwatch-missing', 'missing', m]);
    execOnce('/usr/bin/true', [m]);
    execOnce(helper, ['cgroup', leaf, '/usr/bin/nsenter', 'nsenter', '-t', String(initPid), '--pid', '--', '/usr/bin/true', 'session', m]);
    execOnce(helper, ['cgroup', leaf, helper, 'exec-helper', 'memfd', '/usr/bin/true', 'true', m]);
  }, 250);
  t.teardown(async () => {
    clearInterval(loop);
    await waitFor(() => running === 0, 'the exec loop to end');
  });

  // 30 execs of true at once (the loop is the shell's own), then sleep (an exec too) for a second:
  // 31 a second, of which the burst of 16 and what the rate refills meanwhile are let through.
  const script = `while :; do i=0; while [ $i -lt 30 ]; do /bin/true ${m}; i=$((i + 1)); done; sleep 1; done`;
  const noisy = spawn(helper, ['cgroup', noisyLeaf, '/bin/sh', 'sh', '-c', script], { stdio: 'ignore' });
  t.teardown(async () => {
    noisy.kill('SIGKILL');
    writeFileSync(join(noisyLeaf, 'cgroup.kill'), '1');
    await waitFor(() => readFileSync(join(noisyLeaf, 'cgroup.procs'), 'utf8') === '', 'the noisy container to end');
  });

  const prom = await startPrometheus(t.testdir(), {
    job: 'execwatch',
    targets: [new URL(agent.metricsUrl).host],
    // What the chart's ServiceMonitor (or the README's job) adds from __meta_kubernetes_pod_node_name.
    labels: { node },
    interval: `${SCRAPE_SECONDS}s`,
  });
  t.teardown(() => prom.close());

  const until = async (expr: string, what: string, ok: (s: Sample[]) => boolean) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const samples = await prom.query(expr);
      if (ok(samples)) return samples;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${expr} = ${JSON.stringify(samples)}); prometheus: ${prom.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const positive = (s: Sample[]) => s.length > 0 && s.every((x) => Number(x.value) > 0);
  await until('up{job="execwatch"}', 'the agent target up', (s) => s.length === 1 && s[0]?.value === '1');
  await until('sum(rate(execwatch_execs_total{namespace="shop", result="success"}[4s]))', 'successful execs in the pod', positive);
  await until('sum(rate(execwatch_execs_total{namespace="shop", result="failure"}[4s]))', 'failed execs in the pod', positive);
  await until('sum(rate(execwatch_execs_total{namespace="", result="success"}[4s]))', 'host execs', positive);
  // The helper that joins the pod's cgroup and fails to exec there ends in the pod with code 127.
  await until('sum(rate(execwatch_exits_total{namespace="shop", status="error"}[4s]))', 'failing processes in the pod', positive);
  await until('sum(increase(execwatch_events_throttled_total{namespace="shop", pod="worker-5c6d7-fghij"}[4s]))', 'throttled execs in the noisy pod', positive);

  // The variables as Grafana fills them: from their own label_values() queries.
  const variables = dashboard.templating.list.filter((v) => v.type === 'query');
  const resolve = async (selection: 'all' | 'first'): Promise<Record<string, string>> => {
    const values: Record<string, string> = { datasource: 'prometheus' };
    for (const v of variables) {
      const { match, label } = labelValuesQuery(v);
      const options = await prom.labelValues(interpolate(match, values), label);
      t.ok(options.length > 0, `variable ${v.name} (${selection}): label_values offers ${JSON.stringify(options)}`);
      if (selection === 'all') {
        t.ok(v.includeAll && v.allValue !== undefined, `variable ${v.name} has an All option`);
        values[v.name] = v.allValue ?? '.*';
      } else {
        values[v.name] = promRegex(options.slice(0, 1));
      }
    }
    return values;
  };
  const all = await resolve('all');
  const chosen = await resolve('first');
  t.equal(chosen.node, promRegex([node]), 'the node variable offers the agent node');
  t.equal(chosen.namespace, 'shop', 'the namespace variable offers the pod namespace (host processes have none)');

  for (const panel of allPanels(dashboard.panels)) {
    for (const target of panel.targets ?? []) {
      for (const [selection, values] of [['All', all], [`node=${node}, namespace=shop`, chosen]] as const) {
        const expr = interpolate(target.expr, values);
        const samples = await prom.query(expr);
        const what = `${panel.title} ${target.refId} (${selection}): ${expr}`;
        t.ok(samples.length > 0, `${what} returns ${samples.length} series`);
        t.ok(samples.every((s) => Number.isFinite(Number(s.value))), `${what} has numbers, not NaN (${samples.map((s) => s.value).join(', ')})`);
      }
    }
  }

  // The headline panels show the execs just made, not only zeros.
  const topPods = dashboard.panels.find((p) => p.title === 'Top pods by exec rate')?.targets?.[0]?.expr ?? 'missing';
  // Which of the two is on top depends on this machine's exec speed: the slower the noisy pod's
  // bursts, the more of each its rate limit lets through (2026-12-07, at 800 execs/s, the noisy one).
  const topRows = (await prom.query(interpolate(topPods, all))).filter((s) => Number(s.value) > 0);
  t.same(topRows.map((s) => `${s.metric.namespace}/${s.metric.pod}`).sort(), ['shop/web-7d9f8-abcde', 'shop/worker-5c6d7-fghij'], 'the top pods are the two that ran execs, each at a positive rate');
  const byWorkload = dashboard.panels.find((p) => p.title === 'Failed execs per second by workload')?.targets?.[0]?.expr ?? 'missing';
  const failed = await prom.query(interpolate(byWorkload, chosen));
  t.match(failed, [{ metric: { namespace: 'shop', workload: 'Deployment/web' } }], 'failed execs by workload name the Deployment');
  t.ok(positive(failed), 'at a positive rate');
  const sessionsPanel = dashboard.panels.find((p) => p.title === 'Exec sessions per pod')?.targets?.[0]?.expr ?? 'missing';
  const sessions = await prom.query(interpolate(sessionsPanel, chosen));
  t.match(sessions, [{ metric: { namespace: 'shop', pod: 'web-7d9f8-abcde', origin: 'exec' } }], 'exec sessions per pod name the pod the sessions entered');
  t.ok(positive(sessions), 'with sessions counted');
  const driftPanel = dashboard.panels.find((p) => p.title === 'Drift and fileless execs per pod')?.targets?.[0]?.expr ?? 'missing';
  const drift = await prom.query(interpolate(driftPanel, chosen));
  t.match(drift, [{ metric: { namespace: 'shop', pod: 'web-7d9f8-abcde', kind: 'fileless' } }], 'drift and fileless execs name the pod of the memfd exec');
  t.ok(positive(drift), 'with those execs counted');
  const ending = dashboard.panels.find((p) => p.title === 'Failing and signalled processes per second by workload')?.targets?.[0]?.expr ?? 'missing';
  const failing = await prom.query(interpolate(ending, chosen));
  t.match(failing, [{ metric: { namespace: 'shop', workload: 'Deployment/web', status: 'error' } }], 'failing processes by workload name the Deployment, status error');
  t.ok(positive(failing), 'at a positive rate');
  const throttledPanel = dashboard.panels.find((p) => p.title === 'Throttled execs per pod')?.targets?.[0]?.expr ?? 'missing';
  const throttled = await prom.query(interpolate(throttledPanel, chosen));
  t.equal(throttled.length, 1, 'one pod throttled: the web pod stays under the rate');
  t.match(throttled, [{ metric: { namespace: 'shop', pod: 'worker-5c6d7-fghij' } }], 'throttled execs name the noisy pod');
  t.ok(positive(throttled), 'with execs throttled');
});
