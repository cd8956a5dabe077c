/**
 * `kubectl execwatch process EXECID`: the node named by the exec id is the only one asked; its
 * agent's GET /api/processes/:execId printed as a tree (ancestors, the process and its exit, its
 * children) or as the agent's JSON; a malformed id, an unknown node and an unknown process each
 * say so. Simulated agents for the shapes, then three real agents on the real kernel.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { execIdOfTicks } from '../src/events/exec-id.js';
import { serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, runPlugin, startFakeAgent } from './helpers/cluster.js';
import { startCommand, type RunningAgent } from './helpers/command.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { ensureTracefs, kernelTest, marker } from './helpers/kernel.js';
import { events, kubeconfigFor } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

const BOOT = '0123456789abcdef0123456789abcdef';
const idOn = (node: string, pid: number) => execIdOfTicks({ node, bootId: BOOT }, 1000 + pid, pid);

t.test('the tree of a process from the agent of its node, as text or JSON', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const self = idOn('node-b', 300);
  const shell = { execId: idOn('node-b', 200), pid: 200, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c', 'curl x; id'] };
  const init = { execId: idOn('node-b', 1), pid: 1, comm: 'systemd', filename: '/sbin/init', argv: ['/sbin/init'] };
  const exec = makeEvent({
    node: 'node-b', pid: 300, execId: self, parentExecId: shell.execId, comm: 'sudo', filename: '/usr/bin/sudo', argv: ['sudo', 'id', 'a b'],
    uid: 1000, euid: 0, euidDiffers: true, ancestors: [shell, init],
    exit: { time: '2026-11-24T16:02:04.000000000Z', status: 'signal', code: null, signal: 9, coreDumped: false, duration: 12.5 },
  });
  const children: ExecEvent[] = [
    makeEvent({ node: 'node-b', pid: 301, execId: idOn('node-b', 301), parentExecId: self, comm: 'id', argv: ['id'], exit: { time: '2026-11-24T16:02:03.5Z', status: 'ok', code: 0, signal: null, coreDumped: false, duration: 0.0021 } }),
    makeEvent({ node: 'node-b', pid: 302, execId: idOn('node-b', 302), parentExecId: self, comm: 'nope', argv: ['nope'], retval: -2 }),
    makeEvent({ node: 'node-b', pid: 303, execId: idOn('node-b', 303), parentExecId: self, comm: 'odd', argv: ['odd'], retval: -4000 }),
    makeEvent({ node: 'node-b', pid: 304, execId: idOn('node-b', 304), parentExecId: self, comm: 'rt', argv: ['rt'], exit: { time: '2026-11-24T16:02:03.6Z', status: 'signal', code: null, signal: 40, coreDumped: false, duration: 0.5 } }),
    makeEvent({ node: 'node-b', pid: 305, execId: idOn('node-b', 305), parentExecId: self, comm: 'sleep', argv: ['sleep', '1d'] }),
  ];
  // What the shell tried before it found sudo (a PATH search), newest first as the agent lists them.
  const failed = ['/usr/local/bin/sudo', '/usr/local/sbin/sudo'].map((filename, i) =>
    makeEvent({ node: 'node-b', pid: 300, execId: self, parentExecId: shell.execId, time: `2026-11-24T16:01:51.00${2 - i}000000Z`, comm: 'sh', filename, argv: ['sudo', 'id', 'a b'], retval: -2 }));
  const body = `{"exec":${serializeEvent(exec)},"ancestors":${JSON.stringify(exec.ancestors)},"children":[${children.map((c) => serializeEvent(c)).join(',')}],"session":[],"failed":[${failed.map((f) => serializeEvent(f)).join(',')}]}`;
  const lone = makeHostEvent({ node: 'node-b', pid: 400, execId: idOn('node-b', 400), comm: 'cron', argv: ['cron'], exit: { time: '2026-11-24T16:02:05Z', status: 'signal', code: null, signal: 11, coreDumped: true, duration: 1 } });
  const loneBody = `{"exec":${serializeEvent(lone)},"ancestors":[],"children":[],"session":[],"failed":[]}`;
  const unknownPod = makeEvent({ node: 'node-b', pid: 500, execId: idOn('node-b', 500), namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved' });
  const barePod = makeEvent({ node: 'node-b', pid: 600, execId: idOn('node-b', 600), pod: 'bare', container: null, workload: null });
  const a = await startFakeAgent([]);
  const b = await startFakeAgent([], { processes: { [self]: body, [lone.execId]: loneBody, [unknownPod.execId]: `{"exec":${serializeEvent(unknownPod)},"ancestors":[],"children":[],"session":[],"failed":[]}`, [barePod.execId]: `{"exec":${serializeEvent(barePod)},"ancestors":[],"children":[],"session":[],"failed":[]}` } });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  addAgentPod(api, 'node-a', { localPort: a.port });
  addAgentPod(api, 'node-b', { localPort: b.port });
  addAgentPod(api, 'node-down');
  const kubeconfig = kubeconfigFor(t, api);

  const tree = await runPlugin(kubeconfig, ['process', self]);
  t.equal(tree.code, 0, `found: exit 0 (${tree.stderr})`);
  t.equal(a.queries.length, 0, 'only the node the exec id names is asked');
  const lines = tree.stdout.split('\n');
  t.equal(lines[0], `process  ${self} on node node-b`, 'the process and its node first');
  t.match(tree.stdout, /\nas {7}uid 1000 gid 1000, euid 0 egid 1000\n/, 'who it ran as, the effective ids when they differ');
  t.match(tree.stdout, /\nin {7}shop\/web-1\/app \(Deployment\/web\)\n/, 'where it ran');
  t.match(tree.stdout, /\nended {4}SIGKILL after 13 s, at 2026-11-24T16:02:04\.000000000Z\n/, 'how it ended');
  t.match(tree.stdout, /\ntried {4}2026-11-24T16:01:51\.001000000Z {2}\/usr\/local\/sbin\/sudo {2}\(exec failed ENOENT\)\ntried {4}2026-11-24T16:01:51\.002000000Z {2}\/usr\/local\/bin\/sudo {2}\(exec failed ENOENT\)\n\n/,
    'its own failed attempts, oldest first, each with the path it named and why it failed');
  const treeLines = lines.slice(lines.indexOf('') + 1, -1);
  t.same(treeLines, [
    `systemd[1] /sbin/init  ${init.execId}`,
    `└─ sh[200] sh -c 'curl x; id'  ${shell.execId}`,
    `   └─ sudo[300] sudo id 'a b'  ${self}  ◀ SIGKILL after 13 s`,
    `      ├─ id[301] id  ${children[0]?.execId}  (exit 0 after 0.002 s)`,
    `      ├─ nope[302] nope  ${children[1]?.execId}  (exec failed ENOENT)`,
    `      ├─ odd[303] odd  ${children[2]?.execId}  (exec failed errno 4000)`,
    `      ├─ rt[304] rt  ${children[3]?.execId}  (signal 40 after 0.500 s)`,
    `      └─ sleep[305] sleep 1d  ${children[4]?.execId}  (running)`,
  ], 'the oldest ancestor first, the process marked with how it ended, its children below');

  const json = await runPlugin(kubeconfig, ['process', self, '-o', 'json']);
  t.equal(json.stdout, `${body}\n`, '-o json: the agent\'s answer as it sent it');

  const alone = await runPlugin(kubeconfig, ['process', lone.execId]);
  t.match(alone.stdout, /\nin {7}host\nended {4}SIGSEGV \(core dumped\) after 1\.000 s, at \S+\n\n/, 'a host process killed with a core dump, no failed attempt');
  t.match(alone.stdout, /\ncron\[400\] cron {2}\S+ {2}◀ SIGSEGV \(core dumped\) after 1\.000 s\n\(no children in the agent's recent events\)\n$/, 'no ancestors, no children: said');
  const unresolved = await runPlugin(kubeconfig, ['process', unknownPod.execId]);
  t.match(unresolved.stdout, /\nin {7}container 3f1c00000000 \(pod unknown\)\nended {4}still running, or its exit was not seen\n/, 'a container of an unknown pod, no exit yet');
  t.match(unresolved.stdout, /◀ running\n/, 'marked running');
  const bare = await runPlugin(kubeconfig, ['process', barePod.execId]);
  t.match(bare.stdout, /\nin {7}shop\/bare\/\? *\n/, 'a pod without a controller, its container not named');

  const unknown = await runPlugin(kubeconfig, ['process', idOn('node-b', 999)]);
  t.equal(unknown.code, 1, 'a process its agent does not know: exit 1');
  t.match(unknown.stderr, /process \S+ is not in the recent events of node node-b's agent \(pod execwatch-node-b\)/, 'says so');
  const otherNode = await runPlugin(kubeconfig, ['process', idOn('node-gone', 5)]);
  t.equal(otherNode.code, 1, 'a node without an agent: exit 1');
  t.match(otherNode.stderr, /ran on node node-gone, whose agent cannot be asked: no agent pod \(app\.kubernetes\.io\/name=execwatch in namespace execwatch\) on this node/, 'names the node');
  const down = await runPlugin(kubeconfig, ['process', idOn('node-down', 5)]);
  t.match(down.stderr, /node node-down \(pod execwatch-node-down\): port-forward to pod .*connection refused/, 'an agent that does not answer');
  b.hang();
  const slow = await runPlugin(kubeconfig, ['process', self, '--timeout', '500ms']);
  t.match(slow.stderr, /node node-b \(pod execwatch-node-b\): no answer within 500ms \(--timeout\)/, 'a wedged agent: the timeout');
  const c = await startFakeAgent([]);
  t.teardown(() => c.close());
  c.failWith(503, 'busy');
  addAgentPod(api, 'node-c', { localPort: c.port });
  const refused = await runPlugin(kubeconfig, ['process', idOn('node-c', 5)]);
  t.match(refused.stderr, /node node-c \(pod execwatch-node-c\): the agent answered HTTP 503/, 'an error answer');

  for (const [args, message] of [
    [['process'], /EXECID is missing/],
    [['process', 'a', 'b'], /unexpected argument "b"/],
    [['process', 'not-an-id'], /EXECID "not-an-id" is not an exec id/],
    [['process', `${Buffer.from('nonode').toString('base64url')}.1.2`], /is not an exec id/],
    [['process', self, '-o', 'wide'], /-o "wide" is not an output format of process: tree or json/],
  ] as const) {
    const run = await runPlugin(kubeconfig, [...args]);
    t.equal(run.code, 2, `${args.join(' ')}: exit 2`);
    t.match(run.stderr, message, `${args.join(' ')}: the message names what is wrong`);
  }
  const help = await runPlugin(kubeconfig, ['process', '--help']);
  t.match(help.stdout, /Usage: kubectl execwatch process EXECID/, '--help');
});

t.test('process over three real agents: the node of the exec id answers with the real tree', kernelTest(), async (t) => {
  ensureTracefs();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const nodes = ['node-1', 'node-2', 'node-3'];
  const agents: RunningAgent[] = await Promise.all(nodes.map((node) => startCommand(['--node-name', node])));
  t.teardown(() => {
    for (const agent of agents) agent.child.kill('SIGTERM');
    return Promise.all(agents.map((agent) => agent.exited));
  });
  agents.forEach((agent, i) => addAgentPod(api, nodes[i] as string, { localPort: Number(new URL(agent.apiUrl).port) }));
  const kubeconfig = kubeconfigFor(t, api);

  // A shell that runs two children and exits 3: its own tree, once per agent.
  const m = marker('process');
  spawnSync('/bin/sh', ['-c', `/usr/bin/true ${m}-1; /usr/bin/true ${m}-2; exit 3`, m]);
  const shellOf = async (agent: RunningAgent) => (await events(agent.apiUrl, { q: m })).find((e) => e.filename === '/bin/sh' && e.argv.at(-1) === m);
  await eventually(async () => (await shellOf(agents[1] as RunningAgent))?.exit !== undefined, 'node-2 saw the shell and its exit');
  const shell = (await shellOf(agents[1] as RunningAgent)) as ExecEvent;

  const run = await runPlugin(kubeconfig, ['process', shell.execId]);
  t.equal(run.code, 0, `node-2's agent knows its shell (${run.stderr})`);
  t.match(run.stdout, new RegExp(`^process  ${shell.execId} on node node-2\n`), 'on node-2, the node its id names');
  t.match(run.stdout, /\nended {4}exit 3 after \d+\.\d{3} s, at /, 'its exit');
  t.match(run.stdout, new RegExp(`sh\\[${shell.pid}\\] /bin/sh -c .*  ${shell.execId}  ◀ exit 3 after`), 'the shell in the tree, marked');
  const children = run.stdout.split('\n').filter((line) => /[├└]─ true\[\d+\] \/usr\/bin\/true /.test(line));
  t.same(children.map((line) => /\/usr\/bin\/true (\S+)/.exec(line)?.[1]).sort(), [`${m}-1`, `${m}-2`], 'both children, below it');
  t.ok(children.every((line) => /\(exit 0 after \d+\.\d{3} s\)$/.test(line)), 'each with its exit');
  const parent = shell.ancestors[0];
  if (parent !== undefined) t.match(run.stdout, new RegExp(`\\[${parent.pid}\\] .*  ${parent.execId}\n`), 'its parent above it');

  const json = JSON.parse((await runPlugin(kubeconfig, ['process', shell.execId, '-o', 'json'])).stdout) as { exec: ExecEvent; children: ExecEvent[]; failed: ExecEvent[] };
  t.equal(json.exec.node, 'node-2', '-o json: node-2\'s own event');
  t.equal(json.children.length, 2, 'with its two children');
  t.same(json.failed, [], 'and no failed attempt of its own');

  // dash tries each PATH entry with an execve of its own: the first fails (ENOENT) in the process
  // that then runs true, so that process lists it.
  spawnSync('/bin/sh', ['-c', `PATH=/nonexistent-${m}:/usr/bin; exec true ${m}-exec`]);
  const trueOf = async (agent: RunningAgent) => (await events(agent.apiUrl, { q: `${m}-exec` })).find((e) => e.filename === '/usr/bin/true' && e.retval === 0);
  await eventually(async () => (await trueOf(agents[2] as RunningAgent))?.exit !== undefined, 'node-3 saw true and its exit');
  const ran = (await trueOf(agents[2] as RunningAgent)) as ExecEvent;
  const tried = await runPlugin(kubeconfig, ['process', ran.execId]);
  t.equal(tried.code, 0, `node-3's agent knows it (${tried.stderr})`);
  t.match(tried.stdout, new RegExp(`\ntried {4}\\S+ {2}/nonexistent-${m}/true {2}\\(exec failed ENOENT\\)\n\n`), 'the PATH entry it tried first, and why that failed');
});
