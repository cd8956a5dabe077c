// What the ring and the stream keep of an event: its JSON once, and the exact-match filter fields.
import t from 'tap';
import { eventOf, eventRecord, RECORD_BYTES } from '../src/events/record.js';
import { serializeEvent } from '../src/events/schema.js';
import { makeEvent, makeGap, makeHostEvent, makeThrottle } from './helpers/events.js';

t.test('a record holds the event JSON and the fields the filters read', async (t) => {
  const event = makeEvent({ seq: 9, comm: 'curl', uid: 33, retval: -13, filename: '/usr/bin/"curl"', argv: ['curl', 'a\nb'] });
  const record = eventRecord(event);
  t.equal(record.json, serializeEvent(event), 'the one serializer\'s text');
  t.same(eventOf(record), event, 'which is the event');
  t.match(record, { seq: 9, comm: 'curl', uid: 33, failed: true, namespace: 'shop', pod: 'web-1', container: 'app', time: event.time }, 'filter fields');
  t.equal(record.bytes, RECORD_BYTES + record.json.length, 'bytes');
  t.match(eventRecord(makeHostEvent({ retval: 0 })), { failed: false, namespace: null, pod: null, container: null }, 'a host process');
});

t.test('a throttle\'s record has its pod fields; a gap\'s names no process and no pod of its own', async (t) => {
  t.match(eventRecord(makeThrottle({ seq: 3 })), { seq: 3, kind: 'throttle', execId: null, parentExecId: null, comm: 'sh', namespace: 'shop', pod: 'web-1', container: 'app', image: 'registry.example/shop/web:1.4', attribution: 'pod', uid: null, failed: false }, 'a throttle');
  t.match(eventRecord(makeGap({ seq: 4 })), { seq: 4, kind: 'gap', execId: null, comm: '', namespace: null, pod: null, container: null, image: null, attribution: null, time: '2026-11-24T16:02:10.000000000Z' }, 'a gap');
});
