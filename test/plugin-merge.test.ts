/**
 * The plugin's merge and output: the splitter of an agent's `{"events":[…]}` as it arrives, the
 * newest-N set, and how events (kinds it does not know included) are printed.
 */
import { Readable } from 'node:stream';
import t from 'tap';
import { serializeEvent } from '../src/events/schema.js';
import { apiPortOf, apiErrorText, tokenSecretOf } from '../src/plugin/cluster.js';
import { collectEvents, firstShare, formatMs } from '../src/plugin/collect.js';
import type { Agent } from '../src/plugin/cluster.js';
import type { AgentClient } from '../src/plugin/forward.js';
import { EventArraySplitter, mergedOf, NewestEvents, newerFirst } from '../src/plugin/merge.js';
import { columns, failureLines, formatEvents, table } from '../src/plugin/output.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { rng } from './helpers/rng.js';
import { ApiException, type V1Pod } from '@kubernetes/client-node';

const T_MS = Date.UTC(2026, 11, 6, 12, 0, 0);

t.test('the splitter gives each event\'s text, whatever the chunks cut', async (t) => {
  const events = [
    makeEvent({ argv: ['sh', '-c', 'echo "}{]["; x=\\"y\\"'] }),
    makeEvent({ argv: ['{', '}', '\\', '"'], filename: '/tmp/a"b' }),
    makeHostEvent({ argv: [] }),
  ].map((e) => serializeEvent(e));
  const body = `{"events":[${events.join(',')}]}`;
  for (const size of [1, 2, 7, 64, body.length]) {
    const splitter = new EventArraySplitter();
    const found: string[] = [];
    for (let i = 0; i < body.length; i += size) found.push(...splitter.push(body.slice(i, i + size)));
    t.same(found, events, `chunks of ${size} characters: the three events exactly`);
  }
  t.same(new EventArraySplitter().push('{"events":[]}'), [], 'an empty answer has none');
});

t.test('the splitter reads the answer\'s lastSeq after the events, whatever the chunks cut', async (t) => {
  // An event (of a kind this plugin does not know) holding the same key: only the answer's counts.
  const body = `{"events":[{"seq":1,"kind":"future","x":{"lastSeq":7}}],"lastSeq":1234}`;
  for (const size of [1, 5, body.length]) {
    const splitter = new EventArraySplitter();
    for (let i = 0; i < body.length; i += size) {
      splitter.push(body.slice(i, i + size));
      if (i + size < body.length) t.equal(splitter.lastSeq, undefined, `chunks of ${size}: not before the answer's end`);
    }
    t.equal(splitter.lastSeq, 1234, `chunks of ${size}: the answer's, not the one inside an event`);
  }
  const none = new EventArraySplitter();
  none.push('{"events":[],"lastSeq":0}');
  t.equal(none.lastSeq, 0, 'no events: still where the stream goes on');
  const older = new EventArraySplitter();
  older.push('{"events":[]}');
  t.equal(older.lastSeq, undefined, 'an agent that does not send it: undefined');
  const proxy = new EventArraySplitter();
  proxy.push(`<html>${'x'.repeat(100_000)}"lastSeq":5}`);
  t.equal(proxy.lastSeq, 5, 'another body is read through, keeping only its end');
});

t.test('NewestEvents keeps the newest N of any order of offers, and says when a source can stop', async (t) => {
  const random = rng(7);
  const all = Array.from({ length: 500 }, (_, i) =>
    mergedOf(serializeEvent(makeEvent({ seq: i + 1, node: `node-${Math.floor(random() * 5)}`, time: `2026-12-06T12:00:${String(Math.floor(random() * 60)).padStart(2, '0')}.000000000Z` })), 'x'),
  );
  const newest = new NewestEvents(37);
  for (const event of all) newest.offer(event);
  t.equal(newest.size, 37, 'holds at most N');
  t.same(newest.sorted().map((e) => e.json), [...all].sort(newerFirst).slice(0, 37).map((e) => e.json), 'exactly the newest 37, newest first');
  const oldest = [...all].sort(newerFirst).at(-1);
  t.equal(newest.offer(oldest as (typeof all)[number]), false, 'an event older than all kept is refused');
});

t.test('kinds this plugin does not know pass through JSON and show plainly in tables', async (t) => {
  const exit = mergedOf('{"seq":9,"kind":"exit","time":"2026-12-06T12:00:01.000000000Z","node":"node-2","pid":42,"exitCode":1}', 'node-2');
  const exec = mergedOf(serializeEvent(makeEvent({ node: 'node-1', time: '2026-12-06T12:00:00.000000000Z', retval: -2, argv: ['x'.repeat(100)] })), 'node-1');
  const unattributed = mergedOf(serializeEvent(makeEvent({ node: 'node-1', pod: null, namespace: null, container: null, attribution: 'conflict' })), 'node-1');
  const json = JSON.parse(formatEvents([exit, exec], [{ node: 'node-3', pod: null, reason: 'gone' }], 'json')) as { events: unknown[]; failures: unknown[] };
  t.same(json.events[0], { seq: 9, kind: 'exit', time: '2026-12-06T12:00:01.000000000Z', node: 'node-2', pid: 42, exitCode: 1 }, 'an exit event passes through as sent');
  t.same(json.failures, [{ node: 'node-3', pod: null, reason: 'gone' }], 'failures in the JSON');
  t.equal(formatEvents([exit], [], 'jsonl'), `${exit.json}\n`, 'jsonl: the text as sent');
  const rows = table([exit, exec, unattributed], false).split('\n');
  t.match(rows[1], /^2026-12-06T12:00:01\.000Z\s+node-2\s+-\s+42\s+-\s+-\s+exit$/, 'an exit row: its time, node, pid and kind');
  t.match(rows[2], /ENOENT$/, 'a failed exec shows its errno name');
  t.match(rows[2], /x{78}…/, 'long argv is cut in a table');
  t.match(rows[3], /container:3f1c00000000\(conflict\)/, 'a conflict names no pod');
  t.equal(formatEvents([], [], 'table'), '', 'no events: no table');
  t.equal(columns([['A', 'BB'], ['CCC', 'D']]), 'A     BB\nCCC   D', 'columns three spaces apart');
  t.same(failureLines([{ node: 'b', pod: 'p', reason: 'r' }, { node: 'a', pod: null, reason: 's' }]), ['node a: s', 'node b (pod p): r'], 'failures by node');
});

t.test('odd events still print', async (t) => {
  const bare = mergedOf('{}', 'node-9');
  t.same([bare.kind, bare.node, bare.time, bare.seq], ['exec', 'node-9', '', 0], 'an event without kind, node, time or seq: exec of the agent\'s node');
  const noContainer = mergedOf(serializeEvent(makeEvent({ container: null })), 'n');
  t.match(table([noContainer], false), /shop\/web-1\/\?/, 'a pod without a container name');
  const unknownPod = mergedOf(serializeEvent(makeEvent({ pod: null, namespace: null, container: null, attribution: 'unresolved', retval: -4095 })), 'n');
  const row = table([unknownPod, mergedOf('{"kind":"gap","time":"later","node":"n"}', 'n')], false).split('\n');
  t.match(row[1], /container:3f1c00000000\s.*errno 4095$/, 'a container whose pod is unknown; an errno without a name');
  t.match(row[2], /^later\s+n\s+-\s+-\s+-\s+-\s+gap$/, 'a gap: its time as sent, dashes, its kind');
  t.equal(formatMs(2000), '2s', 'whole seconds');
  t.equal(formatMs(1500), '1500ms', 'else milliseconds');
});

const PORT_CASES = [
  { args: ['--api-address=127.0.0.1:9999'], port: 9999 },
  { args: ['--api-address', '[::1]:8080', '--log-events'], port: 8080 },
  { args: ['--api-address'], port: 9465 },
  { args: [], port: 9465 },
] as const;

t.test('the agent\'s API port comes from its pod\'s arguments', async (t) => {
  for (const { args, port } of PORT_CASES) {
    const pod: V1Pod = { spec: { containers: [{ name: 'execwatch', args: [...args] }] } };
    t.equal(apiPortOf(pod), port, `${args.join(' ') || 'no arguments'}: ${port}`);
  }
  t.equal(apiPortOf({}), 9465, 'a pod without a spec: the default');
  t.equal(apiPortOf({ spec: { containers: [{ name: 'execwatch' }] } }), 9465, 'a container without arguments: the default');
  const mounted = (secret: object): V1Pod => ({ spec: { containers: [], volumes: [{ name: 'api-token', secret }] } });
  t.same(tokenSecretOf(mounted({ secretName: 's', items: [{ key: 'k', path: 'token' }] })), { name: 's', key: 'k' }, 'the Secret and the key the chart mounts');
  t.same(tokenSecretOf(mounted({ secretName: 's' })), { name: 's', key: 'token' }, 'a Secret mounted whole: its key "token"');
  t.equal(tokenSecretOf(mounted({})), null, 'no Secret name: no token');
  t.equal(apiErrorText(new ApiException(500, 'x', 'not json', {})), 'HTTP 500', 'an API error without a Status body: its code');
  t.equal(apiErrorText(new ApiException(403, 'x', JSON.stringify({ message: 'pods is forbidden' }), {})), 'HTTP 403: pods is forbidden', 'with one: its message');
  t.equal(apiErrorText(new Error('connect ECONNREFUSED')), 'connect ECONNREFUSED', 'a connection error: its message');
});

/**
 * A stand-in for AgentClient: each node's events (newest first) answered from memory, with the
 * node's `lastSeqs` entry as its lastSeq (none: as an agent that does not send it); queries recorded.
 */
function memoryClient(nodes: Record<string, readonly string[]>, fail: (node: string, call: number) => boolean = () => false, lastSeqs: Record<string, number> = {}) {
  const asked: { node: string; query: URLSearchParams }[] = [];
  const client = {
    async get(agent: Agent, path: string) {
      const query = new URL(path, 'http://agent').searchParams;
      asked.push({ node: agent.node, query });
      if (fail(agent.node, asked.filter((a) => a.node === agent.node).length)) throw new Error('connection reset');
      const events = (nodes[agent.node] ?? []).slice(0, Number(query.get('limit')));
      const last = lastSeqs[agent.node];
      return Object.assign(Readable.from([`{"events":[${events.join(',')}]${last === undefined ? '' : `,"lastSeq":${last}`}}`]), { statusCode: 200 });
    },
  };
  return { client: client as unknown as AgentClient, asked };
}

const agentOf = (node: string): Agent => ({ node, namespace: 'execwatch', pod: `execwatch-${node}`, port: 9465, tokenSecret: null });
const eventsOf = (node: string, count: number, newestMs: number) =>
  Array.from({ length: count }, (_, k) => serializeEvent(makeEvent({ node, seq: count - k, time: new Date(newestMs - k * 1000).toISOString().replace('Z', '000000Z') })));

t.test('the second round asks again only the nodes that may hold more', async (t) => {
  // Round one (a share of 67 each) leaves the set short of 100: node-a, which filled its share, is asked for 100.
  const short = memoryClient({ 'node-a': eventsOf('node-a', 80, T_MS), 'node-b': eventsOf('node-b', 5, T_MS), 'node-c': eventsOf('node-c', 5, T_MS) });
  const agents = ['node-a', 'node-b', 'node-c'].map(agentOf);
  const got = await collectEvents(short.client, agents, { query: { limit: '100' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 2 });
  t.equal(got.events.length, 90, 'every event of the three nodes, none twice');
  t.same(short.asked.map((a) => `${a.node}:${a.query.get('limit')}:${a.query.get('since')}`), ['node-a:67:null', 'node-b:67:null', 'node-c:67:null', 'node-a:100:null'], 'node-a asked again, for the limit');

  // 20 nodes, limit 20 (a share of 10): node-00's events are the newest of all, so only it is asked again, since the set's oldest.
  const nodes = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`node-${String(i).padStart(2, '0')}`, eventsOf(`node-${String(i).padStart(2, '0')}`, 30, i === 0 ? T_MS + 3_600_000 : T_MS - i * 100)]));
  const many = memoryClient(nodes);
  const all = Object.keys(nodes).map(agentOf);
  const merged = await collectEvents(many.client, all, { query: { limit: '20', since: '2026-01-01T00:00:00Z' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 32 });
  t.same(merged.events.map((e) => e.node), Array(20).fill('node-00'), 'the newest 20 are node-00\'s');
  const again = many.asked.slice(20);
  t.same(again.map((a) => a.node), ['node-00'], 'only node-00 is asked again');
  // After round one the set's oldest is the 10th newest of the other nodes: node-10's newest.
  t.equal(again[0]?.query.get('since'), new Date(T_MS - 1000).toISOString().replace('Z', '000000Z'), 'since the set\'s oldest after round one (later than --since)');

  const later = memoryClient(nodes);
  await collectEvents(later.client, all, { query: { limit: '20', since: '2027-01-01T00:00:00Z' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 32 });
  t.equal(later.asked[20]?.query.get('since'), '2027-01-01T00:00:00.000000000Z', 'a --since later than the set\'s oldest stays');

  const failing = memoryClient(nodes, (node, call) => node === 'node-00' && call === 2);
  const partial = await collectEvents(failing.client, all, { query: { limit: '20' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 32 });
  t.same(partial.failures, [{ node: 'node-00', pod: 'execwatch-node-00', reason: 'connection reset' }], 'a node failing in the second round is named');
  t.equal(partial.answered, 20, 'and still counts as one that answered (its first answer is in the merge)');
  const down = await collectEvents(memoryClient(nodes, () => true).client, all.slice(0, 2), { query: { limit: '20' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 32 });
  t.equal(down.answered, 0, 'none answered');
  t.equal(firstShare(1000, 0), 1000, 'no nodes: the share is the limit');
});

t.test('each node\'s stream resumes after its agent\'s lastSeq, one with no matching events too', async (t) => {
  const nodes = { 'node-a': eventsOf('node-a', 3, T_MS), 'node-b': [], 'node-c': eventsOf('node-c', 2, T_MS), 'node-d': [] };
  // node-a delivered 9 events, 3 of them matching; node-b 4 and none matching; node-c's and
  // node-d's agents are of a version that does not say.
  const { client } = memoryClient(nodes, () => false, { 'node-a': 9, 'node-b': 4 });
  const got = await collectEvents(client, Object.keys(nodes).map(agentOf), { query: { limit: '100' }, tokens: new Map(), timeoutMs: 1000, maxParallel: 4 });
  t.same(
    Object.fromEntries(got.resumeSeqs),
    { 'node-a': 9, 'node-b': 4, 'node-c': 2 },
    'the lastSeq each agent answered; without one, the newest seq read; a node with neither has no cursor (its stream is live from when it opens)',
  );
});
