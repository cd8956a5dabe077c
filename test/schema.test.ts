// The event schema: decoded events in schema order (what the serializer writes), and the contract's field names.
import t from 'tap';
import { decodeBatch } from '../src/capture/decode.js';
import { ExecEventSchema, ExitEventSchema, formatTime, serializeEvent, type ExecEvent } from '../src/events/schema.js';
import { decodeContext } from './helpers/decode-context.js';
import { makeEvent, makeExit } from './helpers/events.js';
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
  // Optional, last, in this order; `exit` is set once the process has ended.
  const optional = ['argvBase64', 'filenameBase64', 'exit'];
  const batch = encodeBatch(
    { argv: ['ls', '-l', 'ü'], filename: '/bin/ls' },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: Buffer.from([0x2f, 0xfe]) },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: '/bin/ok' },
    { argv: ['ok'], filename: Buffer.from([0x2f, 0xfe]) },
  );
  const events: ExecEvent[] = [];
  decodeBatch(batch, decodeContext('n', 0n), (e) => events.push(e as ExecEvent));
  t.equal(events.length, 4, 'decoded');
  const [plain, both, argvOnly, filenameOnly] = events.map((e) => Object.keys(JSON.parse(serializeEvent(e)) as object));
  t.same(plain, fields.filter((f) => !optional.includes(f)), 'without the optional fields: the rest in schema order');
  t.same(both, fields.filter((f) => f !== 'exit'), 'with both optional fields: every field in schema order');
  t.same(argvOnly, fields.filter((f) => f !== 'filenameBase64' && f !== 'exit'), 'argvBase64 alone');
  t.same(filenameOnly, fields.filter((f) => f !== 'argvBase64' && f !== 'exit'), 'filenameBase64 alone');
  const ended = { ...(events[1] as ExecEvent), exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'ok' as const, code: 0, signal: null, coreDumped: false, duration: 2 } };
  t.same(Object.keys(JSON.parse(serializeEvent(ended)) as object), fields, 'the exit, set once known, comes last as the schema has it');
});

t.test('every character JSON must escape round-trips, and the text is one line', async (t) => {
  for (const text of STRINGS) {
    const event = makeEvent({ comm: text, argv: [text, 'x'], filename: text });
    const json = serializeEvent(event);
    // The label escapes what TAP would read as a line break (U+2028 and U+2029 included).
    const label = JSON.stringify(text).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
    t.notOk(json.includes('\n') || json.includes('\r'), `${label}: one line`);
    t.same(JSON.parse(json), event, `${label}: parses back to the event`);
  }
});

t.test('the schema keeps every field of the contract; the test helper builds every field', async (t) => {
  const fields = Object.keys(ExecEventSchema.properties);
  for (const name of CONTRACT) t.ok(fields.includes(name), `${name} is in the schema`);
  const event = makeEvent({
    argvBase64: 'QQ==',
    filenameBase64: 'Lw==',
    exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'ok', code: 0, signal: null, coreDumped: false, duration: 2 },
  });
  t.same(Object.keys(event).sort(), [...fields].sort(), 'the test helper builds every field');
});

t.test('an exit event: every field of its schema, in schema order', async (t) => {
  const exit = makeExit({ comm: 'quote"inside', namespace: null, workload: null, status: 'signal', code: null, signal: 11, coreDumped: true });
  t.same(Object.keys(JSON.parse(serializeEvent(exit)) as object), Object.keys(ExitEventSchema.properties), 'every schema field, in schema order');
  t.same(Object.keys(makeExit()).sort(), Object.keys(ExitEventSchema.properties).sort(), 'the test helper builds every field');
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
