// The bounded recent-events ring: order, limits, filters, replay and both memory bounds.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { compileFilter } from '../src/events/filter.js';
import { RECORD_BYTES, textBytes, type EventRecord } from '../src/events/record.js';
import { DEFAULT_MAX_BYTES, EventStore, type Replay } from '../src/events/store.js';
import { makeRecord } from './helpers/events.js';

const all = () => true;
const seqs = (events: { seq: number }[]) => events.map((e) => e.seq);

t.test('query returns the newest first, up to limit, filtered', async (t) => {
  const store = new EventStore({ maxEvents: 10 });
  for (let seq = 1; seq <= 5; seq += 1) store.push(makeRecord({ seq, comm: seq % 2 ? 'odd' : 'even' }));
  t.same(seqs(store.query(all, 100)), [5, 4, 3, 2, 1], 'newest first');
  t.same(seqs(store.query(all, 2)), [5, 4], 'limit keeps the newest');
  t.same(seqs(store.query(compileFilter({ comm: 'odd' }), 2)), [5, 3], 'limit counts matches only');
  t.same(store.query(compileFilter({ comm: 'none' }), 10), [], 'nothing matches');
  t.equal(store.size, 5, 'size');
});

t.test('the ring keeps only the newest maxEvents', async (t) => {
  const store = new EventStore({ maxEvents: 3 });
  for (let seq = 1; seq <= 7; seq += 1) store.push(makeRecord({ seq }));
  t.same(seqs(store.query(all, 10)), [7, 6, 5], 'oldest evicted');
  t.equal(store.size, 3, 'size capped');
  t.equal(store.bytes, store.query(all, 10).reduce((sum, r) => sum + r.bytes, 0), 'bytes follow evictions');
});

t.test('the byte budget bounds memory whatever the argv sizes', async (t) => {
  const big = (seq: number) => makeRecord({ seq, argv: ['x'.repeat(100_000)] });
  const store = new EventStore({ maxEvents: 10_000, maxBytes: 350_000 });
  for (let seq = 1; seq <= 50; seq += 1) store.push(big(seq));
  t.equal(store.size, 3, 'only three 100 kB events fit in 350 kB');
  t.ok(store.bytes <= 350_000, `bytes ${store.bytes} within budget`);
  t.same(seqs(store.query(all, 10)), [50, 49, 48], 'the newest are kept');
  const lone = new EventStore({ maxEvents: 10, maxBytes: 10 });
  lone.push(big(1));
  lone.push(big(2));
  t.same(seqs(lone.query(all, 10)), [2], 'an event above the whole budget still keeps the newest');
});

t.test('the default byte budget applies when none is given', async (t) => {
  const store = new EventStore({ maxEvents: 1000 });
  const huge = 'y'.repeat(DEFAULT_MAX_BYTES / 4);
  for (let seq = 1; seq <= 10; seq += 1) store.push(makeRecord({ seq, argv: [huge] }));
  t.equal(store.size, 3, 'three quarter-budget events fit, not four');
});

t.test('the byte budget bounds the heap the ring holds, whatever the characters', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const budget = 8 * 1024 * 1024;
  for (const [what, char] of [['Latin-1 argv', 'é'], ['CJK argv (two bytes a character in V8)', '中']] as const) {
    gc();
    const before = process.memoryUsage().heapUsed;
    let store: EventStore | undefined = new EventStore({ maxEvents: 10_000, maxBytes: budget });
    for (let seq = 1; seq <= 4_000; seq += 1) store.push(makeRecord({ seq, argv: ['app', char.repeat(4_000 + seq)] }));
    gc();
    const held = process.memoryUsage().heapUsed - before;
    t.ok(held <= budget * 1.1, `${what}: ${(held / 2 ** 20).toFixed(1)} MiB held for a ${budget / 2 ** 20} MiB budget`);
    t.ok(held >= budget * 0.8, `${what}: and the estimate does not waste the budget (${store.size} records kept)`);
    store = undefined;
  }
});

t.test('a record is estimated at its JSON text plus a fixed overhead', async (t) => {
  for (const overrides of [{ argv: [] }, { argv: ['abcd'] }, { argvBase64: 'QUJD' }, { filenameBase64: 'QUJD' }, { filename: '/a/much/longer/file/name' }]) {
    const record = makeRecord(overrides);
    t.equal(record.bytes, RECORD_BYTES + textBytes(record.json), JSON.stringify(overrides));
  }
  t.equal(textBytes('ab\u00ff'), 3, 'Latin-1 text: a byte a character');
  t.equal(textBytes('ab\u0100'), 6, 'one wider character: two bytes for every character');
});

/** Everything a replay yields until it is done (or the ring overtakes it). */
function drain(replay: Replay): (number | 'evicted')[] {
  const out: (number | 'evicted')[] = [];
  for (let record = replay.next(); record !== undefined; record = record === 'evicted' ? undefined : replay.next()) {
    out.push(record === 'evicted' ? record : record.seq);
  }
  return out;
}

t.test('replay yields what the ring holds after a seq, oldest first, up to the newest at its start', async (t) => {
  const store = new EventStore({ maxEvents: 5 });
  t.same(drain(store.replay(0, all)), [], 'an empty ring: nothing');
  for (let seq = 1; seq <= 8; seq += 1) store.push(makeRecord({ seq, comm: seq === 7 ? 'skip' : 'keep' }));
  t.same(drain(store.replay(5, all)), [6, 7, 8], 'after 5');
  t.same(drain(store.replay(5, compileFilter({ comm: 'keep' }))), [6, 8], 'filtered');
  t.same(drain(store.replay(6, compileFilter({ comm: 'skip' }))), [7], 'filtered: done after the last match');
  t.same(drain(store.replay(0, all)), [4, 5, 6, 7, 8], 'older than the ring: everything held, no complaint');
  t.same(drain(store.replay(8, all)), [], 'nothing after the newest');
  const started = store.replay(6, all);
  store.push(makeRecord({ seq: 9 }));
  t.same(drain(started), [7, 8], 'what arrives after it started is the live stream\'s, not the replay\'s');
});

t.test('a replay that the ring overtakes says so instead of holding evicted records', async (t) => {
  const store = new EventStore({ maxEvents: 4 });
  for (let seq = 1; seq <= 4; seq += 1) store.push(makeRecord({ seq }));
  const slow = store.replay(0, all);
  t.equal((slow.next() as EventRecord).seq, 1, 'first record');
  store.push(makeRecord({ seq: 5 }));
  t.equal((slow.next() as EventRecord).seq, 2, 'the next one is still held');
  store.push(makeRecord({ seq: 6 }));
  store.push(makeRecord({ seq: 7 }));
  t.equal(slow.next(), 'evicted', 'seq 3 was evicted before it was sent');
});

t.test('update replaces a held record in place, and says when the ring no longer holds it', async (t) => {
  const store = new EventStore({ maxEvents: 3, maxBytes: 10_000 });
  for (let seq = 1; seq <= 4; seq += 1) store.push(makeRecord({ seq, comm: 'old' }));
  t.equal(store.update(1, () => makeRecord({ seq: 1 })), false, 'an evicted seq: false');
  t.equal(store.update(9, () => makeRecord({ seq: 9 })), false, 'a seq never held: false');
  t.equal(store.update(3, (held) => makeRecord({ seq: held.seq, comm: 'new' })), true, 'a held one: true');
  t.same(store.query(all, 10).map((r) => [r.seq, r.comm]), [[4, 'old'], [3, 'new'], [2, 'old']], 'replaced in its place');
  t.equal(store.bytes, store.query(all, 10).reduce((sum, r) => sum + r.bytes, 0), 'bytes follow');
  store.update(4, () => makeRecord({ seq: 4, argv: ['x'.repeat(9000)] }));
  t.same(store.query(all, 10).map((r) => r.seq), [4], 'a grown record that breaks the byte budget evicts the oldest');
});

t.test('maxEvents must be a positive integer', async (t) => {
  for (const maxEvents of [0, -1, 1.5, Number.NaN] as const) {
    t.throws(() => new EventStore({ maxEvents }), RangeError, `rejects ${maxEvents}`);
  }
});
