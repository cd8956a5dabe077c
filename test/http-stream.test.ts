// GET /api/events/stream on a real port: SSE framing, replay, heartbeats, slow clients, shutdown.
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { buildApiApp } from '../src/http/api-app.js';
import { END_GRACE_MS, responseSink } from '../src/http/events-routes.js';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeExit } from './helpers/events.js';
import { idleMetrics } from './helpers/metrics.js';
import { eventually } from './helpers/poll.js';
import { openSse, type SseFrame } from './helpers/sse.js';

async function setup(t: Test, opts: { maxQueue?: number; maxQueueBytes?: number; heartbeatMs?: number; maxStreams?: number } = {}) {
  const metrics = idleMetrics();
  const store = new EventStore({ maxEvents: 100 });
  const hub = new EventHub({ maxQueue: opts.maxQueue ?? 64, maxQueueBytes: opts.maxQueueBytes, onOverflow: () => metrics.lost('subscriber_overflow') });
  const app = buildApiApp({ store, hub, logLevel: 'fatal', heartbeatMs: opts.heartbeatMs ?? 60_000, maxStreams: opts.maxStreams });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const close = async () => {
    if (!closed) await app.close();
    closed = true;
  };
  t.teardown(close);
  const publish = (event: ExecEvent) => {
    const record = eventRecord(event);
    store.push(record);
    hub.publish(record);
  };
  const overflows = async () => {
    const json = await metrics.registry.getSingleMetric('execwatch_events_lost_total')!.get();
    return json.values.find((v) => v.labels.stage === 'subscriber_overflow')?.value;
  };
  return { app, base, store, hub, publish, close, overflows };
}

const isExec = (f: SseFrame) => f.event === 'exec';

async function waitUntil(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
const seqsOf = (frames: SseFrame[]) => frames.filter(isExec).map((f) => Number(f.id));

t.test('each event is one SSE frame: id = seq, event exec, data = the JSON', async (t) => {
  const { base, publish, hub } = await setup(t);
  const client = await openSse(`${base}/api/events/stream`);
  t.equal(client.response.statusCode, 200, '200');
  t.match(client.response.headers['content-type'], /^text\/event-stream/, 'event-stream');
  t.equal(client.response.headers['cache-control'], 'no-store', 'not cached');
  t.equal(client.response.headers['x-accel-buffering'], 'no', 'proxies told not to buffer');
  await client.waitFor((f) => f.comment === 'connected');
  t.equal(client.frames[0]?.retry, '3000', 'reconnect delay advertised');
  t.equal(hub.count, 1, 'subscribed');
  const event = makeEvent({ argv: ['sh', '-c', 'printf "a\\nb"'] });
  publish(event);
  const [frame] = await client.waitFor(isExec);
  t.equal(frame?.id, String(event.seq), 'id is the seq');
  t.same(JSON.parse(frame?.data ?? ''), event, 'data is the event');
  client.close();
  await client.ended;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(hub.count, 0, 'a client that leaves is unsubscribed');
});

t.test('the stream applies the same filters as the list', async (t) => {
  const { base, publish } = await setup(t);
  const client = await openSse(`${base}/api/events/stream?comm=curl&result=failure`);
  await client.waitFor((f) => f.comment === 'connected');
  const want = [
    makeEvent({ comm: 'curl', retval: -2 }),
    makeEvent({ comm: 'curl', retval: 0 }),
    makeEvent({ comm: 'sh', retval: -2 }),
    makeEvent({ comm: 'curl', retval: -13 }),
  ];
  for (const e of want) publish(e);
  const frames = await client.waitFor(isExec, 2);
  t.same(seqsOf(frames), [want[0]!.seq, want[3]!.seq], 'only failed curl execs');
  client.close();
});

t.test('Last-Event-ID and ?after= replay what the ring still holds', async (t) => {
  const { base, publish } = await setup(t);
  const events = Array.from({ length: 5 }, () => makeEvent());
  for (const e of events) publish(e);
  const [s1, s2, s3, s4, s5] = events.map((e) => e.seq) as [number, number, number, number, number];
  const cases = [
    { name: 'Last-Event-ID', url: '', headers: { 'last-event-id': String(s2) }, want: [s3, s4, s5] },
    { name: '?after=', url: `?after=${s3}`, headers: {}, want: [s4, s5] },
    { name: 'the header wins over ?after= (EventSource reconnects)', url: `?after=${s1}`, headers: { 'last-event-id': String(s4) }, want: [s5] },
    { name: 'filtered replay', url: `?after=${s1}&pod=none`, headers: {}, want: [] },
    { name: 'a Last-Event-ID that is not ours is ignored', url: '', headers: { 'last-event-id': 'abc' }, want: [] },
    // An agent that restarted counts from 1 again: its earlier run's ids are beyond what it has published.
    { name: 'a Last-Event-ID from an earlier run of the agent replays the whole ring', url: '', headers: { 'last-event-id': '999999' }, want: [s1, s2, s3, s4, s5] },
  ] as const;
  for (const c of cases) {
    const client = await openSse(`${base}/api/events/stream${c.url}`, c.headers);
    await client.waitFor((f) => f.comment === 'connected');
    // The live marker passes the case's filter, so its arrival proves the replay is complete.
    const marker = makeEvent(c.url.includes('pod=none') ? { pod: 'none' } : {});
    publish(marker);
    const frames = await client.waitFor((f) => f.id === String(marker.seq));
    t.ok(frames.length > 0, `${c.name}: live after replay`);
    // Markers of earlier cases are in the ring too; only the five fixture events are compared.
    const got = seqsOf(client.frames).filter((s) => s <= s5);
    t.same(got, c.want, c.name);
    client.close();
  }
});

t.test('GET /api/events says where the stream goes on (lastSeq), also when no event matches', async (t) => {
  const { app, base, hub, publish } = await setup(t);
  const asked = async (query: string) => (await app.inject({ method: 'GET', url: `/api/events${query}` })).json() as { events: ExecEvent[]; lastSeq: number };
  t.same(await asked(''), { events: [], lastSeq: 0 }, 'nothing delivered yet: 0');
  const before = makeEvent({ comm: 'curl' });
  const sh = makeEvent({ comm: 'sh' });
  publish(before);
  publish(sh);
  // An exit goes to the stream, not the ring: its seq counts all the same.
  const exit = makeExit({ seq: sh.seq + 1 });
  hub.publish(eventRecord(exit));
  const none = await asked('?comm=curl&since=2030-01-01T00:00:00Z');
  t.same(none, { events: [], lastSeq: exit.seq }, 'no curl exec in the window: no events, and the seq of the last event delivered');
  t.same((await asked('?comm=curl')).events.map((e) => e.seq), [before.seq], 'the curl exec before it is in the answer');
  // What a page or `kubectl execwatch ui` does: the stream from lastSeq on misses nothing after
  // the answer and replays nothing before it.
  const curl = makeEvent({ comm: 'curl', seq: exit.seq + 1 });
  publish(curl);
  const client = await openSse(`${base}/api/events/stream?comm=curl&after=${none.lastSeq}`);
  await client.waitFor(isExec);
  const later = makeEvent({ comm: 'curl' });
  publish(later);
  await client.waitFor((f) => f.id === String(later.seq));
  t.same(seqsOf(client.frames), [curl.seq, later.seq], 'the curl exec delivered between the answer and the stream, then the live one; not the one before');
  client.close();
});

t.test('a client gone while its token was checked holds no stream', async (t) => {
  const store = new EventStore({ maxEvents: 100 });
  const hub = new EventHub({ maxQueue: 64, onOverflow: () => {} });
  let release: (token: string) => void = () => {};
  const checked = new Promise<string>((resolve) => (release = resolve));
  let asked = 0;
  const token = {
    current: () => {
      asked += 1;
      return checked;
    },
  };
  const app = buildApiApp({ store, hub, logLevel: 'fatal', heartbeatMs: 60_000, token });
  t.teardown(() => app.close());
  const base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const socket = connect(Number(base.port), base.hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer right\r\n\r\n`);
  await waitUntil(() => asked === 1);
  socket.destroy();
  // The server has seen the connection close before the token check ends.
  await new Promise((resolve) => setTimeout(resolve, 100));
  release('right');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(hub.count, 0, 'no subscriber left behind');
});

t.test('heartbeat comments keep an idle stream alive', async (t) => {
  const { base } = await setup(t, { heartbeatMs: 30 });
  const client = await openSse(`${base}/api/events/stream`);
  const beats = await client.waitFor((f) => f.comment === 'keep-alive', 2);
  t.equal(beats.length, 2, 'two heartbeats within a short interval');
  client.close();
});

t.test('bad stream parameters → 400 naming them; limit is not a stream parameter', async (t) => {
  const { app } = await setup(t);
  const cases = [
    { query: '?limit=5', message: 'querystring/limit is not a known parameter' },
    { query: '?after=-1', message: 'querystring/after must be >= 0' },
    { query: '?result=nope', message: 'querystring/result must be one of: success, failure' },
    { query: '?since=2016-12-31T23:59:60Z', message: 'querystring/since "2016-12-31T23:59:60Z" is not a representable time' },
  ] as const;
  for (const c of cases) {
    const res = await app.inject({ method: 'GET', url: `/api/events/stream${c.query}` });
    t.equal(res.statusCode, 400, `${c.query} → 400`);
    t.same(res.json(), { error: 'Bad Request', message: c.message }, c.message);
  }
});

/** Opens a stream on a raw socket that never reads: the kernel buffers fill, then Node's. */
function stuckClient(base: string, path = '/api/events/stream'): Promise<Socket> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
  });
}

const bigEvent = () => makeEvent({ argv: ['x'.repeat(64 * 1024)] });

t.test('streams beyond --max-streams get 429 naming the flag; a closed one frees its place', async (t) => {
  const { base, hub } = await setup(t, { maxStreams: 2 });
  const first = await openSse(`${base}/api/events/stream`);
  const second = await openSse(`${base}/api/events/stream?comm=sh`);
  t.equal(hub.count, 2, 'two streams open');
  const refused = await fetch(`${base}/api/events/stream`);
  t.equal(refused.status, 429, 'the third is refused');
  t.equal(refused.headers.get('retry-after'), '5', 'with Retry-After');
  t.same(await refused.json(), {
    error: 'Too Many Requests',
    message: '2 streams are open already (--max-streams): close one or retry later',
  }, 'a message naming the flag');
  t.equal(hub.count, 2, 'the refused one holds nothing');
  const list = await fetch(`${base}/api/events`);
  t.equal(list.status, 200, 'the list is not capped');
  await list.arrayBuffer();
  first.close();
  await waitUntil(() => hub.count === 1);
  const third = await openSse(`${base}/api/events/stream`);
  t.equal(third.response.statusCode, 200, 'a place freed by a closed stream is taken again');
  second.close();
  third.close();
});

t.test('the default cap is 32 streams', async (t) => {
  const { base, hub } = await setup(t);
  const clients = [];
  for (let i = 0; i < 32; i += 1) clients.push(await openSse(`${base}/api/events/stream`));
  t.equal(hub.count, 32, '32 open');
  const refused = await fetch(`${base}/api/events/stream`);
  t.equal(refused.status, 429, 'the 33rd is refused');
  await refused.arrayBuffer();
  for (const c of clients) c.close();
});

t.test('a client that stops reading is cut off and counted; a reading one is not slowed', async (t) => {
  const { base, hub, publish, overflows } = await setup(t, { maxQueue: 16 });
  const stuck = await stuckClient(base);
  const fast = await openSse(`${base}/api/events/stream`);
  await eventually(() => hub.count === 2, 'both subscribed');
  let published = 0;
  let bytes = 0;
  // Publish in slices so the fast client's socket can drain between them, as capture would.
  while (hub.count === 2 && published < 2000) {
    for (let i = 0; i < 8; i += 1) {
      const event = bigEvent();
      publish(event);
      published += 1;
      bytes += event.argv[0]!.length;
    }
    await new Promise((r) => setImmediate(r));
  }
  t.equal(hub.count, 1, 'the stuck client was dropped');
  t.equal(await overflows(), 1, 'execwatch_events_lost_total{stage="subscriber_overflow"} = 1');
  t.ok(published < 2000, `cut off after ${published} events (${(bytes / 1e6).toFixed(1)} MB)`);
  const frames = await fast.waitFor(isExec, published, 20_000);
  t.equal(frames.length, published, 'the reading client received every event');
  const received = new Promise<number>((resolve) => {
    let n = 0;
    stuck.on('data', (chunk: Buffer) => (n += chunk.length));
    stuck.on('close', () => resolve(n));
  });
  stuck.resume();
  const got = await received;
  t.ok(got < bytes, `the stuck client's connection was closed after ${got} of ${bytes} bytes`);
  fast.close();
});

t.test('an open stream does not hold shutdown', async (t) => {
  const { base, hub, close } = await setup(t);
  const reading = await openSse(`${base}/api/events/stream`);
  await reading.waitFor((f) => f.comment === 'connected');
  const started = Date.now();
  await close();
  await reading.ended;
  t.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`);
  t.equal(hub.count, 0, 'subscribers let go');
});

t.test('even a client that stopped reading does not hold shutdown', async (t) => {
  const { app, base, hub, publish, close } = await setup(t, { maxQueue: 100_000, maxQueueBytes: Infinity });
  const serverSide: Socket[] = [];
  app.server.on('connection', (socket: Socket) => serverSide.push(socket));
  const stuck = await stuckClient(base);
  t.teardown(() => stuck.destroy());
  await eventually(() => hub.count === 1, 'subscribed');
  for (let i = 0; i < 200; i += 1) publish(bigEvent());
  await new Promise((r) => setTimeout(r, 50));
  t.equal(hub.count, 1, 'still subscribed: its queue is large');
  const [socket] = serverSide;
  t.ok(socket !== undefined && socket.writableLength > 0, 'the server holds unsent bytes for it');
  const dropped = new Promise<void>((resolve) => socket!.on('close', () => resolve()));
  const started = Date.now();
  await close();
  t.ok(Date.now() - started < 500, `close() returned in ${Date.now() - started} ms`);
  // The client never reads again: the server must drop the connection on its own.
  await dropped;
  const took = Date.now() - started;
  t.ok(took < 1500, `connection dropped after ${took} ms (at worst the 1 s grace period)`);
});

t.test('a response that cannot finish ending is destroyed after the grace period', async (t) => {
  /** A response whose end() never completes, as with a client that stopped reading. */
  class StuckResponse extends EventEmitter {
    calls: string[] = [];
    write = (): boolean => true;
    end = () => (this.calls.push('end'), this);
    destroy = () => (this.calls.push('destroy'), this.emit('close'), this);
  }
  const stuck = new StuckResponse();
  const started = Date.now();
  responseSink(stuck as never).close('shutdown');
  t.same(stuck.calls, ['end'], 'ended first');
  // The grace timer is unref'd (it must not keep the agent alive); this one keeps the test alive.
  const keepAlive = setTimeout(() => undefined, 5000);
  await new Promise<void>((resolve) => stuck.once('close', () => resolve()));
  clearTimeout(keepAlive);
  t.same(stuck.calls, ['end', 'destroy'], 'then destroyed');
  t.ok(Date.now() - started >= END_GRACE_MS - 50, `after the ${END_GRACE_MS} ms grace period`);
  const overflowing = new StuckResponse();
  responseSink(overflowing as never).close('overflow');
  t.same(overflowing.calls, ['destroy'], 'an overflowing subscriber is destroyed at once');
});
