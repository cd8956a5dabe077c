// The query → predicate compiler shared by GET /api/events and the stream.
import t from 'tap';
import { compileFilter, eventTimeOf, FilterError, repositoryOf, type EventFilter } from '../src/events/filter.js';
import { eventRecord } from '../src/events/record.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeExit, makeGap, makeHostEvent, makeThrottle } from './helpers/events.js';

/** Whether the query matches the event, as the ring and the stream apply it. */
const matches = (query: EventFilter, event: ExecEvent): boolean => compileFilter(query)(eventRecord(event));

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
  { name: 'image as the pod status names it', query: { image: 'registry.example/shop/web:1.4' }, matches: true },
  { name: 'image repository without the tag', query: { image: 'registry.example/shop/web' }, matches: true },
  { name: 'image with another tag', query: { image: 'registry.example/shop/web:1.5' }, matches: false },
  { name: 'image repository prefix is not a match', query: { image: 'registry.example/shop' }, matches: false },
  { name: 'workload as KIND/NAME', query: { workload: 'Deployment/web' }, matches: true },
  { name: 'workload of another kind', query: { workload: 'StatefulSet/web' }, matches: false },
  { name: 'workload of another name', query: { workload: 'Deployment/web-1' }, matches: false },
  { name: 'workload name with a slash kept whole', query: { workload: 'Deployment/web/x' }, matches: false },
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
  { name: 'attribution pod', query: { attribution: 'pod' }, matches: true },
  { name: 'attribution conflict', query: { attribution: 'conflict' }, matches: false },
  { name: 'drift false', query: { drift: false }, matches: true },
  { name: 'drift true', query: { drift: true }, matches: false },
  { name: 'uid equal', query: { uid: 1000 }, matches: true },
  { name: 'uid different', query: { uid: 0 }, matches: false },
  { name: 'since before', query: { since: '2026-11-24T16:02:03Z' }, matches: true },
  { name: 'since equal to the nanosecond is inclusive', query: { since: '2026-11-24T16:02:03.123456Z' }, matches: true },
  { name: 'since a microsecond later', query: { since: '2026-11-24T16:02:03.123458Z' }, matches: false },
  { name: 'since in another zone, earlier', query: { since: '2026-11-24T17:02:03+01:00' }, matches: true },
  { name: 'since in another zone, later', query: { since: '2026-11-24T17:02:04+01:00' }, matches: false },
  { name: 'until later', query: { until: '2026-11-24T16:02:04Z' }, matches: true },
  { name: 'until equal to the nanosecond is exclusive', query: { until: '2026-11-24T16:02:03.123456789Z' }, matches: false },
  { name: 'until a nanosecond later', query: { until: '2026-11-24T16:02:03.12345679Z' }, matches: true },
  { name: 'since and until around it', query: { since: '2026-11-24T16:02:03Z', until: '2026-11-24T16:02:04Z' }, matches: true },
  { name: 'euid equal', query: { euid: 1000 }, matches: true },
  { name: 'euid different', query: { euid: 0 }, matches: false },
  { name: 'execId equal', query: { execId: event.execId }, matches: true },
  { name: 'execId different', query: { execId: 'other' }, matches: false },
  { name: 'parentExecId equal', query: { parentExecId: event.parentExecId }, matches: true },
  { name: 'parentExecId different', query: { parentExecId: event.execId }, matches: false },
  { name: 'origin equal', query: { origin: ['workload'] }, matches: true },
  { name: 'origin among several', query: { origin: ['exec', 'workload'] }, matches: true },
  { name: 'origin different', query: { origin: ['exec', 'probe'] }, matches: false },
  { name: 'sessionExecId of no session', query: { sessionExecId: event.execId }, matches: false },
  { name: 'every filter at once', query: { namespace: 'shop', comm: 'curl', q: '-s', result: 'success', uid: 1000 }, matches: true },
  { name: 'one failing filter of many', query: { namespace: 'shop', comm: 'curl', uid: 1 }, matches: false },
];

t.test('each parameter narrows as documented', async (t) => {
  for (const c of cases) t.equal(matches(c.query, event), c.matches, c.name);
});

t.test('an image reference\'s repository: the tag and digest go, a registry port stays', async (t) => {
  t.equal(repositoryOf('docker.io/library/nginx:1.27'), 'docker.io/library/nginx', 'tag');
  t.equal(repositoryOf('docker.io/library/nginx@sha256:abc'), 'docker.io/library/nginx', 'digest');
  t.equal(repositoryOf('registry:5000/app:2@sha256:abc'), 'registry:5000/app', 'tag and digest, port kept');
  t.equal(repositoryOf('registry:5000/app'), 'registry:5000/app', 'no tag: a port is not one');
  t.equal(repositoryOf('nginx'), 'nginx', 'a bare name');
});

t.test('result failure matches a negative retval, pod filters never match host processes', async (t) => {
  t.equal(matches({ result: 'failure' }, failed), true, 'failed exec is a failure');
  t.equal(matches({ result: 'success' }, failed), false, 'failed exec is not a success');
  t.equal(matches({ namespace: 'shop' }, host), false, 'host process has no namespace');
  t.equal(matches({ container: 'app' }, host), false, 'host process has no container');
  t.equal(matches({ image: 'registry.example/shop/web' }, host), false, 'nor an image');
  t.equal(matches({ workload: 'Deployment/web' }, host), false, 'nor a workload');
});

t.test('an exit matches the parameters of its own fields; those of exec fields match execs only', async (t) => {
  const exit = eventRecord(makeExit({ pid: 4001, comm: 'true', time: '2026-11-24T16:02:05.000000000Z' }));
  const cases = [
    [{}, true],
    [{ execId: makeExit({ pid: 4001 }).execId }, true],
    [{ execId: 'other' }, false],
    [{ namespace: 'shop', pod: 'web-1', container: 'app', comm: 'true', attribution: 'pod' }, true],
    [{ workload: 'Deployment/web' }, true],
    [{ since: '2026-11-24T16:02:04Z' }, true],
    [{ until: '2026-11-24T16:02:05Z' }, false],
    [{ result: 'success' }, false],
    [{ filename: 'true' }, false],
    [{ q: 'true' }, false],
    [{ uid: 1000 }, false],
    [{ euid: 1000 }, false],
    [{ parentExecId: 'x' }, false],
    [{ drift: true }, false],
    [{ drift: false }, false],
  ] as const;
  for (const [query, want] of cases) t.equal(compileFilter(query)(exit), want, `${JSON.stringify(query)} → ${want}`);
});

t.test('a schema-valid but unrepresentable since is a FilterError naming since', async (t) => {
  const err = t.throws(() => compileFilter({ since: '2016-12-31T23:59:60Z' }), FilterError, 'throws');
  t.equal((err as FilterError).parameter, 'since', 'names the parameter');
  const late = t.throws(() => compileFilter({ until: '2016-12-31T23:59:60Z' }), FilterError, 'throws for until');
  t.equal((late as FilterError).parameter, 'until', 'names until');
});

t.test('since is written as event times are, so that the two compare as text', async (t) => {
  const cases = [
    { since: '1970-01-01T00:00:00Z', time: '1970-01-01T00:00:00.000000000Z' },
    { since: '1970-01-01T00:00:00.000001Z', time: '1970-01-01T00:00:00.000001000Z' },
    { since: '1970-01-01t00:00:01.5z', time: '1970-01-01T00:00:01.500000000Z' },
    { since: '1970-01-01T01:00:00+01:00', time: '1970-01-01T00:00:00.000000000Z' },
    { since: '2026-11-24T16:02:03.1234567891Z', time: '2026-11-24T16:02:03.123456790Z' },
    { since: '2026-11-24T16:02:03.9999999990Z', time: '2026-11-24T16:02:03.999999999Z' },
    { since: '2026-12-31T23:59:59.9999999999Z', time: '2027-01-01T00:00:00.000000000Z' },
  ] as const;
  for (const c of cases) t.equal(eventTimeOf(c.since), c.time, `${c.since} (digits past the nanosecond round up: since is inclusive)`);
  t.equal(eventTimeOf('yesterday'), null, 'null for text without a time');
  const at = makeEvent({ time: '2026-11-24T16:02:03.123456789Z' });
  t.equal(matches({ since: '2026-11-24T16:02:03.1234567889Z' }, at), true, 'a tenth of a nanosecond before');
  t.equal(matches({ since: '2026-11-24T16:02:03.1234567891Z' }, at), false, 'a tenth of a nanosecond after');
});

t.test('q and filename search the text as the strings hold it, whatever JSON escapes', async (t) => {
  const cases: readonly { name: string; filename?: string; argv: readonly string[]; query: { q?: string; filename?: string }; matches: boolean }[] = [
    { name: 'a quote', argv: ['echo', 'say "hi"'], query: { q: 'y "h' }, matches: true },
    { name: 'a quote absent', argv: ['echo', 'say hi'], query: { q: '"' }, matches: false },
    { name: 'a backslash', argv: ['grep', 'a\\.b'], query: { q: '\\.' }, matches: true },
    { name: 'a backslash absent', argv: ['grep', 'a.b'], query: { q: '\\' }, matches: false },
    { name: 'an escape is not its letter', argv: ['printf', 'a\nb'], query: { q: 'anb' }, matches: false },
    { name: 'n is not part of a newline', filename: '/x', argv: ['x', '\n'], query: { q: 'n' }, matches: false },
    { name: 'u00 is not part of a control character', argv: ['x', '\u0001'], query: { q: 'u0001' }, matches: false },
    { name: 'a newline', argv: ['sh', '-c', 'a\nb'], query: { q: 'a\nb' }, matches: true },
    { name: 'a control character', argv: ['x', 'a\u0001b'], query: { q: '\u0001' }, matches: true },
    { name: 'unicode', argv: ['echo', 'héllo 日本 😀'], query: { q: '日本 😀' }, matches: true },
    { name: 'unicode absent', argv: ['echo', 'hello'], query: { q: 'é' }, matches: false },
    { name: 'across two arguments', argv: ['ab', 'cd'], query: { q: 'bc' }, matches: false },
    { name: 'across two arguments, with the separator', argv: ['ab', 'cd'], query: { q: 'b","c' }, matches: false },
    { name: 'across two escaped arguments', argv: ['a\\', 'cd'], query: { q: '\\",' }, matches: false },
    { name: 'a comma between arguments', argv: ['ab', 'cd'], query: { q: ',' }, matches: false },
    { name: 'a comma in an argument', argv: ['ab', 'c,d'], query: { q: ',' }, matches: true },
    { name: 'a comma after an escape', argv: ['a\n', 'b'], query: { q: ',' }, matches: false },
    { name: 'the argv key', argv: ['ls'], query: { q: 'argv' }, matches: false },
    { name: 'a key of the JSON', argv: ['ls'], query: { q: 'cgroup' }, matches: false },
    { name: 'a bracket', argv: ['ls'], query: { q: '[' }, matches: false },
    { name: 'from the filename into argv', filename: '/bin/ab', argv: ['cd'], query: { q: 'abcd' }, matches: false },
    { name: 'an empty argv', argv: [], query: { q: 'x' }, matches: false },
    { name: 'an empty argument', argv: ['', ''], query: { q: '"' }, matches: false },
    { name: 'in the filename', filename: '/opt/x "y"/run', argv: ['run'], query: { q: 'x "y' }, matches: true },
    { name: 'filename: only the filename', argv: ['/usr/bin/true'], filename: '/bin/true', query: { filename: 'usr' }, matches: false },
    { name: 'filename: an escaped filename', filename: '/tmp/a\nb', argv: ['x'], query: { filename: 'a\nb' }, matches: true },
    { name: 'filename: an escape is not its letter', filename: '/tmp/a\nb', argv: ['anb'], query: { filename: 'anb' }, matches: false },
    { name: 'filename: not into argv', filename: '/bin/ls', argv: ['ls'], query: { filename: 'ls"' }, matches: false },
    { name: 'a lone surrogate', argv: ['😀'], query: { q: '\ud83d' }, matches: true },
    { name: 'a lone surrogate absent', argv: ['x'], query: { q: '\ud83d' }, matches: false },
    { name: 'a lone surrogate in the filename', filename: '/tmp/😀', argv: [], query: { filename: '\ude00' }, matches: true },
    { name: 'a NUL never joins two arguments', argv: ['a', 'b'], query: { q: 'a\u0000b' }, matches: false },
    { name: 'the comm is not searched', filename: '/bin/x', argv: ['x'], query: { q: 'true' }, matches: false },
    { name: 'the numbers are not searched', filename: '/bin/x', argv: ['x'], query: { q: '4000' }, matches: false },
    { name: 'the time is not searched', argv: ['x'], query: { q: '2026-11' }, matches: false },
  ];
  for (const c of cases) {
    const event = makeEvent({ filename: c.filename ?? '/usr/bin/true', argv: [...c.argv] });
    t.equal(matches(c.query, event), c.matches, c.name);
  }
});

t.test('sessionExecId: the events of one session', async (t) => {
  const inSession = makeEvent({ origin: 'exec', sessionExecId: 's1' });
  t.equal(matches({ sessionExecId: 's1' }, inSession), true, 'that session');
  t.equal(matches({ sessionExecId: 's2' }, inSession), false, 'another');
});

t.test('kind keeps the kinds it lists; a gap matches only since and kind', async (t) => {
  const exec = eventRecord(makeEvent({ time: '2026-11-24T16:02:03.000000000Z' }));
  const throttle = eventRecord(makeThrottle());
  const gap = eventRecord(makeGap());
  const cases = [
    [{ kind: 'exec' }, [true, false, false]],
    [{ kind: 'gap' }, [false, false, true]],
    [{ kind: 'exec,throttle,gap' }, [true, true, true]],
    [{ kind: 'throttle', namespace: 'shop', pod: 'web-1', comm: 'sh' }, [false, true, false]],
    [{ namespace: 'shop' }, [true, true, false]],
    [{ since: '2026-11-24T16:02:09Z' }, [false, true, true]],
    [{ result: 'success' }, [true, false, false]],
  ] as const;
  for (const [query, want] of cases) t.same([exec, throttle, gap].map(compileFilter(query)), want, `${JSON.stringify(query)} → exec, throttle, gap: ${want.join(', ')}`);
});
