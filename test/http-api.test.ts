// GET /api/events through inject: filters, limits, ordering, and a named 400 for bad input.
import t, { type Test } from 'tap';
import { buildApiApp } from '../src/http/api-app.js';
import { formatValidationError } from '../src/http/base.js';
import { pageDirectory } from '../src/http/page.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { eventRecord, type EventRecord } from '../src/events/record.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeGap, makeHostEvent, makeThrottle } from './helpers/events.js';

function setup(t: Test, store = new EventStore({ maxEvents: 20_000 })) {
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => undefined });
  const app = buildApiApp({ store, hub, logLevel: 'fatal' });
  t.teardown(() => app.close());
  return { app, store, hub };
}

async function getEvents(app: ReturnType<typeof buildApiApp>, query: string) {
  const res = await app.inject({ method: 'GET', url: `/api/events${query}` });
  return { status: res.statusCode, body: res.json() as { events: ExecEvent[]; error?: string; message?: string }, res };
}

// Fixed seqs 1..6, times one second apart from 2026-11-24T16:00:00Z.
const fixture = (): ExecEvent[] => [
  makeEvent({ seq: 1, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c', 'id'] }),
  makeEvent({ seq: 2, comm: 'curl', filename: '/usr/bin/curl', argv: ['curl', 'http://x'], uid: 0 }),
  makeEvent({ seq: 3, comm: 'nope', filename: '/nope', argv: ['nope'], retval: -2, pod: 'web-2' }),
  makeHostEvent({ seq: 4, comm: 'cron', filename: '/usr/sbin/cron', argv: ['cron', '-f'] }),
  makeEvent({ seq: 5, comm: 'curl', filename: '/usr/bin/curl', argv: ['curl', '--token', 'abc'], namespace: 'ops', container: 'tool' }),
  makeEvent({ seq: 6, comm: 'ls', filename: '/bin/ls', argv: ['ls', '/tmp'], parentExecId: 'x1', euid: 0, euidDiffers: true }),
].map((e, i) => ({ ...e, time: new Date(Date.UTC(2026, 10, 24, 16, 0, i)).toISOString() }));

t.test('filters, newest first', async (t) => {
  const { app, store } = setup(t);
  for (const e of fixture()) store.push(eventRecord(e));
  const cases = [
    { query: '', seqs: [6, 5, 4, 3, 2, 1] },
    { query: '?namespace=shop', seqs: [6, 3, 2, 1] },
    { query: '?namespace=ops&container=tool', seqs: [5] },
    { query: '?pod=web-2', seqs: [3] },
    { query: '?comm=curl', seqs: [5, 2] },
    { query: '?filename=bin/', seqs: [6, 5, 4, 2, 1] },
    { query: '?q=token', seqs: [5] },
    { query: '?q=%2Fusr', seqs: [5, 4, 2] },
    { query: '?result=failure', seqs: [3] },
    { query: '?result=success&comm=curl', seqs: [5, 2] },
    { query: '?uid=0', seqs: [2] },
    { query: '?euid=0', seqs: [6] },
    { query: '?euid=1000', seqs: [5, 4, 3, 2, 1] },
    { query: `?execId=${fixture()[1]?.execId}`, seqs: [2] },
    { query: '?parentExecId=x1', seqs: [6] },
    { query: '?since=2026-11-24T16:00:04Z', seqs: [6, 5] },
    { query: '?since=2026-11-24T17:00:03%2B01:00', seqs: [6, 5, 4] },
    { query: '?until=2026-11-24T16:00:03Z', seqs: [3, 2, 1] },
    { query: '?since=2026-11-24T16:00:03Z&until=2026-11-24T16:00:05Z', seqs: [5, 4] },
    { query: '?limit=2', seqs: [6, 5] },
    { query: '?comm=curl&limit=1', seqs: [5] },
    { query: '?comm=absent', seqs: [] },
  ] as const;
  for (const c of cases) {
    const { status, body } = await getEvents(app, c.query);
    t.equal(status, 200, `${c.query || '(none)'} → 200`);
    t.same(body.events.map((e) => e.seq), c.seqs, `${c.query || '(none)'} → ${c.seqs.join(',')}`);
  }
});

t.test('execs only by default; throttles and gaps with kind=', async (t) => {
  const { app, store } = setup(t);
  store.push(eventRecord(makeEvent({ seq: 1 })));
  store.push(eventRecord(makeThrottle({ seq: 2 })));
  store.push(eventRecord(makeGap({ seq: 3 })));
  const seqs = async (query: string) => (await getEvents(app, query)).body.events.map((e) => [e.seq, e.kind]);
  t.same(await seqs(''), [[1, 'exec']], 'without kind: the execs');
  t.same(await seqs('?kind=gap'), [[3, 'gap']], 'kind=gap');
  t.same(await seqs('?kind=exec,throttle,gap'), [[3, 'gap'], [2, 'throttle'], [1, 'exec']], 'several kinds, newest first');
  t.same((await getEvents(app, '?kind=throttle')).body.events[0], makeThrottle({ seq: 2 }), 'a throttle comes back whole');
  const bad = await getEvents(app, '?kind=exec,bogus');
  t.equal(bad.status, 400, 'an unknown kind: 400');
  t.match(bad.body.message, /querystring\/kind/, 'naming kind');
});

t.test('events come back whole, and are not cached', async (t) => {
  const { app, store } = setup(t);
  const event = makeEvent({ argv: ['echo', '<script>alert(1)</script>'], argvBase64: 'ZWNobwA=' });
  store.push(eventRecord(event));
  const { body, res } = await getEvents(app, '');
  t.same(body.events[0], event, 'every field of the event');
  t.equal(res.headers['cache-control'], 'no-store', 'argv may hold secrets: no-store');
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'JSON');
});

t.test('limit defaults to 100 and allows 10000', async (t) => {
  const { app, store } = setup(t);
  for (let seq = 1; seq <= 10_050; seq += 1) store.push(eventRecord(makeEvent({ seq })));
  const byDefault = await getEvents(app, '');
  t.equal(byDefault.body.events.length, 100, 'default 100');
  t.equal(byDefault.body.events[0]?.seq, 10_050, 'starting from the newest');
  const max = await getEvents(app, '?limit=10000');
  t.equal(max.body.events.length, 10_000, 'maximum 10000');
});

t.test('bad input → 400 naming the parameter', async (t) => {
  const { app } = setup(t);
  const cases = [
    { query: '?limit=abc', message: 'querystring/limit must be integer' },
    { query: '?limit=-1', message: 'querystring/limit must be >= 1' },
    { query: '?limit=0', message: 'querystring/limit must be >= 1' },
    { query: '?limit=1.5', message: 'querystring/limit must be integer' },
    { query: '?limit=10001', message: 'querystring/limit must be <= 10000' },
    { query: '?limit=99999999999999999999', message: 'querystring/limit must be <= 10000' },
    { query: '?limit=1&limit=2', message: 'querystring/limit must be integer' },
    { query: '?since=yesterday', message: 'querystring/since must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z' },
    { query: '?since=2026-11-24', message: 'querystring/since must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z' },
    { query: '?since=2026-11-24T16:00:00', message: 'querystring/since must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z' },
    { query: '?since=2026-02-30T16:00:00Z', message: 'querystring/since must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z' },
    { query: '?since=2016-12-31T23:59:60Z', message: 'querystring/since "2016-12-31T23:59:60Z" is not a representable time' },
    { query: '?until=tomorrow', message: 'querystring/until must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z' },
    { query: '?until=2016-12-31T23:59:60Z', message: 'querystring/until "2016-12-31T23:59:60Z" is not a representable time' },
    { query: '?foo=1', message: 'querystring/foo is not a known parameter' },
    { query: '?comm=sh&Limit=5', message: 'querystring/Limit is not a known parameter' },
    { query: '?after=3', message: 'querystring/after is not a known parameter' },
    { query: '?=5', message: 'querystring has a parameter with an empty name, which is not a known parameter' },
    { query: '?result=maybe', message: 'querystring/result must be one of: success, failure' },
    { query: '?result=', message: 'querystring/result must be one of: success, failure' },
    { query: '?uid=-1', message: 'querystring/uid must be >= 0' },
    { query: '?uid=root', message: 'querystring/uid must be integer' },
    { query: '?uid=4294967296', message: 'querystring/uid must be <= 4294967295' },
    { query: '?euid=-1', message: 'querystring/euid must be >= 0' },
    { query: '?execId=a%2Fb', message: 'querystring/execId must match pattern "^[A-Za-z0-9_.-]+$"' },
    { query: '?parentExecId=', message: 'querystring/parentExecId must NOT have fewer than 1 characters' },
    { query: '?namespace=', message: 'querystring/namespace must NOT have fewer than 1 characters' },
    { query: `?pod=${'p'.repeat(254)}`, message: 'querystring/pod must NOT have more than 253 characters' },
  ] as const;
  for (const c of cases) {
    const { status, body } = await getEvents(app, c.query);
    t.equal(status, 400, `${c.query.slice(0, 40)} → 400`);
    t.same(body, { error: 'Bad Request', message: c.message }, `${c.query.slice(0, 40)} → ${c.message}`);
  }
});

t.test('GET /api/processes/:execId: the exec with its exit, its ancestors, its children in the ring, its failed attempts', async (t) => {
  const { app, store } = setup(t);
  const exit = { time: '2026-11-24T16:00:09.000000000Z', status: 'error', code: 3, signal: null, coreDumped: false, duration: 9 } as const;
  const ancestors = [{ execId: 'x0', pid: 1, comm: 'init', filename: '/sbin/init', argv: ['/sbin/init'] }];
  const parent = makeEvent({ seq: 1, pid: 100, execId: 'p100', parentExecId: 'x0', ancestors, exit });
  const again = makeEvent({ seq: 2, pid: 100, execId: 'p100', parentExecId: 'x0', ancestors, comm: 'again', exit });
  const kids = [3, 4].map((seq) => makeEvent({ seq, pid: 200 + seq, execId: `c${seq}`, parentExecId: 'p100' }));
  const failedKid = makeEvent({ seq: 5, pid: 300, execId: 'c5', parentExecId: 'p100', retval: -2 });
  const failedSelf = makeEvent({ seq: 6, pid: 100, execId: 'p100', parentExecId: 'x0', retval: -13 });
  for (const e of [parent, again, ...kids, failedKid, failedSelf]) store.push(eventRecord(e));

  const res = await app.inject({ method: 'GET', url: '/api/processes/p100' });
  t.equal(res.statusCode, 200, '200');
  t.match(res.headers['content-type'], /^application\/json/, 'JSON');
  t.equal(res.headers['cache-control'], 'no-store', 'not cached');
  const body = res.json() as { exec: ExecEvent; ancestors: unknown[]; children: ExecEvent[]; session: ExecEvent[]; failed: ExecEvent[] };
  t.same(body.exec, again, 'the latest successful exec of the process, with its exit');
  t.same(body.failed, [failedSelf], 'its own failed exec attempt (not its child\'s)');
  t.same(body.ancestors, ancestors, 'its ancestors');
  t.same(body.children.map((c) => c.seq), [4, 3], 'its children\'s successful execs, newest first');
  t.same(body.session, [], 'no session: its origin is not exec or debug');

  const unknown = await app.inject({ method: 'GET', url: '/api/processes/nope' });
  t.equal(unknown.statusCode, 404, 'an id the ring does not hold → 404');
  t.same(unknown.json(), { error: 'Not Found', message: 'no exec of process nope in the recent events' }, 'saying so');
  // A kubectl exec session: the shell that entered, a command typed in it, and one of that.
  const shell = makeEvent({ seq: 10, pid: 500, execId: 's500', origin: 'exec', sessionExecId: 's500' });
  const typed = makeEvent({ seq: 11, pid: 501, execId: 's501', parentExecId: 's500', origin: 'exec', sessionExecId: 's500' });
  const deeper = makeEvent({ seq: 12, pid: 502, execId: 's502', parentExecId: 's501', origin: 'exec', sessionExecId: 's500' });
  for (const e of [shell, typed, deeper]) store.push(eventRecord(e));
  const opened = (await app.inject({ method: 'GET', url: '/api/processes/s500' })).json() as { session: ExecEvent[]; children: ExecEvent[] };
  t.same(opened.session.map((e) => e.seq), [12, 11, 10], 'the process that opened a session lists all of it, newest first');
  t.same(opened.children.map((e) => e.seq), [11], 'its children are its own only');
  const inside = (await app.inject({ method: 'GET', url: '/api/processes/s501' })).json() as { session: ExecEvent[] };
  t.same(inside.session, [], 'a process inside the session lists none (its sessionExecId names the opener)');
  const sessionQuery = await app.inject({ method: 'GET', url: '/api/events?sessionExecId=s500&origin=exec&origin=debug' });
  t.same((sessionQuery.json() as { events: ExecEvent[] }).events.map((e) => e.seq), [12, 11, 10], '?sessionExecId= with a repeated ?origin= lists it too');
  const oneOrigin = await app.inject({ method: 'GET', url: '/api/events?origin=exec' });
  t.same((oneOrigin.json() as { events: ExecEvent[] }).events.map((e) => e.seq), [12, 11, 10], 'one ?origin= is a list of one');
  const badOrigin = await app.inject({ method: 'GET', url: '/api/events?origin=shell' });
  t.equal(badOrigin.statusCode, 400, 'an unknown origin → 400');
  t.match(badOrigin.json(), { message: /querystring\/origin\/0 must be one of: host, init, workload, exec, probe, debug/ }, 'naming it');
  const badWorkload = await app.inject({ method: 'GET', url: '/api/events?workload=web' });
  t.equal(badWorkload.statusCode, 400, 'a workload without its kind → 400');
  t.match(badWorkload.json(), { message: /querystring\/workload must match pattern/ }, 'naming it');
  const bad = await app.inject({ method: 'GET', url: '/api/processes/a%2Cb' });
  t.equal(bad.statusCode, 400, 'not an execId → 400');
  t.same(bad.json(), { error: 'Bad Request', message: 'params/execId must match pattern "^[A-Za-z0-9_.-]+$"' }, 'naming it');
});

t.test('unknown routes → 404 with the error body', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/api/nothing?x=1' });
  t.equal(res.statusCode, 404, '404');
  t.same(res.json(), { error: 'Not Found', message: 'GET /api/nothing is not a route' }, 'names the route');
});

t.test('a failure inside a route → 500 without internals; other errors keep their status', async (t) => {
  class BrokenStore extends EventStore {
    override query(): EventRecord[] {
      throw new Error('secret internal detail');
    }
  }
  const { app } = setup(t, new BrokenStore({ maxEvents: 1 }));
  app.get('/teapot', async () => {
    throw Object.assign(new Error('short and stout'), { statusCode: 418 });
  });
  app.get('/odd', async () => {
    throw Object.assign(new Error('unusual'), { statusCode: 499 });
  });
  const broken = await getEvents(app, '');
  t.equal(broken.status, 500, '500');
  t.same(broken.body, { error: 'Internal Server Error', message: 'internal error' }, 'nothing leaked');
  const teapot = await app.inject({ method: 'GET', url: '/teapot' });
  t.same([teapot.statusCode, teapot.json()], [418, { error: "I'm a Teapot", message: 'short and stout' }], '4xx keeps its message');
  const odd = await app.inject({ method: 'GET', url: '/odd' });
  t.same([odd.statusCode, odd.json()], [499, { error: 'Error', message: 'unusual' }], 'a status without a name');
});

t.test('a validation error without a message still names the parameter', async (t) => {
  const message = formatValidationError(
    { keyword: 'x', instancePath: '/comm', schemaPath: '#', params: {}, message: undefined },
    'querystring',
  );
  t.equal(message, 'querystring/comm is invalid', 'fallback wording');
});

t.test('the page and its assets are served with a strict CSP', async (t) => {
  const { app } = setup(t);
  const cases = [
    { url: '/', type: 'text/html; charset=utf-8', contains: '<script type="module" src="app.js"></script>' },
    { url: '/app.js', type: 'text/javascript; charset=utf-8', contains: 'textContent' },
    { url: '/style.css', type: 'text/css; charset=utf-8', contains: 'tr.failed' },
    // The worker's own CSP is its response's: it may fetch from the agent only.
    { url: '/worker.js', type: 'text/javascript; charset=utf-8', contains: 'postMessage' },
  ] as const;
  for (const c of cases) {
    const res = await app.inject({ method: 'GET', url: c.url });
    t.equal(res.statusCode, 200, `${c.url} 200`);
    t.equal(res.headers['content-type'], c.type, `${c.url} type`);
    t.match(res.headers['content-security-policy'], /^default-src 'self'/, `${c.url} CSP`);
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${c.url} nosniff`);
    t.ok(res.body.includes(c.contains), `${c.url} body`);
  }
  t.equal((await app.inject({ method: 'GET', url: '/favicon.ico' })).statusCode, 204, 'favicon: empty, not 404');
  const html = (await app.inject({ method: 'GET', url: '/' })).body;
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  t.notMatch(html, /\sstyle=|<style/, 'no inline style');
  t.notMatch(html, /https?:\/\//, 'nothing fetched from elsewhere');
});

t.test('pageDirectory finds the page next to the module, else in the package src, else says where it looked', async (t) => {
  const dir = t.testdir({ built: { 'index.html': '<!doctype html>' }, empty: {} });
  const url = (p: string) => new URL(`file://${dir}/${p}/`);
  t.equal(pageDirectory([url('built'), url('empty')]), `${dir}/built/`, 'first candidate holding index.html');
  t.equal(pageDirectory([url('empty'), url('built')]), `${dir}/built/`, 'falls back to the next');
  t.throws(() => pageDirectory([url('empty')]), { message: `browse page files not found in ${dir}/empty/` }, 'names where it looked');
  t.match(pageDirectory(), /src\/http\/page\/$/, 'the default finds src/http/page');
});

t.test('buildApiApp accepts a page directory', async (t) => {
  const dir = t.testdir({ 'index.html': 'HELLO', 'app.js': '', 'format.js': '', 'table.js': '', 'panel.js': '', 'overview.js': '', 'view.js': '', 'worker.js': '', 'style.css': '' });
  const store = new EventStore({ maxEvents: 1 });
  const hub = new EventHub({ maxQueue: 1, onOverflow: () => undefined });
  const app = buildApiApp({ store, hub, logLevel: 'fatal', page: { directory: `${dir}/` } });
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/' })).body, 'HELLO', 'served from there');
});

t.test('request size limits: a body over 1 KiB gets 413, a URL over 16 KiB gets 431', async (t) => {
  const { app } = setup(t);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const big = await fetch(`${base}/api/events`, { method: 'POST', body: 'x'.repeat(2048), headers: { 'content-type': 'text/plain' } });
  t.equal(big.status, 413, 'body too large');
  t.match(await big.json(), { error: 'Payload Too Large' }, 'named');
  const small = await fetch(`${base}/api/events`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
  t.equal(small.status, 404, 'a small body still reaches routing: POST is not a route');
  await small.arrayBuffer();
  const long = await fetch(`${base}/api/events?q=${'a'.repeat(20_000)}`);
  t.equal(long.status, 431, 'URL beyond the header limit');
  await long.arrayBuffer();
  const ok = await fetch(`${base}/api/events?q=${'a'.repeat(4096)}`);
  t.equal(ok.status, 200, 'a 4 KiB filter, the most the schema allows, is fine');
  await ok.arrayBuffer();
});

t.test('no CORS: other origins get no grant, preflights are not answered', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/api/events', headers: { origin: 'https://evil.example' } });
  t.equal(res.statusCode, 403, 'another origin is refused (test/same-origin.test.ts)');
  t.equal(res.headers['access-control-allow-origin'], undefined, 'no Access-Control-Allow-Origin');
  const pre = await app.inject({
    method: 'OPTIONS',
    url: '/api/events',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
  });
  t.equal(pre.statusCode, 403, 'a preflight from another origin is refused too');
  t.equal(pre.headers['access-control-allow-origin'], undefined, 'no grant there either');
  const same = await app.inject({ method: 'OPTIONS', url: '/api/events', headers: { host: 'localhost:9465', origin: 'http://localhost:9465' } });
  t.equal(same.statusCode, 404, 'OPTIONS is not a route');
});
