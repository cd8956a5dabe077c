// The events API's bearer token (--api-token-file): start-up errors, 401 vs 200 through inject and
// on a real port (the stream too), the page left public, rotation of the file, and a token that
// never reaches the log.
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../src/config.js';
import { ExcludedHistory } from '../src/events/excluded.js';
import { buildApiApp } from '../src/http/api-app.js';
import { bearerOf, openApiToken, sameToken, type ApiToken } from '../src/http/auth.js';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { makeEvent } from './helpers/events.js';
import { openSse } from './helpers/sse.js';

const TOKEN = 'tok-3f1c9a.Zx_~+/=';

/** A token file in a fresh directory, opened; warnings collected. */
async function tokenFile(t: Test, content = `${TOKEN}\n`) {
  const dir = t.testdir({ token: content });
  const path = join(dir, 'token');
  const warnings: string[] = [];
  const token = await openApiToken(path, { write: (line: string) => warnings.push(line) });
  return { dir, path, token, warnings };
}

/** A history as the agent answers with it: as of now. */
const historyNow = (history: ExcludedHistory) => ({ window: (since: number, until: number) => history.window(since, until, Date.now()) });

function setup(t: Test, token: ApiToken | null) {
  const store = new EventStore({ maxEvents: 100 });
  const hub = new EventHub({ maxQueue: 64, onOverflow: () => undefined });
  const logs: string[] = [];
  const app = buildApiApp({ store, hub, logLevel: 'trace', heartbeatMs: 60_000, token, logStream: { write: (line) => logs.push(line) }, excluded: historyNow(new ExcludedHistory(Date.now())) });
  t.teardown(() => app.close());
  return { app, store, hub, logs };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

t.test('a token file that cannot be used stops start-up, naming the flag', async (t) => {
  const dir = t.testdir({ empty: '', blank: ' \n\t\n', spaced: 'two words\n', accent: 'tökén\n', folder: {} });
  const cases = [
    { file: 'absent', problem: 'cannot be read (ENOENT)' },
    { file: 'folder', problem: 'cannot be read (EISDIR)' },
    { file: 'empty', problem: 'is empty' },
    { file: 'blank', problem: 'is empty' },
    { file: 'spaced', problem: 'holds characters an Authorization header cannot carry (visible ASCII only, no spaces)' },
    { file: 'accent', problem: 'holds characters an Authorization header cannot carry (visible ASCII only, no spaces)' },
  ] as const;
  for (const c of cases) {
    const path = join(dir, c.file);
    const err = await openApiToken(path, { write: () => true }).catch((e: unknown) => e);
    t.type(err, ConfigError, `${c.file}: a ConfigError (exit 2)`);
    t.equal((err as Error).message, `--api-token-file: ${JSON.stringify(path)} ${c.problem} (a readable file holding the token)`, `${c.file}: ${c.problem}`);
  }
});

t.test('the token is read trimmed', async (t) => {
  const { token } = await tokenFile(t, `\n  ${TOKEN}  \r\n`);
  t.equal(await token.current(), TOKEN, 'surrounding whitespace and newlines dropped');
});

t.test('Authorization header parsing and comparison', async (t) => {
  const cases = [
    [undefined, null],
    ['', null],
    [`Bearer ${TOKEN}`, TOKEN],
    [`bearer ${TOKEN}`, TOKEN],
    [`BEARER   ${TOKEN} `, TOKEN],
    [`Basic ${TOKEN}`, null],
    [`Bearer`, null],
    [`Bearer `, null],
    [`Bearer a b`, null],
    [`Bearer ${TOKEN}\u00e9`, null],
    [`${TOKEN}`, null],
  ] as const;
  for (const [header, want] of cases) t.equal(bearerOf(header), want, `${JSON.stringify(header)} → ${want}`);
  t.ok(sameToken(TOKEN, TOKEN), 'equal tokens match');
  t.notOk(sameToken(TOKEN, `${TOKEN}x`), 'a longer token does not');
  t.notOk(sameToken(TOKEN.slice(0, -1), TOKEN), 'a prefix does not');
  t.notOk(sameToken('', TOKEN), 'nothing does not');
});

t.test('with a token: the API routes answer 401 without it, 200 with it; the page stays public', async (t) => {
  const { token } = await tokenFile(t);
  const { app, store } = setup(t, token);
  store.push(eventRecord(makeEvent({ comm: 'secretive', argv: ['mysql', '-psecret'] })));
  const cases = [
    { url: '/api/events', headers: {}, status: 401, challenge: 'Bearer realm="execwatch"', message: /needs a token: send Authorization: Bearer <token>/ },
    { url: '/api/events', headers: bearer('wrong'), status: 401, challenge: 'Bearer realm="execwatch", error="invalid_token"', message: /not the one in --api-token-file/ },
    { url: '/api/events', headers: { authorization: `Basic ${TOKEN}` }, status: 401, challenge: 'Bearer realm="execwatch"', message: /needs a token/ },
    { url: '/api/events?comm=secretive', headers: bearer(TOKEN), status: 200 },
    { url: '/api/events', headers: { authorization: `bearer ${TOKEN}` }, status: 200 },
    { url: '/api/events?limit=nope', headers: {}, status: 401, challenge: 'Bearer realm="execwatch"', message: /needs a token/ },
    { url: '/api/events?limit=nope', headers: bearer(TOKEN), status: 400 },
    { url: '/api/events/stream', headers: {}, status: 401, challenge: 'Bearer realm="execwatch"', message: /needs a token/ },
    { url: '/api/events/stream', headers: bearer('wrong'), status: 401, challenge: 'Bearer realm="execwatch", error="invalid_token"', message: /not the one/ },
    { url: '/api/excluded', headers: {}, status: 401, challenge: 'Bearer realm="execwatch"', message: /needs a token/ },
    { url: '/api/excluded', headers: bearer(TOKEN), status: 200 },
    { url: '/', headers: {}, status: 200 },
    { url: '/app.js', headers: {}, status: 200 },
    { url: '/worker.js', headers: {}, status: 200 },
    { url: '/style.css', headers: {}, status: 200 },
    { url: '/api/nothing', headers: {}, status: 404 },
  ] as const;
  for (const c of cases) {
    const what = `${c.url} ${JSON.stringify(c.headers)}`;
    const res = await app.inject({ method: 'GET', url: c.url, headers: c.headers });
    t.equal(res.statusCode, c.status, `${what} → ${c.status}`);
    if (c.status !== 401) continue;
    t.equal(res.headers['www-authenticate'], c.challenge, `${what}: WWW-Authenticate`);
    t.equal(res.headers['cache-control'], 'no-store', `${what}: not cached`);
    const body = res.json() as { error: string; message: string };
    t.equal(body.error, 'Unauthorized', `${what}: the error body`);
    t.match(body.message, c.message, `${what}: says why`);
    t.notMatch(res.body, /secretive|mysql/, `${what}: no event leaks`);
  }
  const ok = await app.inject({ method: 'GET', url: '/api/events?comm=secretive', headers: bearer(TOKEN) });
  t.same(ok.json<{ events: { comm: string }[] }>().events.map((e) => e.comm), ['secretive'], 'the events with the token');
});

t.test('without a token the API is open (the default, on loopback)', async (t) => {
  const { app } = setup(t, null);
  t.equal((await app.inject({ method: 'GET', url: '/api/events' })).statusCode, 200, '/api/events');
  t.equal((await app.inject({ method: 'GET', url: '/api/events', headers: bearer('anything') })).statusCode, 200, 'a header is ignored');
});

t.test('on a real port: the list and the stream need the token; the stream delivers with it', async (t) => {
  const { token } = await tokenFile(t);
  const { app, store, hub } = setup(t, token);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const refused = await fetch(`${base}/api/events`);
  t.equal(refused.status, 401, 'list without the token: 401');
  t.equal(refused.headers.get('www-authenticate'), 'Bearer realm="execwatch"', 'with the challenge');
  await refused.arrayBuffer();
  const listed = await fetch(`${base}/api/events`, { headers: bearer(TOKEN) });
  t.equal(listed.status, 200, 'list with the token: 200');
  await listed.arrayBuffer();

  const noStream = await openSse(`${base}/api/events/stream`);
  t.equal(noStream.response.statusCode, 401, 'stream without the token: 401');
  t.equal(noStream.response.headers['www-authenticate'], 'Bearer realm="execwatch"', 'stream: the challenge');
  noStream.close();
  const wrongStream = await openSse(`${base}/api/events/stream`, bearer('wrong'));
  t.equal(wrongStream.response.statusCode, 401, 'stream with a wrong token: 401');
  wrongStream.close();
  t.equal(hub.count, 0, 'a refused stream subscribes nothing');

  const stream = await openSse(`${base}/api/events/stream`, bearer(TOKEN));
  t.equal(stream.response.statusCode, 200, 'stream with the token: 200');
  await stream.waitFor((f) => f.comment === 'connected');
  const event = makeEvent({ comm: 'streamed' });
  const record = eventRecord(event);
  store.push(record);
  hub.publish(record);
  const [frame] = await stream.waitFor((f) => f.event === 'exec');
  t.equal(frame?.id, String(event.seq), 'the event arrives');
  stream.close();
  await stream.ended;
});

t.test('rotation: the file is re-read when it changes, and a bad version refuses everyone', async (t) => {
  const { path, token, warnings } = await tokenFile(t, 'first-token');
  const { app } = setup(t, token);
  const status = async (tok: string) => (await app.inject({ method: 'GET', url: '/api/events', headers: bearer(tok) })).statusCode;
  t.equal(await status('first-token'), 200, 'the first token works');

  writeFileSync(path, 'second-token\n');
  t.equal(await status('second-token'), 200, 'rewritten in place: the new token works');
  t.equal(await status('first-token'), 401, 'and the old one no longer does');

  // Same length, written within the same clock tick: the size and mtime may not change, the inode does.
  writeFileSync(`${path}.new`, 'second-tokeN');
  renameSync(`${path}.new`, path);
  t.equal(await status('second-tokeN'), 200, 'replaced by rename: the new token works');
  t.equal(await status('second-token'), 401, 'the replaced one does not');

  writeFileSync(path, '');
  t.equal(await status('second-tokeN'), 401, 'emptied: nothing is accepted (fail closed)');
  t.equal(await status(''), 401, 'not even an empty token');
  t.equal(await status('x'), 401, 'nor anything else');
  unlinkSync(path);
  t.equal(await status('second-tokeN'), 401, 'deleted: still refused');
  t.same(
    warnings,
    [
      `execwatch: --api-token-file ${path} is empty: every events API request is refused until it holds a token\n`,
      `execwatch: --api-token-file ${path} cannot be read (ENOENT): every events API request is refused until it holds a token\n`,
    ],
    'one warning per bad version, without the token',
  );
  writeFileSync(path, 'third-token');
  t.equal(await status('third-token'), 200, 'written again: served again');
});

t.test('requests that see a change together share one read of the file, and one warning', async (t) => {
  const { path, token, warnings } = await tokenFile(t);
  const { app } = setup(t, token);
  writeFileSync(path, 'two words\n');
  const statuses = await Promise.all(
    Array.from({ length: 20 }, async () => (await app.inject({ method: 'GET', url: '/api/events', headers: bearer(TOKEN) })).statusCode),
  );
  t.same(statuses, Array.from({ length: 20 }, () => 401), 'every request is refused');
  t.same(
    warnings,
    [`execwatch: --api-token-file ${path} holds characters an Authorization header cannot carry (visible ASCII only, no spaces): every events API request is refused until it holds a token\n`],
    'the bad version is reported once',
  );
});

t.test('a request without a token is refused before the file is looked at', async (t) => {
  const { path, token, warnings } = await tokenFile(t);
  const { app } = setup(t, token);
  writeFileSync(path, '');
  t.equal((await app.inject({ method: 'GET', url: '/api/events' })).statusCode, 401, 'no token: 401');
  t.same(warnings, [], 'the emptied file was not read');
  t.equal((await app.inject({ method: 'GET', url: '/api/events', headers: bearer(TOKEN) })).statusCode, 401, 'a token: 401 too');
  t.equal(warnings.length, 1, 'that request read the file and reported it');
});

t.test('rotation of a Kubernetes Secret volume: the ..data symlink swap', async (t) => {
  // How the kubelet lays out a Secret volume: token → ..data/token, ..data → a timestamped dir.
  const dir = t.testdir({ '..2026_01_01': { token: 'old-secret\n' } });
  symlinkSync('..2026_01_01', join(dir, '..data'));
  symlinkSync('..data/token', join(dir, 'token'));
  const token = await openApiToken(join(dir, 'token'), { write: () => true });
  t.equal(await token.current(), 'old-secret', 'read through the symlinks');
  mkdirSync(join(dir, '..2026_01_02'));
  writeFileSync(join(dir, '..2026_01_02', 'token'), 'new-secret\n');
  symlinkSync('..2026_01_02', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, '..2026_01_01'), { recursive: true });
  t.equal(await token.current(), 'new-secret', 'the swapped Secret is used without a restart');
});

t.test('the token never reaches the log, even at trace level', async (t) => {
  const { token } = await tokenFile(t);
  const { app, logs } = setup(t, token);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  for (const headers of [bearer(TOKEN), bearer(`${TOKEN}-guess`), {}]) {
    const res = await fetch(`${base}/api/events`, { headers });
    await res.arrayBuffer();
  }
  t.ok(logs.length >= 6, `requests were logged (${logs.length} lines)`);
  t.notOk(logs.some((l) => l.includes('tok-3f1c9a')), 'neither the token nor a guess at it is in the log');
  t.notOk(logs.some((l) => /authorization/i.test(l)), 'nor the Authorization header');
});
