/**
 * `kubectl execwatch events` against simulated agents behind the API-server double: the agents
 * found by the chart's labels, reached through the double's port-forward, their answers merged
 * newest first with a NODE column; tokens from the Secret or --token-file; nodes that fail named,
 * with the exit status saying the results are partial.
 */
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, AGENT_NAMESPACE, runPlugin, runPluginProcess, startFakeAgent, type FakeAgent } from './helpers/cluster.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { serializeEvent } from '../src/events/schema.js';
import { kubeconfigFor } from './helpers/kube.js';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const at = (ms: number) => new Date(T0 + ms).toISOString().replace('Z', '000000Z');

t.test('events from three nodes, merged newest first, with their node', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agents: FakeAgent[] = [];
  // Node a's events at 0, 3, 6… ms, b's at 1, 4, 7…, c's at 2, 5, 8…: the merge interleaves them.
  for (const [i, node] of ['node-a', 'node-b', 'node-c'].entries()) {
    const events = Array.from({ length: 50 }, (_, k) => makeEvent({ node, seq: 50 - k, time: at((49 - k) * 3 + i), argv: ['curl', `n${i}-${49 - k}`] }));
    const agent = await startFakeAgent(events);
    t.teardown(() => agent.close());
    agents.push(agent);
    addAgentPod(api, node, { localPort: agent.port });
  }
  const kubeconfig = kubeconfigFor(t, api);

  // The executable itself, as kubectl runs it (KUBECONFIG from the environment); in process below.
  const json = await runPluginProcess(kubeconfig, ['events', '-o', 'json', '--limit', '7', '-q', 'curl', '--since', '1h']);
  t.equal(json.code, 0, `every node answered: exit 0 (${json.stderr})`);
  const body = JSON.parse(json.stdout) as { events: { node: string; time: string; argv: string[] }[]; failures: unknown[] };
  t.same(body.failures, [], 'no failures in the JSON');
  t.same(body.events.map((e) => e.argv[1]), ['n2-49', 'n1-49', 'n0-49', 'n2-48', 'n1-48', 'n0-48', 'n2-47'], 'the 7 newest of all nodes, newest first');
  t.same(body.events.map((e) => e.node), ['node-c', 'node-b', 'node-a', 'node-c', 'node-b', 'node-a', 'node-c'], 'each with its node');
  for (const agent of agents) {
    const query = agent.queries.at(-1) as URLSearchParams;
    t.equal(query.get('limit'), '7', 'each node is asked for at most --limit events');
    t.equal(query.get('q'), 'curl', '-q goes to every node as q');
    t.match(query.get('since'), /^2026-|^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, '--since 1h goes as an RFC 3339 time');
  }

  const table = await runPlugin(kubeconfig, ['events', '--limit', '3', '--context', 'double']);
  t.equal(table.code, 0, 'table: exit 0');
  const lines = table.stdout.trimEnd().split('\n');
  t.match(lines[0], /^TIME\s+NODE\s+NAMESPACE\/POD\/CONTAINER\s+PID\s+COMM\s+ARGV\s+RESULT$/, 'kubectl-style header');
  t.match(lines[1], /^2026-12-06T12:00:00\.149Z\s+node-c\s+shop\/web-1\/app\s+\d+\s+true\s+curl n2-49\s+ok$/, 'a row: time, node, pod, pid, comm, argv, result');
  t.equal(lines.length, 4, 'header and three rows');

  const jsonl = await runPlugin(kubeconfig, ['events', '-o', 'jsonl', '--limit', '2', '--node', 'node-b']);
  t.same(jsonl.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { node: string }).node), ['node-b', 'node-b'], '--node asks that node only; jsonl is one event a line');
});

t.test('an event that waited for its pod does not hide newer ones its node delivered before it', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  // node-a answers first (--max-parallel 1 asks in node order); node-b's answer is newest first by
  // seq, as an agent's: its event at 7 s waited for its pod and was delivered after the one at 9.8 s.
  const answers = {
    'node-a': [makeEvent({ node: 'node-a', seq: 2, time: at(9900), argv: ['a', '9.9'] }), makeEvent({ node: 'node-a', seq: 1, time: at(9000), argv: ['a', '9.0'] })],
    'node-b': [
      makeEvent({ node: 'node-b', seq: 5, time: at(10_000), argv: ['b', '10.0'] }),
      makeEvent({ node: 'node-b', seq: 4, time: at(7000), argv: ['b', '7.0'] }),
      makeEvent({ node: 'node-b', seq: 3, time: at(9800), argv: ['b', '9.8'] }),
    ],
  };
  for (const [node, events] of Object.entries(answers)) {
    const agent = await startFakeAgent(events);
    t.teardown(() => agent.close());
    addAgentPod(api, node, { localPort: agent.port });
  }
  const run = await runPlugin(kubeconfigFor(t, api), ['events', '-o', 'json', '--limit', '3', '--max-parallel', '1']);
  t.equal(run.code, 0, `exit 0 (${run.stderr})`);
  const got = (JSON.parse(run.stdout) as { events: { argv: string[] }[] }).events.map((e) => e.argv.join(' '));
  t.same(got, ['b 10.0', 'a 9.9', 'b 9.8'], 'the three newest of both nodes');
});

t.test('every filter of the events API has its flag, sent to every node as that parameter', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agent = await startFakeAgent([makeEvent({ node: 'node-f', time: at(1) })]);
  t.teardown(() => agent.close());
  addAgentPod(api, 'node-f', { localPort: agent.port });
  const kubeconfig = kubeconfigFor(t, api);
  const flags = {
    '--image': ['nginx', 'image'], '--drift': ['true', 'drift'], '--origin': ['exec', 'origin'],
    '--session': ['bm9kZQ.1845.4242', 'sessionExecId'], '--exec-id': ['bm9kZQ.1900.4300', 'execId'],
    '--parent-exec-id': ['bm9kZQ.1845.4242', 'parentExecId'], '--euid': ['0', 'euid'], '--kind': ['exec,exit', 'kind'],
    '--until': ['2026-11-24T16:05:00Z', 'until'],
  } as const;
  const run = await runPlugin(kubeconfig, ['events', ...Object.entries(flags).flatMap(([flag, [value]]) => [flag, value])]);
  t.equal(run.code, 0, `accepted: exit 0 (${run.stderr})`);
  const query = agent.queries.at(-1) as URLSearchParams;
  for (const [flag, [value, parameter]] of Object.entries(flags)) t.equal(query.get(parameter), value, `${flag} ${value} goes as ${parameter}`);
  const bad = await runPlugin(kubeconfig, ['events', '--origin', 'cron']);
  t.equal(bad.code, 2, 'a value the API refuses: exit 2');
  t.match(bad.stderr, /--origin "cron" must be equal to one of the allowed values/, 'naming the flag');
  const before = Date.now();
  t.equal(await runPlugin(kubeconfig, ['events', '--since', '2h', '--until', '1h']).then((r) => r.code), 0, '--until as a duration');
  const window = agent.queries.at(-1) as URLSearchParams;
  const ago = (parameter: string) => (before - Date.parse((window.get(parameter) as string).replace(/(\.\d{3})\d*Z$/, '$1Z'))) / 3_600_000;
  t.ok(Math.abs(ago('since') - 2) < 0.01 && Math.abs(ago('until') - 1) < 0.01, `--since 2h --until 1h: from two hours ago to one (${window.get('since')} – ${window.get('until')})`);
  const follow = await runPlugin(kubeconfig, ['follow', '--until', '1h']);
  t.equal(follow.code, 2, 'follow --until: exit 2');
  t.match(follow.stderr, /--until is for events already recorded \(kubectl execwatch events\); a live stream has no end/, 'saying why');
  const kinds = await runPlugin(kubeconfig, ['follow', '--kind', 'exec,fork']);
  t.match(kinds.stderr, /--kind "exec,fork" must match pattern/, 'follow checks them too');
});

t.test('a node that answered and then failed when asked again makes the results partial, not none', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  // --limit 30 over three nodes: a first share of 20; node-b fills it with the newest events and is
  // asked again, and fails then; the other two nodes are down.
  let agent: FakeAgent | undefined;
  agent = await startFakeAgent((limit) => {
    agent?.failWith(503, 'gone');
    return Array.from({ length: Math.min(limit, 40) }, (_, k) => serializeEvent(makeEvent({ node: 'node-b', seq: 40 - k, time: at(100_000 - k) })));
  });
  t.teardown(() => agent?.close());
  addAgentPod(api, 'node-a');
  addAgentPod(api, 'node-b', { localPort: agent.port });
  addAgentPod(api, 'node-c');
  const run = await runPlugin(kubeconfigFor(t, api), ['events', '-o', 'json', '--limit', '30']);
  t.equal((JSON.parse(run.stdout) as { events: unknown[] }).events.length, 20, 'node-b\'s first answer printed');
  t.match(run.stderr, /node node-b \(pod execwatch-node-b\): the agent answered HTTP 503/, 'its second failure named');
  t.match(run.stderr, /partial results: 3 of 3 nodes did not answer/, 'each node counted once');
  t.equal(run.code, 3, 'exit 3 (partial), not 1 (none could be asked)');
});

t.test('one node down: the others still print, it is named, the exit status says partial', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const up = await startFakeAgent([makeEvent({ node: 'node-up', time: at(1) })]);
  t.teardown(() => up.close());
  const wedged = await startFakeAgent([makeEvent({ node: 'node-wedged', time: at(2) })]);
  t.teardown(() => wedged.close());
  wedged.hang();
  addAgentPod(api, 'node-up', { localPort: up.port });
  addAgentPod(api, 'node-wedged', { localPort: wedged.port });
  addAgentPod(api, 'node-down'); // nothing listens: the kubelet's "connection refused"
  addAgentPod(api, 'node-pending', { phase: 'Pending' });
  addAgentPod(api, 'node-leaving', { terminating: true, localPort: up.port });
  const kubeconfig = kubeconfigFor(t, api);

  const run = await runPlugin(kubeconfig, ['events', '-o', 'json', '--timeout', '1500ms']);
  t.equal(run.code, 3, 'exit 3: partial results');
  const body = JSON.parse(run.stdout) as { events: { node: string }[]; failures: { node: string; pod: string | null; reason: string }[] };
  t.same(body.events.map((e) => e.node), ['node-up'], 'the answering node\'s event is printed');
  const reasons = Object.fromEntries(body.failures.map((f) => [f.node, f.reason]));
  t.match(reasons['node-down'], /connection refused/, 'the unreachable agent: the port-forward\'s error');
  t.match(reasons['node-wedged'], /no answer within 1500ms \(--timeout\)/, 'the wedged agent: the timeout');
  t.match(reasons['node-pending'], /agent pod execwatch-node-pending is Pending/, 'the pod that does not run');
  t.match(reasons['node-leaving'], /agent pod execwatch-node-leaving is terminating/, 'the pod being deleted');
  t.match(run.stderr, /node node-down \(pod execwatch-node-down\): port-forward to pod execwatch\/execwatch-node-down port 9465: .*connection refused/, 'stderr names the node and why');
  t.match(run.stderr, /partial results: 4 of 5 nodes did not answer/, 'and says the results are partial');

  const named = await runPlugin(kubeconfig, ['events', '--node', 'node-gone', '--node', 'node-up', '--node', 'node-pending']);
  t.equal(named.code, 3, 'a named node without an agent: partial');
  t.match(named.stderr, /partial results: 2 of 3 nodes did not answer/, 'each named node counted once');
  t.match(named.stderr, /node node-gone: no agent pod \(app\.kubernetes\.io\/name=execwatch in namespace execwatch\) on this node/, 'named');

  const none = await runPlugin(kubeconfig, ['events', '--node', 'node-down']);
  t.equal(none.code, 1, 'no node answered: exit 1');

  api.addNode('node-up', { pool: 'web' });
  const selected = await runPlugin(kubeconfig, ['events', '-o', 'jsonl', '--node-selector', 'pool=web']);
  t.equal(selected.code, 0, `--node-selector asks the agents of those nodes only (${selected.stderr})`);
  t.equal(selected.stdout.trim().split('\n').length, 1, 'node-up\'s event');

  api.failNext(500);
  const apiDown = await runPlugin(kubeconfig, ['events']);
  t.equal(apiDown.code, 1, 'the API server fails: exit 1');
  t.match(apiDown.stderr, /cannot list the agents \(pods app\.kubernetes\.io\/name=execwatch in namespace execwatch\): HTTP 500: injected failure 500/, 'says what failed');
});

t.test('the API token: from the Secret the agent pods mount, or --token-file', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agent = await startFakeAgent([makeHostEvent({ node: 'node-t', time: at(5), argv: ['sh', '-c', 'echo\nhi'] })], { token: 's3cret' });
  t.teardown(() => agent.close());
  addAgentPod(api, 'node-t', { localPort: agent.port, tokenSecret: { name: 'execwatch-api-token', key: 'api' } });
  const kubeconfig = kubeconfigFor(t, api);

  const noSecret = await runPlugin(kubeconfig, ['events']);
  t.equal(noSecret.code, 1, 'a Secret that cannot be read: exit 1');
  t.match(noSecret.stderr, /the agents require an API token: cannot read Secret execwatch\/execwatch-api-token \(HTTP 404.*\); give --token-file/, 'says which Secret and the way out');

  api.addSecret(AGENT_NAMESPACE, 'execwatch-api-token', { token: 's3cret' });
  const noKey = await runPlugin(kubeconfig, ['events']);
  t.match(noKey.stderr, /the agents' API token Secret execwatch\/execwatch-api-token has no key "api"/, 'a Secret without the key the pods mount');
  api.addSecret(AGENT_NAMESPACE, 'execwatch-api-token', { api: 's3cret\n' });
  const run = await runPlugin(kubeconfig, ['events', '-o', 'wide']);
  t.equal(run.code, 0, `the token from the Secret is accepted (${run.stderr})`);
  t.match(run.stdout, /<host>\s+\d+\s+\d+\s+1000\s+true\s+\/usr\/bin\/true\s+sh -c 'echo\\x0ahi'\s+ok/, 'wide: host process, ppid, uid, filename, argv with the newline escaped');

  const dir = t.testdir({ token: 'wrong\n', empty: '' });
  const wrong = await runPlugin(kubeconfig, ['events', '--token-file', `${dir}/token`]);
  t.equal(wrong.code, 1, 'a refused token: the only node fails, exit 1');
  t.match(wrong.stderr, /node node-t \(pod execwatch-node-t\): the agent answered HTTP 401: a bearer token is required/, 'the agent\'s answer is shown');
  const missing = await runPlugin(kubeconfig, ['events', '--token-file', `${dir}/missing`]);
  t.match(missing.stderr, /--token-file ".*missing" cannot be read \(ENOENT/, 'an unreadable token file names the flag');
  agent.failWith(503, 'overloaded');
  const refused = await runPlugin(kubeconfig, ['events', '--token-file', `${dir}/token`]);
  t.match(refused.stderr, /the agent answered HTTP 503\n/, 'an answer without a JSON message: its status');
  const empty = await runPlugin(kubeconfig, ['events', '--token-file', `${dir}/empty`]);
  t.equal(empty.code, 2, 'an empty token file is a usage error');
  t.match(empty.stderr, /--token-file ".*empty" is empty/, 'naming the flag');
});

const USAGE_CASES = [
  { args: ['events', '--limit', '0'], message: /--limit "0" must be >= 1/ },
  { args: ['events', '--result', 'maybe'], message: /--result "maybe" must be equal to one of the allowed values/ },
  { args: ['events', '--uid', 'root'], message: /--uid "root" must be integer/ },
  { args: ['events', '--since', 'yesterday'], message: /--since "yesterday" must match format "date-time"/ },
  { args: ['events', '--since', '2026-06-30T23:59:60Z'], message: /--since "2026-06-30T23:59:60Z" is not a representable time/ },
  { args: ['events', '-o', 'yaml'], message: /-o "yaml" is not an output format: one of table, wide, json, jsonl/ },
  { args: ['events', '--timeout', 'soon'], message: /--timeout "soon" is not a duration/ },
  { args: ['events', '--timeout', '0s'], message: /--timeout must be more than 0/ },
  { args: ['events', '-q', ''], message: /-q "" must NOT have fewer than 1 characters/ },
  { args: ['events', '--max-parallel', '0'], message: /--max-parallel "0" is not an integer from 1 to 1000/ },
  { args: ['events', '--colour'], message: /Unknown option '--colour'/ },
  { args: ['events', 'extra'], message: /unexpected argument "extra"/ },
  { args: ['events', '--context', 'nope'], message: /--context "nope" is not in the kubeconfig \(it has: double\)/ },
  { args: ['events', '--kubeconfig', '/nonexistent/kubeconfig'], message: /--kubeconfig "\/nonexistent\/kubeconfig": ENOENT/ },
  { args: ['lineage'], message: /unknown command "lineage": one of events/ },
] as const;

t.test('bad flags: exit 2 with a message naming the flag', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  for (const { args, message } of USAGE_CASES) {
    const run = await runPlugin(kubeconfig, [...args]);
    t.equal(run.code, 2, `${args.join(' ')}: exit 2`);
    t.match(run.stderr, message, `${args.join(' ')}: ${message}`);
  }
  const executable = await runPluginProcess(kubeconfig, ['events', '--limit', '0']);
  t.equal(executable.code, 2, 'the executable exits 2 on a bad flag');
  t.equal(executable.stderr, 'kubectl-execwatch: --limit "0" must be >= 1 (kubectl execwatch events --help)\n', 'one line on stderr, naming the flag');
  const help = await runPlugin(kubeconfig, ['events', '--help']);
  t.equal(help.code, 0, 'events --help: exit 0');
  t.match(help.stdout, /--namespace-filter NS/, 'lists the filter flags');
  const version = await runPlugin(kubeconfig, ['--version']);
  t.match(version.stdout, /^kubectl-execwatch \d+\.\d+\.\d+\n$/, '--version');
  const bare = await runPlugin(kubeconfig, []);
  t.equal(bare.code, 2, 'no command: the usage, exit 2');
  const top = await runPlugin(kubeconfig, ['--help']);
  t.match(top.stdout, /Commands:\n {2}events/, 'the command table');
  const dir = t.testdir({ empty: JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], contexts: [], users: [] }) });
  const malformed = `${dir}/malformed`;
  writeFileSync(malformed, 'clusters: [');
  const fromEnv = await runPluginProcess(malformed, ['events']);
  t.match(fromEnv.stderr, /KUBECONFIG ".*malformed": /, 'a bad KUBECONFIG is named as such');
  const noContext = await runPlugin(kubeconfig, ['events', '--kubeconfig', `${dir}/empty`]);
  t.match(noContext.stderr, /the kubeconfig has no current context with a cluster: give --context/, 'a kubeconfig without a current context');
  const noAgents = await runPlugin(kubeconfig, ['events', '-n', 'elsewhere']);
  t.equal(noAgents.code, 1, 'no agents: exit 1');
  t.match(noAgents.stderr, /no agent pods \(app\.kubernetes\.io\/name=execwatch\) in namespace elsewhere on the nodes asked for: is the chart installed there\?/, 'says where it looked');
});
