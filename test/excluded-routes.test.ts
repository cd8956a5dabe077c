// GET /api/excluded: the counts of the events left out on purpose in a window, by reason, with the
// whole minutes counted; a bad time named in the 400.
import t, { type Test } from 'tap';
import { ExcludedHistory } from '../src/events/excluded.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { buildApiApp } from '../src/http/api-app.js';
import type { ExcludedSource } from '../src/http/excluded-routes.js';

const M = 60_000;

function setup(t: Test, excluded?: ExcludedSource) {
  const store = new EventStore({ maxEvents: 1 });
  const hub = new EventHub({ maxQueue: 1, onOverflow: () => undefined });
  const app = buildApiApp({ store, hub, logLevel: 'fatal', ...(excluded ? { excluded } : {}) });
  t.teardown(() => app.close());
  return app;
}

t.test('the counts of a window, by reason, over the whole minutes it overlaps', async (t) => {
  const now = Date.now();
  const minute = now - (now % M);
  const history = new ExcludedHistory(minute - 10 * M);
  history.add('namespace', 4, minute - 5 * M + 1);
  history.add('origin', 1, minute - 2 * M);
  history.add('pod', 2, now);
  const app = setup(t, { window: (since, until) => history.window(since, until, Date.now()) });
  const all = await app.inject({ method: 'GET', url: '/api/excluded' });
  t.equal(all.statusCode, 200, '200');
  t.match(all.json(), { from: new Date(minute - 10 * M).toISOString(), excluded: { host: 0, namespace: 4, pod: 2, origin: 1 } }, 'everything kept: from the first minute counted');
  t.equal(all.headers['cache-control'], 'no-store', 'never cached');
  const since = new Date(minute - 5 * M + 30_000).toISOString();
  const until = new Date(minute - 2 * M).toISOString();
  t.same((await app.inject({ method: 'GET', url: `/api/excluded?since=${since}&until=${until}` })).json(), {
    from: new Date(minute - 5 * M).toISOString(), to: until, excluded: { host: 0, namespace: 4, pod: 0, origin: 0 },
  }, 'since within a minute counts it whole; until is exclusive');
  const bad = await app.inject({ method: 'GET', url: '/api/excluded?until=2026-12-31T23:59:60Z' });
  t.equal(bad.statusCode, 400, 'a leap second passes the format but is no time');
  t.match(bad.json(), { message: 'querystring/until "2026-12-31T23:59:60Z" is not a representable time' }, 'named');
  t.equal((await app.inject({ method: 'GET', url: '/api/excluded?kind=x' })).statusCode, 400, 'an unknown parameter is refused');
});

t.test('what the source read before answering is counted, even in a minute begun after the request came', async (t) => {
  const start = Date.now();
  const history = new ExcludedHistory(start - 10 * M);
  // The request comes at the end of a minute and the read of the kernel's counts lands in the next.
  const app = setup(t, {
    window(since, until) {
      const read = Date.now() + M;
      history.add('pod', 2, read);
      return history.window(since, until, read);
    },
  });
  const body = (await app.inject({ method: 'GET', url: '/api/excluded' })).json() as { to: string; excluded: { pod: number } };
  t.equal(body.excluded.pod, 2, 'the execs the read counted are in the answer');
  t.ok(Date.parse(body.to) > start + M - (start % M), 'and its span reaches into that minute');
});

t.test('no history given: no route', async (t) => {
  t.equal((await setup(t).inject({ method: 'GET', url: '/api/excluded' })).statusCode, 404, '404');
});
