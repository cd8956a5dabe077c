// The bounded recent-events ring: order, limits, filters, replay and both memory bounds.
import t from 'tap';
import { compileFilter } from '../src/events/filter.js';
import { RECORD_BYTES } from '../src/events/record.js';
import { CHUNK_BYTES, DEFAULT_MAX_BYTES, EventStore } from '../src/events/store.js';
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

t.test('a record is estimated at its JSON text plus a fixed overhead', async (t) => {
  for (const overrides of [{ argv: [] }, { argv: ['abcd'] }, { argvBase64: 'QUJD' }, { filenameBase64: 'QUJD' }, { filename: '/a/much/longer/file/name' }]) {
    const record = makeRecord(overrides);
    t.equal(record.bytes, RECORD_BYTES + record.json.length, JSON.stringify(overrides));
  }
});

t.test('after returns what the ring still holds after a seq, oldest first', async (t) => {
  const store = new EventStore({ maxEvents: 5 });
  for (let seq = 1; seq <= 8; seq += 1) store.push(makeRecord({ seq, comm: seq === 7 ? 'skip' : 'keep' }));
  t.same(seqs(store.after(5, all)), [6, 7, 8], 'after 5');
  t.same(seqs(store.after(5, compileFilter({ comm: 'keep' }))), [6, 8], 'filtered');
  t.same(seqs(store.after(0, all)), [4, 5, 6, 7, 8], 'older than the ring: everything held');
  t.same(store.after(8, all), [], 'nothing after the newest');
});

t.test('maxEvents must be a positive integer', async (t) => {
  for (const maxEvents of [0, -1, 1.5, Number.NaN] as const) {
    t.throws(() => new EventStore({ maxEvents }), RangeError, `rejects ${maxEvents}`);
  }
});

t.test('records handed out keep their text after the ring has moved past them', async (t) => {
  // About 20 kB each: a 1 MiB chunk holds ~50, so 400 pushes into a ring of 100 reuse chunks.
  const record = (seq: number) => makeRecord({ seq, argv: [`${seq}:`.padEnd(20_000, 'a')] });
  const store = new EventStore({ maxEvents: 100 });
  const texts = new Map<number, string>();
  for (let seq = 1; seq <= 100; seq += 1) {
    const r = record(seq);
    texts.set(seq, r.json);
    store.push(r);
  }
  const old = store.query(all, 100);
  const replay = store.after(50, all);
  for (let seq = 101; seq <= 500; seq += 1) store.push(record(seq));
  t.same(seqs(store.query(all, 1)), [500], 'the ring moved on');
  t.ok(old.every((r) => r.json === texts.get(r.seq)), 'every record of an earlier query reads its own text');
  t.ok(replay.every((r) => r.json === texts.get(r.seq)), 'so does a replay');
  t.equal(old.length + replay.length, 150, 'all of them');
});

t.test('the texts take a bounded number of chunks, reused', async (t) => {
  const store = new EventStore({ maxEvents: 100 });
  const text = 'b'.repeat(20_000);
  let highest = 0;
  for (let seq = 1; seq <= 5000; seq += 1) {
    store.push(makeRecord({ seq, argv: [text] }));
    highest = Math.max(highest, store.chunkBytes);
  }
  // 100 texts of ~20 kB are 2 MiB: the chunks they span, the one written to, and two spares.
  t.ok(highest <= 5 * CHUNK_BYTES, `at most 5 chunks (${highest / CHUNK_BYTES})`);
  t.same(seqs(store.query(all, 3)), [5000, 4999, 4998], 'the newest are held');
  t.equal(store.query(all, 1)[0]?.json, makeRecord({ seq: 5000, argv: [text] }).json, 'with their text');
});

t.test('a text longer than a chunk gets its own, which is not kept once evicted', async (t) => {
  const store = new EventStore({ maxEvents: 2 });
  const huge = makeRecord({ seq: 1, argv: ['h'.repeat(CHUNK_BYTES + 10)] });
  store.push(huge);
  t.ok(store.chunkBytes > CHUNK_BYTES, 'a chunk of its size');
  t.equal(store.query(all, 1)[0]?.json, huge.json, 'read back whole');
  store.push(makeRecord({ seq: 2 }));
  store.push(makeRecord({ seq: 3 }));
  store.push(makeRecord({ seq: 4 }));
  t.same(seqs(store.query(all, 10)), [4, 3], 'evicted');
  t.ok(store.chunkBytes <= 2 * CHUNK_BYTES, `its chunk is gone (${store.chunkBytes} bytes of chunks)`);
});

t.test('a ring polled many times while nothing new arrives keeps unread records readable', async (t) => {
  const store = new EventStore({ maxEvents: 60 });
  const record = (seq: number) => makeRecord({ seq, argv: [`${seq}:`.padEnd(20_000, 'c')] });
  for (let seq = 1; seq <= 60; seq += 1) store.push(record(seq));
  const unread = store.query(all, 60);
  // A page polling the idle ring: each answer is read and forgotten.
  for (let i = 0; i < 5000; i += 1) void store.query(all, 2)[1]?.json;
  for (let seq = 61; seq <= 300; seq += 1) store.push(record(seq));
  t.ok(unread.every((r) => r.json === record(r.seq).json), 'the records held since read their own text');
});

t.test('a ring of one holds the newest record and its text', async (t) => {
  const store = new EventStore({ maxEvents: 1 });
  for (let seq = 1; seq <= 3; seq += 1) store.push(makeRecord({ seq, comm: `c${seq}` }));
  t.same(store.query(all, 10).map((r) => [r.seq, r.comm, r.json]), [[3, 'c3', makeRecord({ seq: 3, comm: 'c3' }).json]], 'the last one');
});
