/**
 * The kubectl plugin on the real kernel: three real agents with different --node-name on different
 * loopback ports, each the agent pod of its "node" behind the API-server double, reached through
 * its WebSocket port-forward. One exec is seen by all three agents (they share this kernel), so it
 * must come back once per node, each with its node; an agent killed gives partial results.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, runPlugin, startPlugin } from './helpers/cluster.js';
import { startCommand, type RunningAgent } from './helpers/command.js';
import { ensureTracefs, kernelTest, marker } from './helpers/kernel.js';
import { events, kubeconfigFor } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

const NODES = ['node-1', 'node-2', 'node-3'] as const;

interface Printed {
  node: string;
  seq: number;
  filename: string;
  argv: string[];
}

t.test('kubectl execwatch events over three real agents', kernelTest(), async (t) => {
  ensureTracefs();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agents: RunningAgent[] = await Promise.all(NODES.map((node) => startCommand(['--node-name', node])));
  t.teardown(() => {
    for (const agent of agents) agent.child.kill('SIGTERM');
    return Promise.all(agents.map((agent) => agent.exited));
  });
  const podOf = (i: number) => addAgentPod(api, NODES[i] as string, { localPort: Number(new URL((agents[i] as RunningAgent).apiUrl).port) });
  // node-3's agent pod appears once `follow` runs: a node that joins later.
  podOf(0);
  podOf(1);
  const kubeconfig = kubeconfigFor(t, api);
  const trues = (text: string, mark: string) =>
    text.split('\n').filter((line) => line.includes(mark)).map((line) => JSON.parse(line) as Printed).filter((e) => e.filename === '/usr/bin/true');

  const follow = startPlugin(kubeconfig, ['follow', '-o', 'jsonl', '--comm', 'true']);
  // Stopped also when an assertion below throws: a running follow would keep this process alive.
  t.teardown(() => follow.stop());
  await eventually(() => api.portForwards === 2, 'follow streams from the two agents');
  podOf(2);
  await eventually(() => follow.stderr().includes('node node-3: agent pod execwatch-node-3 joined') && api.portForwards === 3, 'node-3 joined');
  const live = marker('follow');
  // An agent subscribes the stream a moment after its port-forward opens, and an exec before that
  // is not live for it: exec again (the same marker) until every node's stream has brought one.
  const nodesWith = (mark: string) => [...new Set(trues(follow.stdout(), mark).map((e) => e.node))].sort();
  await eventually(() => {
    spawnSync('/usr/bin/true', [live]);
    return nodesWith(live).length === 3;
  }, 'the new exec from each agent', 30_000, 250).catch((err: Error) => {
    throw new Error(`${err.message}; follow said: ${follow.stderr()}`);
  });
  t.same(nodesWith(live), [...NODES], 'follow delivers the new exec from each node, node-3 included');

  // Every stream drops (the API server restarts); an exec meanwhile comes with the resumed streams.
  api.dropPortForwards();
  await eventually(() => (follow.stderr().match(/reconnecting in 3s/g) ?? []).length === 3, 'each stream reports its drop');
  const missed = marker('resume');
  spawnSync('/usr/bin/true', [missed]);
  await eventually(() => trues(follow.stdout(), missed).length === 3, 'the exec made while disconnected', 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; follow said: ${follow.stderr()}`);
  });
  t.same(trues(follow.stdout(), missed).map((e) => e.node).sort(), [...NODES], 'resumed with Last-Event-ID: the exec made during the drop, once per node');
  t.match(follow.stderr(), /node node-1: stream resumed after event \d+/, 'the resume is reported');
  const stopped = await follow.stop();
  t.equal(stopped.code, 0, 'Ctrl-C ends follow with exit 0');
  const printed = trues(stopped.stdout, live).map((e) => `${e.node}/${e.seq}`);
  t.equal(new Set(printed).size, printed.length, `no event twice (${printed.length} of the live execs printed)`);

  const m = marker('plugin');
  spawnSync('/usr/bin/true', [m]);
  await eventually(async () => {
    const seen = await Promise.all(agents.map((agent) => events(agent.apiUrl, { q: m })));
    return seen.every((list) => list.some((e) => e.filename === '/usr/bin/true'));
  }, 'the marked exec on every agent');

  const json = await runPlugin(kubeconfig, ['events', '-q', m, '-o', 'json']);
  t.equal(json.code, 0, `every node answered (${json.stderr})`);
  const found = (JSON.parse(json.stdout) as { events: Printed[] }).events.filter((e) => e.filename === '/usr/bin/true');
  t.same(found.map((e) => e.node).sort(), [...NODES], 'the exec once per node, each with its node');
  t.ok(found.every((e) => e.argv[1] === m), 'each is the marked exec');

  const table = await runPlugin(kubeconfig, ['events', '-q', m, '--comm', 'true']);
  const rows = table.stdout.trimEnd().split('\n').slice(1);
  t.same(rows.map((row) => row.split(/\s+/)[1]).sort(), [...NODES], 'the table\'s NODE column names the three nodes');
  t.ok(rows.every((row) => row.includes(`true ${m}`)), 'with the argv');

  // One agent dies; the exec stays in the others' rings.
  agents[1]?.child.kill('SIGKILL');
  await agents[1]?.exited;
  const partial = await runPlugin(kubeconfig, ['events', '-q', m, '-o', 'json', '--timeout', '5s']);
  t.equal(partial.code, 3, 'exit 3: partial results');
  const body = JSON.parse(partial.stdout) as { events: Printed[]; failures: { node: string; reason: string }[] };
  t.same(body.events.filter((e) => e.filename === '/usr/bin/true').map((e) => e.node).sort(), ['node-1', 'node-3'], 'the living agents\' events still print');
  t.same(body.failures.map((f) => f.node), ['node-2'], 'the dead agent\'s node is named in the JSON');
  t.match(partial.stderr, /node node-2 \(pod execwatch-node-2\): port-forward to pod execwatch\/execwatch-node-2 port 9465: .*connection refused/, 'and on stderr, with why');
});
