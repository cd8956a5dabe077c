// What the ring and the stream keep of an event: its JSON once, and the exact-match filter fields.
import t from 'tap';
import { eventOf, eventRecord, EXIT_BYTES, RECORD_BYTES, textOf, withExit } from '../src/events/record.js';
import { serializeEvent } from '../src/events/schema.js';
import { makeEvent, makeExit, makeGap, makeHostEvent, makeThrottle } from './helpers/events.js';

t.test('a record holds the event JSON and the fields the filters read', async (t) => {
  const event = makeEvent({ seq: 9, comm: 'curl', uid: 33, retval: -13, filename: '/usr/bin/"curl"', argv: ['curl', 'a\nb'] });
  const record = eventRecord(event);
  t.equal(record.json, serializeEvent(event), 'the one serializer\'s text');
  t.same(eventOf(record), event, 'which is the event');
  t.match(record, { seq: 9, comm: 'curl', uid: 33, failed: true, namespace: 'shop', pod: 'web-1', container: 'app', time: event.time }, 'filter fields');
  t.equal(record.bytes, RECORD_BYTES + record.json.length, 'bytes');
  t.match(eventRecord(makeHostEvent({ retval: 0 })), { failed: false, namespace: null, pod: null, container: null }, 'a host process');
});

t.test('an exec that ended: readers get its text with exit, as the serializer writes the event with it', async (t) => {
  const exit = { time: '2026-12-06T10:00:01.000000000Z', status: 'signal' as const, code: null, signal: 9, coreDumped: false, duration: 1.5 };
  for (const [name, event] of [
    ['an exec', makeEvent({ seq: 4, argv: ['sh', '-c', 'a → "b"'] })],
    ['one with the raw bytes of its argv and filename', makeEvent({ seq: 5, argvBase64: 'AAE=', filenameBase64: 'Lw==' })],
  ] as const) {
    const record = eventRecord(event);
    t.equal(textOf(record), serializeEvent(event), `${name}: before its exit, the text as delivered`);
    const ended = withExit(record, exit);
    t.equal(textOf(ended), serializeEvent({ ...event, exit }), `${name}: after, the same text as the event with its exit`);
    t.same(eventOf(ended).exit, exit, `${name}: which parses to the exit`);
    t.equal(ended.json, record.json, `${name}: the delivered text is not copied`);
    t.equal(ended.bytes, record.bytes + EXIT_BYTES, `${name}: the exit's bytes are counted`);
    t.equal(ended.seq, event.seq, `${name}: the filter fields stay`);
  }
  const longest = { time: exit.time, status: 'signal' as const, code: null, signal: 31, coreDumped: true, duration: 86_400_000.123456789 };
  t.ok(JSON.stringify(longest).length <= EXIT_BYTES, `the bytes counted for an exit cover its longest text (${JSON.stringify(longest).length})`);
});

t.test('an exit\'s record: the filter fields, and its text as the serializer writes it', async (t) => {
  const exit = makeExit({ seq: 12, comm: 'curl' });
  const record = eventRecord(exit);
  t.match(record, { seq: 12, kind: 'exit', execId: exit.execId, comm: 'curl', namespace: exit.namespace, pod: exit.pod, failed: false, exit: null }, 'filter fields');
  t.equal(record.json, serializeEvent(exit), 'the text');
  t.equal(textOf(record), record.json, 'as readers get it');
  t.equal(record.bytes, RECORD_BYTES + record.json.length, 'bytes');
});

t.test('a throttle\'s record has its pod fields; a gap\'s names no process and no pod of its own', async (t) => {
  t.match(eventRecord(makeThrottle({ seq: 3 })), { seq: 3, kind: 'throttle', execId: null, parentExecId: null, comm: 'sh', namespace: 'shop', pod: 'web-1', container: 'app', image: 'registry.example/shop/web:1.4', attribution: 'pod', uid: null, failed: false }, 'a throttle');
  t.match(eventRecord(makeGap({ seq: 4 })), { seq: 4, kind: 'gap', execId: null, comm: '', namespace: null, pod: null, container: null, image: null, attribution: null, time: '2026-11-24T16:02:10.000000000Z' }, 'a gap');
});
