// The event schema: the one serializer against JSON.stringify, and the contract's field names.
import t from 'tap';
import { decodeBatch } from '../src/capture/decode.js';
import { ExecEventSchema, ExitEventSchema, formatTime, serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeExit, makeHostEvent } from './helpers/events.js';
import { encodeBatch } from './helpers/records.js';
import { rng } from './helpers/rng.js';

/** DESIGN.md's contract: these names never change (fields may be added). */
const CONTRACT = [
  'time', 'node', 'pid', 'tid', 'ppid', 'uid', 'gid', 'comm', 'parentComm', 'filename', 'argv', 'argvTruncated',
  'retval', 'cgroupId', 'containerId', 'namespace', 'pod', 'podUid', 'container', 'workload',
] as const;

/** Strings that need every kind of escaping JSON has, and some that need none. */
const STRINGS = [
  '', 'plain', 'with space', 'quote"inside', 'back\\slash', 'new\nline', 'tab\tcr\r', '\u0000nul', '\u001fus\u007fdel',
  'é ü ß', '日本語', '😀 emoji', '\u2028\u2029 separators', '\ud800 lone high', 'lone low \udc00', '\ufffd replacement',
  '</script>', 'x'.repeat(5000),
] as const;

const random = rng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const maybeNull = (): string | null => (random() < 0.3 ? null : pick(STRINGS));

function variedEvent(i: number): ExecEvent {
  const base = random() < 0.3 ? makeHostEvent({ seq: i + 1 }) : makeEvent({ seq: i + 1 });
  const event: ExecEvent = {
    ...base,
    pid: Math.floor(random() * 4_194_304), uid: random() < 0.1 ? 4294967295 : 0, retval: random() < 0.2 ? -2 : 0,
    comm: pick(STRINGS), parentComm: pick(STRINGS), filename: pick(STRINGS), node: pick(STRINGS),
    argv: Array.from({ length: Math.floor(random() * 6) }, () => pick(STRINGS)),
    argvTruncated: random() < 0.5, filenameTruncated: random() < 0.5, fileless: random() < 0.5,
    execveat: random() < 0.5, readError: random() < 0.5, cgroupTruncated: random() < 0.5,
    cgroupId: String(Math.floor(random() * 2 ** 53)), cgroup: pick(STRINGS), cgroupParent: pick(STRINGS),
    containerId: maybeNull(), namespace: maybeNull(), pod: maybeNull(), podUid: maybeNull(), container: maybeNull(),
    workload: random() < 0.3 ? null : { kind: pick(STRINGS), name: pick(STRINGS) },
  };
  if (random() < 0.3) {
    event.ancestors = [{ execId: pick(STRINGS), pid: 1, comm: pick(STRINGS), filename: pick(STRINGS), argv: [pick(STRINGS)] }];
  }
  if (random() < 0.3) event.argvBase64 = Buffer.from(event.argv.join('\0')).toString('base64');
  if (random() < 0.3) event.filenameBase64 = Buffer.from(event.filename).toString('base64');
  // Last, as the schema orders it (JSON.stringify writes keys in insertion order).
  if (random() < 0.3) {
    event.exit = { time: pick(STRINGS), status: 'signal', code: null, signal: 9, coreDumped: random() < 0.5, duration: random() * 100 };
  }
  return event;
}

t.test('serializeEvent writes what JSON.stringify writes, byte for byte, over 2,000 varied events', async (t) => {
  let mismatches = 0;
  for (let i = 0; i < 2000; i += 1) {
    const event = variedEvent(i);
    const ours = serializeEvent(event);
    if (ours !== JSON.stringify(event)) {
      mismatches += 1;
      t.equal(ours, JSON.stringify(event), `event ${i}`);
    }
  }
  t.equal(mismatches, 0, 'same text for every event: escapes, nulls, optional fields, key order');
});

t.test('decoded events serialize byte for byte, with and without the optional fields', async (t) => {
  const batch = encodeBatch(
    { argv: ['ls', '-l', 'ü'], filename: '/bin/ls' },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: Buffer.from([0x2f, 0xfe]) },
  );
  const events: ExecEvent[] = [];
  decodeBatch(batch, { node: 'n', bootId: '0'.repeat(32), bootOffsetNs: 0n }, (e) => events.push(e as ExecEvent));
  t.equal(events.length, 2, 'decoded');
  for (const event of events) t.equal(serializeEvent(event), JSON.stringify(event), `byte for byte: ${event.filename}`);
  t.ok('argvBase64' in (events[1] as ExecEvent), 'the optional argv field was exercised');
  t.ok('filenameBase64' in (events[1] as ExecEvent), 'and the optional filename field');
});

t.test('the schema keeps every field of the contract, and the serializer writes every field of the schema', async (t) => {
  const fields = Object.keys(ExecEventSchema.properties);
  for (const name of CONTRACT) t.ok(fields.includes(name), `${name} is in the schema`);
  const event = makeEvent({
    argvBase64: 'QQ==',
    filenameBase64: 'Lw==',
    exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'ok', code: 0, signal: null, coreDumped: false, duration: 2 },
  });
  t.same(Object.keys(JSON.parse(serializeEvent(event))), fields, 'every schema field, in schema order');
  t.same(Object.keys(event).sort(), [...fields].sort(), 'the test helper builds every field');
});

t.test('an exit event serializes by its own schema: every field, in order, byte for byte', async (t) => {
  const exit = makeExit({ comm: 'quote"inside', namespace: null, workload: null, status: 'signal', code: null, signal: 11, coreDumped: true });
  const text = serializeEvent(exit);
  t.equal(text, JSON.stringify(exit), 'as JSON.stringify writes it');
  t.same(Object.keys(JSON.parse(text)), Object.keys(ExitEventSchema.properties), 'every schema field, in schema order');
  t.same(Object.keys(makeExit()).sort(), Object.keys(ExitEventSchema.properties).sort(), 'the test helper builds every field');
});

t.test('a value of the wrong type is refused, not written as something else', async (t) => {
  t.throws(() => serializeEvent({ ...makeEvent(), pod: 5 } as unknown as ExecEvent), 'a number where a string or null goes');
});

t.test('formatTime: RFC 3339 UTC with nine fraction digits, fixed width', async (t) => {
  const cases = [
    { ns: 0n, time: '1970-01-01T00:00:00.000000000Z' },
    { ns: 1n, time: '1970-01-01T00:00:00.000000001Z' },
    { ns: 1_764_000_123_000_000_042n, time: '2025-11-24T16:02:03.000000042Z' },
    { ns: -1n, time: '1969-12-31T23:59:59.999999999Z' },
  ] as const;
  for (const c of cases) t.equal(formatTime(c.ns), c.time, String(c.ns));
});
