// The event schema: decoded events in schema order (what the serializer writes), and the contract's field names.
import t from 'tap';
import { decodeBatch } from '../src/capture/decode.js';
import { ExecEventSchema, formatTime, serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { makeEvent } from './helpers/events.js';
import { encodeBatch } from './helpers/records.js';

/** DESIGN.md's contract: these names never change (fields may be added). */
const CONTRACT = [
  'time', 'node', 'pid', 'tid', 'ppid', 'uid', 'gid', 'comm', 'parentComm', 'filename', 'argv', 'argvTruncated',
  'retval', 'cgroupId', 'containerId', 'namespace', 'pod', 'podUid', 'container', 'workload',
] as const;

/** Strings that need every kind of escaping JSON has, and some that need none. */
const STRINGS = [
  'plain', 'quote"inside', 'back\\slash', 'new\nline', '\u0001ctl', '\u001fus\u007fdel', 'é ü ß', '日本語', '😀 emoji',
  '\u2028\u2029 separators', '</script>',
] as const;

t.test('decoded events have every schema key from the start, in schema order: JSON.stringify writes the schema', async (t) => {
  const fields = Object.keys(ExecEventSchema.properties);
  const optional = ['argvBase64', 'filenameBase64'];
  const batch = encodeBatch(
    { argv: ['ls', '-l', 'ü'], filename: '/bin/ls' },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: Buffer.from([0x2f, 0xfe]) },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: '/bin/ok' },
    { argv: ['ok'], filename: Buffer.from([0x2f, 0xfe]) },
  );
  const events: ExecEvent[] = [];
  decodeBatch(batch, { node: 'n', bootOffsetNs: 0n }, (e) => events.push(e));
  t.equal(events.length, 4, 'decoded');
  const [plain, both, argvOnly, filenameOnly] = events.map((e) => Object.keys(JSON.parse(serializeEvent(e)) as object));
  t.same(plain, fields.filter((f) => !optional.includes(f)), 'without the optional fields: the rest in schema order');
  t.same(both, fields, 'with both optional fields: every field in schema order');
  t.same(argvOnly, fields.filter((f) => f !== 'filenameBase64'), 'argvBase64 alone');
  t.same(filenameOnly, fields.filter((f) => f !== 'argvBase64'), 'filenameBase64 alone');
});

t.test('every character JSON must escape round-trips, and the text is one line', async (t) => {
  for (const text of STRINGS) {
    const event = makeEvent({ comm: text, argv: [text, 'x'], filename: text });
    const json = serializeEvent(event);
    t.notOk(json.includes('\n') || json.includes('\r'), `${JSON.stringify(text)}: one line`);
    t.same(JSON.parse(json), event, `${JSON.stringify(text)}: parses back to the event`);
  }
});

t.test('the schema keeps every field of the contract; the test helper builds every field', async (t) => {
  const fields = Object.keys(ExecEventSchema.properties);
  for (const name of CONTRACT) t.ok(fields.includes(name), `${name} is in the schema`);
  const event = makeEvent({ argvBase64: 'QQ==', filenameBase64: 'Lw==' });
  t.same(Object.keys(event).sort(), [...fields].sort(), 'the test helper builds every field');
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
