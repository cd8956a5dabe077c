// Random query strings against both event routes: every answer is 200 or a 400 naming a parameter,
// never a 500 and never a hang. Seeded, so a failure names the query that reproduces it.
import t from 'tap';
import { buildApiApp } from '../src/http/api-app.js';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { rng } from './helpers/rng.js';

const KEYS = ['namespace', 'pod', 'container', 'comm', 'filename', 'q', 'result', 'uid', 'since', 'limit', 'after', 'x', '', '__proto__', 'constructor', 'limit[]', 'q.x', '%ZZ', 'since%00'];
const VALUES = [
  '', 'a', 'curl', 'success', 'failure', 'SUCCESS', '0', '-1', '1', '10000', '10001', '1.5', '1e3', '1e309', 'NaN', '0x10', ' 5', '5 ',
  '99999999999999999999', '4294967296', '2026-11-24T16:00:00Z', '2026-11-24T16:00:00.123456789+02:00', '2026-13-45T99:99:99Z',
  '1970-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2016-12-31T23:59:60Z', 'yesterday', '%', '%ZZ', '%00', '%C3%28', '%E2%82',
  '<script>alert(1)</script>', '..%2F..%2Fetc%2Fpasswd', 'ü', '😀', '\u0000', 'a'.repeat(5000), 'true', 'null', '[]', '{}',
];
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

function randomQuery(seed: number): string {
  const r = rng(seed);
  const parts: string[] = [];
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i += 1) {
    const key = pick(r, KEYS);
    const value = pick(r, VALUES);
    // Mostly encoded like a browser would, sometimes raw, sometimes key alone or repeated.
    const enc = r() < 0.7 ? encodeURIComponent(value) : value.replace(/[#&\s]/g, '');
    parts.push(r() < 0.1 ? key : `${key}=${enc}`);
    if (r() < 0.1) parts.push(`${key}=${enc}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function setup() {
  const store = new EventStore({ maxEvents: 100 });
  for (let i = 1; i <= 20; i += 1) store.push(eventRecord(i % 3 ? makeEvent({ seq: i, retval: i % 2 ? 0 : -2 }) : makeHostEvent({ seq: i })));
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => undefined });
  return { app: buildApiApp({ store, hub, logLevel: 'fatal' }), hub };
}

t.test('GET /api/events: 2000 random queries, each 200 or a named 400', async (t) => {
  const { app } = setup();
  t.teardown(() => app.close());
  const problems: string[] = [];
  const seen = new Set<number>();
  for (let seed = 1; seed <= 2000; seed += 1) {
    const query = randomQuery(seed);
    const res = await app.inject({ method: 'GET', url: `/api/events${query}` });
    seen.add(res.statusCode);
    const body = res.json() as { events?: unknown[]; error?: string; message?: string };
    if (res.statusCode === 200 && Array.isArray(body.events)) continue;
    if (res.statusCode === 400 && body.error === 'Bad Request' && /^querystring(\/\S+)? /.test(body.message ?? '')) continue;
    problems.push(`seed ${seed} ${query.slice(0, 120)} → ${res.statusCode} ${res.body.slice(0, 200)}`);
  }
  t.same(problems, [], 'no 5xx, no unnamed 400');
  t.same([...seen].sort(), [200, 400], 'both answers exercised');
});

t.test('GET /api/events/stream: 300 random queries, each opens (200) or is a named 400', async (t) => {
  const { app, hub } = setup();
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    hub.closeAll();
    await app.close();
  });
  const problems: string[] = [];
  const seen = new Set<number>();
  for (let seed = 5001; seed <= 5300; seed += 1) {
    const query = randomQuery(seed);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 5000);
    try {
      const res = await fetch(`${base}/api/events/stream${query}`, { signal: abort.signal });
      seen.add(res.status);
      if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/event-stream')) {
        abort.abort();
        continue;
      }
      const body = (await res.json()) as { error?: string; message?: string };
      if (res.status === 400 && /^querystring(\/\S+)? /.test(body.message ?? '')) continue;
      problems.push(`seed ${seed} ${query.slice(0, 120)} → ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    } catch (err) {
      problems.push(`seed ${seed} ${query.slice(0, 120)} → ${String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
  t.same(problems, [], 'no 5xx, no hang');
  t.same([...seen].sort(), [200, 400], 'both answers exercised');
});
