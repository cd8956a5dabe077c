// The live-subscriber hub: SSE frames, bounded queues, overflow, replay, heartbeats, shutdown.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { EventHub, HEARTBEAT, sseFrame, type CloseReason, type Sink } from '../src/events/stream.js';
import { eventRecord, type EventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { makeEvent, makeExit, makeRecord } from './helpers/events.js';

/** A transport that accepts `room` chunks before reporting itself full. */
class FakeSink implements Sink {
  chunks: string[] = [];
  closed: CloseReason | null = null;
  constructor(public room = Infinity) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return this.chunks.length < this.room;
  }
  close(reason: CloseReason): void {
    this.closed = reason;
  }
  /** seqs of the exec frames received. */
  get seqs(): number[] {
    return this.chunks.filter((c) => c.startsWith('id: ')).map((c) => Number(/^id: (\d+)/.exec(c)?.[1]));
  }
}

const all = () => true;

t.test('an SSE frame carries the seq as id and the event as one data line', async (t) => {
  const event = makeEvent({ seq: 42, argv: ['sh', '-c', 'echo a\nb\r\nc'] });
  const frame = sseFrame(eventRecord(event));
  const lines = frame.split('\n');
  t.equal(lines[0], 'id: 42', 'id line');
  t.equal(lines[1], 'event: exec', 'event name');
  t.same(JSON.parse((lines[2] as string).slice('data: '.length)), event, 'data is the event JSON');
  t.ok(frame.endsWith('\n\n') && lines.length === 5, 'newlines in argv stay escaped in one data line');
});

t.test('an exit\'s frame is named exit', async (t) => {
  const frame = sseFrame(eventRecord({ ...makeExit(), seq: 43 }));
  t.match(frame, /^id: 43\nevent: exit\ndata: \{"seq":43,"kind":"exit",/, 'event: exit');
});

t.test('publish reaches matching subscribers only, in order', async (t) => {
  let overflows = 0;
  const hub = new EventHub({ maxQueue: 4, onOverflow: () => (overflows += 1) });
  const everything = new FakeSink();
  const curlOnly = new FakeSink();
  hub.subscribe(all, everything);
  hub.subscribe((e) => e.comm === 'curl', curlOnly);
  t.equal(hub.count, 2, 'two subscribers');
  hub.publish(makeRecord({ seq: 1, comm: 'sh' }));
  hub.publish(makeRecord({ seq: 2, comm: 'curl' }));
  t.same(everything.seqs, [1, 2], 'unfiltered gets both');
  t.same(curlOnly.seqs, [2], 'filtered gets curl only');
  t.equal(overflows, 0, 'no overflow');
});

t.test('a full transport queues up to maxQueue, then resumes in order on drain', async (t) => {
  const hub = new EventHub({ maxQueue: 3, onOverflow: () => t.fail('must not overflow') });
  const sink = new FakeSink(1);
  const sub = hub.subscribe(all, sink);
  for (let seq = 1; seq <= 4; seq += 1) hub.publish(makeRecord({ seq }));
  t.same(sink.seqs, [1], 'only the first was written before the transport filled');
  sink.room = Infinity;
  sub.drained();
  t.same(sink.seqs, [1, 2, 3, 4], 'queued frames flushed in order');
  hub.publish(makeRecord({ seq: 5 }));
  t.same(sink.seqs, [1, 2, 3, 4, 5], 'live again after the drain');
});

t.test('a drain that fills the transport again keeps the rest queued', async (t) => {
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => t.fail('must not overflow') });
  const sink = new FakeSink(1);
  const sub = hub.subscribe(all, sink);
  for (let seq = 1; seq <= 5; seq += 1) hub.publish(makeRecord({ seq }));
  sink.room = 3;
  sub.drained();
  t.same(sink.seqs, [1, 2, 3], 'stopped when full again');
  sink.room = Infinity;
  sub.drained();
  t.same(sink.seqs, [1, 2, 3, 4, 5], 'the rest followed');
});

t.test('a subscriber that falls behind is cut off and counted, others unaffected', async (t) => {
  let overflows = 0;
  const hub = new EventHub({ maxQueue: 2, onOverflow: () => (overflows += 1) });
  const slow = new FakeSink(1);
  const fast = new FakeSink();
  hub.subscribe(all, slow);
  hub.subscribe(all, fast);
  for (let seq = 1; seq <= 10; seq += 1) hub.publish(makeRecord({ seq }));
  t.equal(slow.closed, 'overflow', 'slow subscriber closed for overflow');
  t.equal(overflows, 1, 'counted once');
  t.equal(hub.count, 1, 'only the fast one remains');
  t.same(fast.seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the fast one got everything');
  t.same(slow.seqs, [1], 'the slow one got nothing more after its transport filled');
});

t.test('a subscriber is also cut off by the bytes it has waiting, whatever their count', async (t) => {
  let overflows = 0;
  const big = (seq: number) => makeRecord({ seq, argv: ['x'.repeat(10_000)] });
  const bytes = big(1).bytes;
  const hub = new EventHub({ maxQueue: 1000, maxQueueBytes: 3 * bytes, onOverflow: () => (overflows += 1) });
  const slow = new FakeSink(1);
  hub.subscribe(all, slow);
  for (let seq = 1; seq <= 4; seq += 1) hub.publish(big(seq));
  t.equal(slow.closed, null, 'three large frames wait within the byte bound');
  hub.publish(big(5));
  t.same([slow.closed, overflows], ['overflow', 1], 'a fourth one waiting would exceed it: cut off and counted');
  // The bytes are given back as frames leave the queue.
  const steady = new EventHub({ maxQueue: 1000, maxQueueBytes: 2 * bytes, onOverflow: () => t.fail('must not overflow') });
  const sink = new FakeSink(1);
  const sub = steady.subscribe(all, sink);
  for (let seq = 1; seq <= 13; seq += 1) {
    steady.publish(big(seq));
    if (seq % 2 === 1) {
      sink.room = sink.chunks.length + 2;
      sub.drained();
    }
  }
  t.equal(sink.closed, null, 'a subscriber that keeps draining is never cut off');
});

t.test('an event is serialized once, at delivery, however many subscribers receive it', async (t) => {
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => undefined });
  const sinks = Array.from({ length: 50 }, () => new FakeSink());
  for (const sink of sinks) hub.subscribe((r) => r.comm === 'true', sink);
  let reads = 0;
  const event = makeEvent({ seq: 7 });
  const argv = event.argv;
  Object.defineProperty(event, 'argv', { enumerable: true, get: () => ((reads += 1), argv) });
  const record = eventRecord(event);
  t.equal(reads, 1, 'argv read once, to build the record');
  hub.publish(record);
  t.equal(reads, 1, 'publishing reads the event no more');
  t.ok(sinks.every((s) => s.seqs[0] === 7 && s.chunks[0] === sinks[0]?.chunks[0]), 'every subscriber got the same frame');
  t.same(JSON.parse((sinks[0]?.chunks[0] as string).split('\n')[2]?.slice('data: '.length) as string), event, 'the frame carries the event');

  // Framed once for all of them (the text read once), and not at all when none matches.
  let framed = 0;
  const counted = (seq: number, comm: string): EventRecord => {
    const r = makeRecord({ seq, comm });
    return Object.defineProperty({ ...r }, 'json', { get: () => ((framed += 1), r.json) });
  };
  hub.publish(counted(8, 'true'));
  t.equal(framed, 1, 'one frame for 50 subscribers');
  t.ok(sinks.every((s) => s.seqs[1] === 8), 'and every one got it');
  hub.publish(counted(9, 'false'));
  t.equal(framed, 1, 'no frame when no subscriber matches');
});

/** A ring holding records of these seqs. */
function ringOf(seqs: number[], maxEvents = 16): EventStore {
  const store = new EventStore({ maxEvents });
  for (const seq of seqs) store.push(makeRecord({ seq }));
  return store;
}

t.test('replay is written before live events and is not bounded by the queue', async (t) => {
  const hub = new EventHub({ maxQueue: 1, onOverflow: () => t.fail('must not overflow') });
  const sink = new FakeSink(2);
  const store = ringOf([1, 2, 3, 4]);
  const sub = hub.subscribe(all, sink, store.replay(0, all));
  t.same(sink.seqs, [1, 2], 'replay written until the transport filled');
  const live = makeRecord({ seq: 5 });
  store.push(live);
  hub.publish(live);
  t.same(sink.seqs, [1, 2], 'live event waits behind the replay');
  sink.room = Infinity;
  sub.drained();
  t.same(sink.seqs, [1, 2, 3, 4, 5], 'replay then live, in order, each once');
  const idle = new FakeSink();
  hub.subscribe(all, idle, ringOf([1]).replay(0, all));
  hub.publish(makeRecord({ seq: 6 }));
  t.same(idle.seqs, [1, 6], 'a replay that fit lets live events straight through');
});

t.test('a replaying client holds no record the ring has let go of', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let overflows = 0;
  const hub = new EventHub({ maxQueue: 100, onOverflow: () => (overflows += 1) });
  const store = new EventStore({ maxEvents: 4 });
  const first = new WeakRef(makeRecord({ seq: 1, argv: ['x'.repeat(100_000)] }));
  store.push(first.deref() as EventRecord);
  for (let seq = 2; seq <= 4; seq += 1) store.push(makeRecord({ seq }));
  const sink = new FakeSink(1);
  const sub = hub.subscribe(all, sink, store.replay(0, all));
  t.same(sink.seqs, [1], 'the replay started');
  for (let seq = 5; seq <= 7; seq += 1) {
    const record = makeRecord({ seq });
    store.push(record);
    hub.publish(record);
  }
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  t.equal(first.deref(), undefined, 'an evicted record is collected while a slow client is replaying');
  sink.room = Infinity;
  sub.drained();
  t.same(sink.seqs, [1], 'seqs 2 and 3 were evicted before they were sent: nothing more is written');
  t.equal(sink.closed, 'overflow', 'the client is cut off as one that fell behind, to resume with Last-Event-ID');
  t.equal(overflows, 1, 'and counted');
  t.equal(hub.count, 0, 'no longer a subscriber');
  const gone = new FakeSink(1);
  const ring = ringOf([1, 2]);
  const left = hub.subscribe(all, gone, ring.replay(0, all));
  left.unsubscribe();
  for (let seq = 3; seq <= 20; seq += 1) ring.push(makeRecord({ seq }));
  gone.room = Infinity;
  left.drained();
  t.equal(overflows, 1, 'a client that already left is not counted');
});

t.test('heartbeats go only to subscribers that are keeping up', async (t) => {
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => undefined });
  const idle = new FakeSink();
  const full = new FakeSink(1);
  const filling = new FakeSink(1);
  hub.subscribe(all, idle);
  hub.subscribe(all, full, ringOf([1]).replay(0, all));
  hub.subscribe((e) => e.seq === 2, filling);
  hub.heartbeat();
  t.same(idle.chunks, [HEARTBEAT], 'idle subscriber gets a comment');
  t.same(full.chunks.length, 1, 'a full transport gets nothing more');
  t.same(filling.chunks, [HEARTBEAT], 'heartbeat written');
  hub.heartbeat();
  t.same(filling.chunks, [HEARTBEAT], 'a heartbeat that filled the transport waits for drain');
  t.match(HEARTBEAT, /^:.*\n\n$/, 'a heartbeat is an SSE comment');
});

t.test('closeAll and unsubscribe let go of subscribers', async (t) => {
  let overflows = 0;
  const hub = new EventHub({ maxQueue: 10, onOverflow: () => (overflows += 1) });
  const a = new FakeSink();
  const b = new FakeSink();
  const subA = hub.subscribe(all, a);
  hub.subscribe(all, b);
  subA.unsubscribe();
  subA.unsubscribe();
  t.equal(hub.count, 1, 'unsubscribe is idempotent');
  hub.closeAll();
  t.equal(b.closed, 'shutdown', 'remaining subscriber closed for shutdown');
  t.equal(a.closed, null, 'an unsubscribed one is not closed by the hub');
  t.equal(hub.count, 0, 'none left');
  t.equal(overflows, 0, 'shutdown is not an overflow');
  hub.publish(makeRecord());
  t.same(b.seqs, [], 'nothing published after close');
});
