/**
 * The plugin's merge and output: the splitter of an agent's `{"events":[…]}` as it arrives, the
 * newest-N set, and how events (kinds it does not know included) are printed.
 */
import t from 'tap';
import { serializeEvent } from '../src/events/schema.js';
import { apiPortOf, apiErrorText, tokenSecretOf } from '../src/plugin/cluster.js';
import { formatMs } from '../src/plugin/collect.js';
import { EventArraySplitter, mergedOf, NewestEvents, newerFirst } from '../src/plugin/merge.js';
import { columns, failureLines, formatEvents, table } from '../src/plugin/output.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { rng } from './helpers/rng.js';
import { ApiException, type V1Pod } from '@kubernetes/client-node';

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
