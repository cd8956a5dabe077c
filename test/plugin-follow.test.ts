/**
 * `kubectl execwatch follow` against simulated agents behind the API-server double: rows as they
 * arrive, a stream resumed with Last-Event-ID, a node that answers late or refuses reported and
 * retried, agent pods that come and go; the SSE parser. (Over real agents: plugin-kernel.test.ts.)
 */
import t, { type Test } from 'tap';
import { serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { SseParser } from '../src/plugin/sse.js';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, AGENT_NAMESPACE, runPlugin, startFakeAgent, startPlugin, type FakeAgent } from './helpers/cluster.js';
import { makeEvent } from './helpers/events.js';
import { kubeconfigFor } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

t.test('follow: rows as they come, drops resumed, agents joined and let go', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const held = [makeEvent({ node: 'node-s', seq: 2, argv: ['held', 'two'] }), makeEvent({ node: 'node-s', seq: 1, argv: ['held', 'one'] })];
  const streaming = await startFakeAgent(held);
  t.teardown(() => streaming.close());
  const wedged = await startFakeAgent([]);
  t.teardown(() => wedged.close());
  wedged.hang();
  const guarded = await startFakeAgent([], { token: 'right' });
  t.teardown(() => guarded.close());
  addAgentPod(api, 'node-s', { localPort: streaming.port });
  addAgentPod(api, 'node-w', { localPort: wedged.port });
  addAgentPod(api, 'node-g', { localPort: guarded.port });
  const kubeconfig = kubeconfigFor(t, api);
  const dir = t.testdir({ token: 'wrong' });

  const follow = startPlugin(kubeconfig, ['follow', '-o', 'wide', '--timeout', '500ms', '--token-file', `${dir}/token`]);
  await eventually(() => streaming.streamResumes.length === 1, 'node-s streams');
  streaming.push(serializeEvent(makeEvent({ node: 'node-s', seq: 3, argv: ['curl', 'live'] })), 3);
  await eventually(() => follow.stdout().includes('curl live'), 'the live event printed');
  const [header, row] = follow.stdout().split('\n');
  t.match(header, /^TIME\s+NODE\s+NAMESPACE\/POD\/CONTAINER\s+PID\s+PPID\s+UID\s+COMM\s+FILENAME\s+ARGV\s+RESULT$/, 'a wide header first');
  t.match(row, /^\S+\s+node-s\s+shop\/web-1\/app\s+\d+\s+4000\s+1000\s+true\s+\/usr\/bin\/true\s+curl live\s+ok$/, 'then the row');
  await eventually(() => /node node-w \(pod execwatch-node-w\): no answer within 500ms \(--timeout\); reconnecting in 3s/.test(follow.stderr()), 'the wedged node is reported');
  await eventually(() => /node node-g \(pod execwatch-node-g\): the agent answered HTTP 401: a bearer token is required; reconnecting in 3s/.test(follow.stderr()), 'the refusing node is reported');

  // The stream drops: resumed after the last event seen, which the agent replays from.
  api.dropPortForwards();
  await eventually(() => streaming.streamResumes.length === 2, 'node-s resumed', 15_000);
  t.equal(streaming.streamResumes[1], '3', 'resumed with Last-Event-ID of the last event seen');
  await eventually(() => /node node-s: stream resumed after event 3/.test(follow.stderr()), 'the resume reported');

  // Agent pods that come: one on a new node, one not scheduled to a node yet (not followed).
  const late = await startFakeAgent([]);
  t.teardown(() => late.close());
  addAgentPod(api, 'node-late', { localPort: late.port, tokenSecret: { name: 'missing', key: 'token' } });
  addAgentPod(api, 'node-later', { unscheduled: true });
  // --token-file was given, so the new agent is joined with it, whatever its Secret.
  await eventually(() => follow.stderr().includes('node node-late: agent pod execwatch-node-late joined'), 'a new node joined');

  // A pod deleted: its stream is let go.
  const before = api.portForwards;
  api.deletePod(AGENT_NAMESPACE, 'execwatch-node-s');
  await eventually(() => api.portForwards < before, 'node-s let go');

  // The watch fails: said, and retried.
  api.failNext(500, 2);
  api.closeWatches();
  await eventually(() => /watching the agent pods failed \(.*\): new nodes are not joined until it is back; retrying in 3s/.test(follow.stderr()), 'a failed watch is reported');
  t.notMatch(follow.stderr(), /node-later/, 'the unscheduled pod is not followed');
  const stopped = await follow.stop();
  t.equal(stopped.code, 0, 'Ctrl-C: exit 0');
});

t.test('follow without --token-file: a new agent whose Secret cannot be read is said, not followed', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const first = await startFakeAgent([]);
  t.teardown(() => first.close());
  addAgentPod(api, 'node-1', { localPort: first.port });
  const kubeconfig = kubeconfigFor(t, api);
  const follow = startPlugin(kubeconfig, ['follow', '-o', 'json', '-q', 'x', '--node', 'node-1', '--node', 'node-2', '--node', 'node-gone']);
  await eventually(() => first.streamResumes.length === 1, 'node-1 streams');
  t.match(follow.stderr(), /node node-gone: no agent pod .* on this node/, 'a named node without an agent is said');
  first.push(serializeEvent(makeEvent({ node: 'node-1', argv: ['x', 'no-id'] })));
  await eventually(() => follow.stdout().includes('no-id'), 'an event without an id');
  t.equal(follow.stdout().split('\n').length, 2, 'json: one event a line, no header');
  first.endStreams();
  await eventually(() => /node node-1 \(pod execwatch-node-1\): the stream ended; reconnecting in 100ms/.test(follow.stderr()), 'an ended stream is said, and retried after the agent\'s retry');
  await eventually(() => /node node-1: stream resumed\n/.test(follow.stderr()), 'resumed (no event id seen: from now)');
  t.equal(first.streamResumes[1], undefined, 'without Last-Event-ID');
  addAgentPod(api, 'node-3');
  const noNode = addAgentPod(api, 'node-2', { tokenSecret: { name: 'absent', key: 'token' } });
  await eventually(() => follow.stderr().includes(`node node-2: agent pod ${noNode} cannot be followed: the agents require an API token: cannot read Secret execwatch/absent`), 'the unreadable Secret is said');
  t.notMatch(follow.stderr(), /node-3/, 'a node not asked for is not joined');
  const stopped = await follow.stop();
  t.equal(stopped.code, 0, 'exit 0');

  const extra = await runPlugin(kubeconfig, ['follow', 'now']);
  t.equal(extra.code, 2, 'an argument follow does not take: exit 2');
  t.match(extra.stderr, /unexpected argument "now"/, 'named');
  const quick = startPlugin(kubeconfig, ['follow', '--node', 'node-1']);
  t.equal((await quick.stop()).code, 0, 'Ctrl-C at once: exit 0');
});

t.test('follow --node-selector: the agents of nodes that join later with matching labels are followed too', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agents: FakeAgent[] = [];
  const agentOn = async (node: string, labels: Record<string, string>) => {
    const agent = await startFakeAgent([]);
    t.teardown(() => agent.close());
    agents.push(agent);
    addAgentPod(api, node, { localPort: agent.port });
    api.addNode(node, labels);
    return agent;
  };
  const web = await agentOn('node-web-1', { pool: 'web' });
  const db = await agentOn('node-db-1', { pool: 'db' });
  const follow = startPlugin(kubeconfigFor(t, api), ['follow', '--node-selector', 'pool=web']);
  await eventually(() => web.streamResumes.length === 1, 'the web node is followed');
  const joined = await agentOn('node-web-2', { pool: 'web' });
  await eventually(() => joined.streamResumes.length === 1, 'the web node that joined is followed');
  t.match(follow.stderr(), /node node-web-2: agent pod execwatch-node-web-2 joined/, 'and said');
  const other = await agentOn('node-db-2', { pool: 'db' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(other.streamResumes.length + db.streamResumes.length, 0, 'no node the selector leaves out');
  t.notMatch(follow.stderr(), /node-db/, 'nor said');
  t.equal((await follow.stop()).code, 0, 'exit 0');
});

/**
 * `follow` streaming from node-1's agent, and a second simulated agent for node-2 whose pod, once
 * added, mounts a token Secret: joining it reads that Secret from the API server.
 */
async function followWithLateAgent(t: Test) {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const first = await startFakeAgent([]);
  t.teardown(() => first.close());
  addAgentPod(api, 'node-1', { localPort: first.port });
  const late = await startFakeAgent([]);
  t.teardown(() => late.close());
  api.addSecret(AGENT_NAMESPACE, 'api-token', { token: 'secret' });
  const follow = startPlugin(kubeconfigFor(t, api), ['follow']);
  await eventually(() => first.streamResumes.length === 1, 'node-1 streams');
  return { api, late, follow };
}

t.test('follow: events of an agent pod that come while it is being joined start one stream', async (t) => {
  const { api, late, follow } = await followWithLateAgent(t);
  // Its token is read from the Secret: the second event comes while the first is being handled.
  for (let i = 0; i < 2; i++) addAgentPod(api, 'node-2', { localPort: late.port, tokenSecret: { name: 'api-token', key: 'token' } });
  await eventually(() => late.streamResumes.length >= 1, 'node-2 streams');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(late.streamResumes.length, 1, 'one stream');
  t.equal(follow.stderr().match(/node-2: agent pod execwatch-node-2 joined/g)?.length, 1, 'joined once');
  t.equal((await follow.stop()).code, 0, 'exit 0');
});

t.test('follow: an agent pod deleted while it is being joined is not followed', async (t) => {
  const { api, late, follow } = await followWithLateAgent(t);
  // Its token's Secret is read: the API server holds that answer until the pod is gone.
  const release = api.stall();
  const asked = api.requests.length;
  const pod = addAgentPod(api, 'node-2', { localPort: late.port, tokenSecret: { name: 'api-token', key: 'token' } });
  await eventually(() => api.requests.slice(asked).some((r) => r.path.endsWith('/secrets/api-token')), 'the Secret asked for');
  api.deletePod(AGENT_NAMESPACE, pod);
  await new Promise((resolve) => setTimeout(resolve, 300));
  release();
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(late.streamResumes.length, 0, 'no stream to the deleted pod\'s agent');
  t.notMatch(follow.stderr(), /node-2/, 'not said to join');
  t.equal((await follow.stop()).code, 0, 'exit 0');
});

t.test('follow: a stream cut in the middle of a frame loses nothing', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  // What the agent's ring holds, newest first: it replays those after the Last-Event-ID it is given.
  const ring = [4, 3, 2, 1].map((seq) => makeEvent({ node: 'node-c', seq, argv: ['ring', `event-${seq}`] }));
  const agent = await startFakeAgent(ring);
  t.teardown(() => agent.close());
  addAgentPod(api, 'node-c', { localPort: agent.port });
  const follow = startPlugin(kubeconfigFor(t, api), ['follow', '-o', 'json']);
  await eventually(() => agent.streamResumes.length === 1, 'node-c streams');
  agent.push(serializeEvent(ring[1] as ExecEvent), 3);
  await eventually(() => follow.stdout().includes('event-3'), 'event 3 printed');
  // The connection drops after the first half of event 4's frame.
  const frame = `id: 4\nevent: exec\ndata: ${serializeEvent(ring[0] as ExecEvent)}\n\n`;
  agent.cutStreams(frame.slice(0, frame.length / 2));
  await eventually(() => follow.stdout().includes('event-4'), 'event 4 printed once the stream is resumed');
  t.equal(agent.streamResumes[1], '3', 'resumed after event 3, the last one received whole');
  t.notMatch(follow.stderr(), /JSON|Unexpected/, 'no half frame read as an event');
  t.equal(follow.stdout().match(/event-4/g)?.length, 1, 'event 4 printed once');
  t.equal((await follow.stop()).code, 0, 'exit 0');
});

t.test('the SSE parser', async (t) => {
  const parser = new SseParser();
  t.same(parser.push('retry: 250\n: heartbeat\n\nid: 7\nevent: exit\ndata: {"a":\ndata: 1}\n\n'), [{ id: '7', event: 'exit', data: '{"a":\n1}' }], 'a frame of two data lines; comments and retry are no frames');
  t.equal(parser.retryMs, 250, 'retry is kept');
  t.same(parser.push('data\n\nretry: soon\n\nid: 8\nda'), [{ id: undefined, event: 'message', data: '' }], 'a field without a colon; a bad retry is ignored; a partial frame waits');
  t.equal(parser.retryMs, 250, 'still the last good retry');
  t.same(parser.push('ta: x\n\n'), [{ id: '8', event: 'message', data: 'x' }], 'the frame completed by the next chunk');
});
