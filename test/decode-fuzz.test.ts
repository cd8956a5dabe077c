// Hostile or corrupt ring-buffer bytes never crash the decoder: random, mutated and truncated
// batches either decode into well-formed events or are counted as malformed. Seeded, so a failure
// names the case that reproduces it.
import t from 'tap';
import { decodeBatch, type DecodeContext } from '../src/capture/decode.js';
import { serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { decodeContext } from './helpers/decode-context.js';
import { encodeBatch, encodeRecord } from './helpers/records.js';
import { rng } from './helpers/rng.js';

const ctx = (): DecodeContext => decodeContext('fuzz', 1_700_000_000_000_000_000n);

/** Decodes and checks every event is something the API, stream and page can take. */
function decodeChecked(batch: Buffer): { events: ExecEvent[]; malformed: number; problem: string | null } {
  const events: ExecEvent[] = [];
  let malformed = 0;
  try {
    malformed = decodeBatch(batch, ctx(), (e) => events.push(e as ExecEvent)).malformed;
  } catch (err) {
    return { events, malformed, problem: `threw ${String(err)}` };
  }
  for (const e of events) {
    if (!Array.isArray(e.argv) || e.argv.some((a) => typeof a !== 'string')) return { events, malformed, problem: 'argv not strings' };
    if (Number.isNaN(Date.parse(e.time))) return { events, malformed, problem: `bad time ${e.time}` };
    let text: string;
    try {
      text = serializeEvent(e);
    } catch (err) {
      return { events, malformed, problem: `not serializable: ${String(err)}` };
    }
    const back = JSON.parse(text) as ExecEvent;
    if (back.filename !== e.filename || back.argv.join('\0') !== e.argv.join('\0')) return { events, malformed, problem: 'not JSON round-trippable' };
  }
  return { events, malformed, problem: null };
}

const valid = () =>
  encodeBatch(
    { pid: 1, argv: ['sh', '-c', 'echo hi'] },
    { pid: 2, argv: Buffer.from([0x66, 0xff, 0x00, 0xc3, 0x28, 0x00]), filename: Buffer.from([0x2f, 0xe2, 0x82]) },
    { pid: 3, argv: [], flags: 0xffff, retval: -13, cgroupId: 0xffffffffffffffffn, bootNs: 0xffffffffffffffffn },
  );

t.test('every truncation of a valid batch decodes a prefix or counts one malformed record', async (t) => {
  const batch = valid();
  const problems: string[] = [];
  for (let len = 0; len <= batch.length; len += 1) {
    const r = decodeChecked(batch.subarray(0, len));
    if (r.problem) problems.push(`len ${len}: ${r.problem}`);
    else if (len < batch.length && r.malformed !== (len === 0 ? 0 : boundary(batch, len) ? 0 : 1)) problems.push(`len ${len}: malformed ${r.malformed}`);
  }
  t.same(problems, [], `${batch.length + 1} truncations`);
  t.equal(decodeChecked(batch).events.length, 3, 'the whole batch gives its three events');
});

/** True when `len` falls exactly between two records of the batch. */
function boundary(batch: Buffer, len: number): boolean {
  for (let at = 0; at < batch.length; at += batch.readUInt32LE(at + 16)) if (at === len) return true;
  return false;
}

t.test('random bytes and random mutations never crash and are counted', async (t) => {
  const problems: string[] = [];
  let decoded = 0;
  let malformed = 0;
  for (let seed = 1; seed <= 3000; seed += 1) {
    const r = rng(seed);
    let batch: Buffer;
    if (seed % 3 === 0) {
      batch = Buffer.alloc(Math.floor(r() * 2048));
      for (let i = 0; i < batch.length; i += 1) batch[i] = Math.floor(r() * 256);
    } else {
      batch = Buffer.from(valid());
      const flips = 1 + Math.floor(r() * 8);
      for (let i = 0; i < flips; i += 1) batch[Math.floor(r() * batch.length)] = Math.floor(r() * 256);
      // Length fields are where framing can go wrong: hit them often.
      if (seed % 3 === 1) batch.writeUInt32LE(Math.floor(r() * 0x1_0000_0000), [16, 52, 56][Math.floor(r() * 3)] as number);
    }
    const res = decodeChecked(batch);
    if (res.problem) problems.push(`seed ${seed}: ${res.problem}`);
    if (res.malformed > 1) problems.push(`seed ${seed}: malformed ${res.malformed} in one batch`);
    decoded += res.events.length;
    malformed += res.malformed;
  }
  t.same(problems, [], '3000 batches, no crash, no unusable event');
  t.ok(decoded > 0 && malformed > 0, `both outcomes exercised (${decoded} decoded, ${malformed} malformed)`);
});

t.test('control characters, newlines and 100 KB arguments come through intact', async (t) => {
  const big = 'A'.repeat(100 * 1024);
  const hostile = ['\x1b[31mred\x1b[0m', 'line1\nline2\r\n', '\x07\x08\x7f', '</script><script>alert(1)</script>'];
  const events: ExecEvent[] = [];
  decodeBatch(encodeRecord({ argv: [big, ...hostile], filename: '/tmp/evil\nname' }), ctx(), (e) => events.push(e as ExecEvent));
  t.equal(events.length, 1, 'one event');
  t.same(events[0]?.argv, [big, ...hostile], 'argv byte for byte');
  t.equal(events[0]?.filename, '/tmp/evil\nname', 'a newline in the path is kept, not split');
  t.equal(serializeEvent(events[0] as ExecEvent).includes('\n'), false, 'one JSON line whatever the argv');
});
