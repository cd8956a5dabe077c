/**
 * One node's stream (src/plugin/node-stream.ts) in-process, against a simulated agent behind the
 * API-server double's port-forward: a connection that brings nothing, not even the agent's
 * heartbeat, is taken for dead and resumed; heartbeats keep a quiet one open.
 */
import { KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { AgentClient } from '../src/plugin/forward.js';
import { NodeStream } from '../src/plugin/node-stream.js';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, AGENT_NAMESPACE, AGENT_PORT, startFakeAgent } from './helpers/cluster.js';
import { kubeconfigFor } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

/** A simulated agent on node-q, and a stream to it that may bring nothing for 300 ms. */
async function setup(t: Test) {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agent = await startFakeAgent([]);
  t.teardown(() => agent.close());
  const pod = addAgentPod(api, 'node-q', { localPort: agent.port });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigFor(t, api));
  const notices: string[] = [];
  const stream = new NodeStream({ node: 'node-q', namespace: AGENT_NAMESPACE, pod, port: AGENT_PORT, tokenSecret: null }, new AgentClient(kc), {
    query: {},
    token: null,
    timeoutMs: 5000,
    idleMs: 300,
    onEvent: () => {},
    notice: (line) => notices.push(line),
  });
  t.teardown(async () => {
    stream.stop();
    await stream.done;
  });
  return { agent, notices };
}

t.test('a stream silent past the idle limit is dropped and resumed', async (t) => {
  const { agent, notices } = await setup(t);
  await eventually(() => agent.streamResumes.length >= 2, 'a second connection');
  t.match(notices[0], /^node node-q \(pod execwatch-node-q\): nothing, not even a heartbeat, for 300ms; reconnecting in 100ms$/, 'said, naming the limit');
});

t.test('heartbeats keep a quiet stream open', async (t) => {
  const { agent, notices } = await setup(t);
  await eventually(() => agent.streamResumes.length === 1, 'connected');
  const beat = setInterval(() => agent.heartbeat(), 100);
  t.teardown(() => clearInterval(beat));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  t.equal(agent.streamResumes.length, 1, 'still the first connection after four idle limits');
  t.same(notices, [], 'nothing to say');
});

t.test('a node dropping its stream again and again leaves no listener behind per wait', async (t) => {
  // Abort listeners held now, by signal: a wait that added one and never removed it shows here.
  const held = new Map<EventTarget, number>();
  const { addEventListener, removeEventListener } = EventTarget.prototype;
  const count = (target: EventTarget, type: string, by: number) => {
    if (target instanceof AbortSignal && type === 'abort') held.set(target, (held.get(target) ?? 0) + by);
  };
  EventTarget.prototype.addEventListener = function (this: EventTarget, type: string, ...rest: [EventListenerOrEventListenerObject | null, AddEventListenerOptions?]) {
    count(this, type, 1);
    return addEventListener.call(this, type, ...rest);
  };
  EventTarget.prototype.removeEventListener = function (this: EventTarget, type: string, ...rest: [EventListenerOrEventListenerObject | null, EventListenerOptions?]) {
    count(this, type, -1);
    return removeEventListener.call(this, type, ...rest);
  };
  t.teardown(() => Object.assign(EventTarget.prototype, { addEventListener, removeEventListener }));
  const { agent } = await setup(t);
  await eventually(() => agent.streamResumes.length >= 12, 'twelve connections');
  t.ok(Math.max(0, ...held.values()) <= 2, `at most two abort listeners on any signal after eleven waits (${[...held.values()].join(', ')})`);
});
