// The query → predicate compiler shared by GET /api/events and the stream.
import t from 'tap';
import { compileFilter, FilterError, timeMs, type EventFilter } from '../src/events/filter.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';

const event = makeEvent({
  comm: 'curl',
  filename: '/usr/bin/curl',
  argv: ['curl', '-s', 'http://example/token'],
  uid: 1000,
  retval: 0,
  time: '2026-11-24T16:02:03.123456789Z',
});
const failed = makeEvent({ retval: -2 });
const host = makeHostEvent();

const cases: readonly { name: string; query: EventFilter; matches: boolean }[] = [
  { name: 'no filter', query: {}, matches: true },
  { name: 'namespace equal', query: { namespace: 'shop' }, matches: true },
  { name: 'namespace different', query: { namespace: 'shops' }, matches: false },
  { name: 'pod equal', query: { pod: 'web-1' }, matches: true },
  { name: 'pod prefix is not a match', query: { pod: 'web' }, matches: false },
  { name: 'container equal', query: { container: 'app' }, matches: true },
  { name: 'container different', query: { container: 'sidecar' }, matches: false },
  { name: 'comm equal', query: { comm: 'curl' }, matches: true },
  { name: 'comm substring is not a match', query: { comm: 'cur' }, matches: false },
  { name: 'filename substring', query: { filename: 'bin/cu' }, matches: true },
  { name: 'filename absent substring', query: { filename: 'wget' }, matches: false },
  { name: 'q in filename', query: { q: '/usr/bin' }, matches: true },
  { name: 'q in an argument', query: { q: 'token' }, matches: true },
  { name: 'q is case-sensitive', query: { q: 'TOKEN' }, matches: false },
  { name: 'q nowhere', query: { q: 'password' }, matches: false },
  { name: 'result success', query: { result: 'success' }, matches: true },
  { name: 'result failure', query: { result: 'failure' }, matches: false },
  { name: 'uid equal', query: { uid: 1000 }, matches: true },
  { name: 'uid different', query: { uid: 0 }, matches: false },
  { name: 'since before', query: { since: '2026-11-24T16:02:03Z' }, matches: true },
  { name: 'since equal to the nanosecond is inclusive', query: { since: '2026-11-24T16:02:03.123456Z' }, matches: true },
  { name: 'since a microsecond later', query: { since: '2026-11-24T16:02:03.123458Z' }, matches: false },
  { name: 'since in another zone, earlier', query: { since: '2026-11-24T17:02:03+01:00' }, matches: true },
  { name: 'since in another zone, later', query: { since: '2026-11-24T17:02:04+01:00' }, matches: false },
  { name: 'every filter at once', query: { namespace: 'shop', comm: 'curl', q: '-s', result: 'success', uid: 1000 }, matches: true },
  { name: 'one failing filter of many', query: { namespace: 'shop', comm: 'curl', uid: 1 }, matches: false },
];

t.test('each parameter narrows as documented', async (t) => {
  for (const c of cases) t.equal(compileFilter(c.query)(event), c.matches, c.name);
});

t.test('result failure matches a negative retval, pod filters never match host processes', async (t) => {
  t.equal(compileFilter({ result: 'failure' })(failed), true, 'failed exec is a failure');
  t.equal(compileFilter({ result: 'success' })(failed), false, 'failed exec is not a success');
  t.equal(compileFilter({ namespace: 'shop' })(host), false, 'host process has no namespace');
  t.equal(compileFilter({ container: 'app' })(host), false, 'host process has no container');
});

t.test('an event whose time cannot be parsed never passes a since filter', async (t) => {
  t.equal(compileFilter({ since: '2000-01-01T00:00:00Z' })(makeEvent({ time: 'garbage' })), false, 'excluded');
});

t.test('a schema-valid but unrepresentable since is a FilterError naming since', async (t) => {
  const err = t.throws(() => compileFilter({ since: '2016-12-31T23:59:60Z' }), FilterError, 'throws');
  t.equal((err as FilterError).parameter, 'since', 'names the parameter');
});

t.test('timeMs keeps sub-millisecond digits', async (t) => {
  const cases = [
    { time: '1970-01-01T00:00:00Z', ms: 0 },
    { time: '1970-01-01T00:00:00.000001Z', ms: 0.001 },
    { time: '1970-01-01t00:00:01.5z', ms: 1500 },
    { time: '1970-01-01T01:00:00+01:00', ms: 0 },
  ] as const;
  for (const c of cases) t.ok(Math.abs(timeMs(c.time) - c.ms) < 1e-6, `${c.time} → ${c.ms}`);
  t.ok(Number.isNaN(timeMs('yesterday')), 'NaN for text without a time');
});
