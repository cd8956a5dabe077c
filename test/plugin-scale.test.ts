/**
 * The plugin at scale: 200 simulated agents of 10,000 events each behind the API-server double.
 * `events --limit 1000` must print exactly the 1,000 newest of all 2,000,000, newest first (time
 * and memory are measured by bench/plugin.mjs, not here).
 */
import t from 'tap';
import { startApiServer } from './helpers/apiserver.js';
import { runPlugin, startSimulatedCluster } from './helpers/cluster.js';
import { kubeconfigFor } from './helpers/kube.js';

const NODES = 200;
const PER_NODE = 10_000;
const LIMIT = 1000;

t.test(`events --limit ${LIMIT} over ${NODES} nodes of ${PER_NODE} events`, async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const cluster = await startSimulatedCluster(api, NODES, PER_NODE);
  t.teardown(() => cluster.close());
  const kubeconfig = kubeconfigFor(t, api);

  const run = await runPlugin(kubeconfig, ['events', '--limit', String(LIMIT), '-o', 'jsonl', '--timeout', '60s']);
  t.equal(run.code, 0, `every node answered (${run.stderr.slice(0, 500)})`);
  const printed = run.stdout.trimEnd().split('\n');
  // The newest 1,000 of all are among each node's newest 1,000: sort those.
  const all: { time: string; text: string }[] = [];
  for (let i = 0; i < NODES; i += 1) for (const text of cluster.newest(i, LIMIT)) all.push({ time: (JSON.parse(text) as { time: string }).time, text });
  all.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  t.equal(printed.length, LIMIT, `${LIMIT} events printed`);
  t.ok(printed.every((line, i) => line === all[i]?.text), 'exactly the newest of all nodes, newest first, as the agents sent them');
  t.ok(new Set(printed.map((line) => (JSON.parse(line) as { node: string }).node)).size > 100, 'from most nodes');
});
