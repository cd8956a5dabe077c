// What the ring, the stream and the log keep of an event: its JSON once, and the filter fields.
import t from 'tap';
import { eventRecord, RECORD_BYTES } from '../src/events/record.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';

t.test('a record holds the event JSON and the fields the filters read', async (t) => {
  const event = makeEvent({ seq: 9, comm: 'curl', uid: 33, retval: -13, filename: '/usr/bin/"curl"', argv: ['curl', 'a\nb'] });
  const record = eventRecord(event);
  t.equal(record.json, JSON.stringify(event), 'the text JSON.stringify gives');
  t.same(JSON.parse(record.json), event, 'which is the event');
  t.match(record, { seq: 9, comm: 'curl', uid: 33, failed: true, namespace: 'shop', pod: 'web-1', container: 'app', escaped: true }, 'filter fields');
  t.ok(Math.abs(record.timeMs - (Date.UTC(2026, 10, 24, 16, 2, 3, 9) + 0.123456)) < 1e-6, `time as milliseconds, sub-millisecond digits kept (${record.timeMs})`);
  t.equal(record.bytes, RECORD_BYTES + record.json.length, 'bytes');
  t.equal(record.json.slice(record.filenameAt - 1, record.argvAt - ',"argv":'.length), JSON.stringify(event.filename), 'filename offsets');
  t.equal(record.json.slice(record.argvAt, record.argvEnd), JSON.stringify(event.argv), 'argv offsets');
  const host = eventRecord(makeHostEvent({ retval: 0 }));
  t.match(host, { failed: false, namespace: null, pod: null, container: null, escaped: false }, 'a host process');
});

t.test('escaped says whether the filename or argv needed a backslash, and nothing else does', async (t) => {
  const cases: readonly { overrides: Partial<ExecEvent>; escaped: boolean }[] = [
    { overrides: { filename: '/a\\b' }, escaped: true },
    { overrides: { argv: ['x', 'tab\there'] }, escaped: true },
    { overrides: { argv: ['日本', '😀'] }, escaped: false },
    { overrides: { comm: 'a"b', cgroup: 'x\\y', node: 'n\n' }, escaped: false },
  ];
  for (const c of cases) t.equal(eventRecord(makeEvent(c.overrides)).escaped, c.escaped, JSON.stringify(c.overrides));
});
