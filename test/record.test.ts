// What the ring and the stream keep of an event: its JSON once, and the exact-match filter fields.
import t from 'tap';
import { eventOf, eventRecord, RECORD_BYTES } from '../src/events/record.js';
import { serializeEvent } from '../src/events/schema.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';

t.test('a record holds the event JSON and the fields the filters read', async (t) => {
  const event = makeEvent({ seq: 9, comm: 'curl', uid: 33, retval: -13, filename: '/usr/bin/"curl"', argv: ['curl', 'a\nb'] });
  const record = eventRecord(event);
  t.equal(record.json, serializeEvent(event), 'the one serializer\'s text');
  t.same(eventOf(record), event, 'which is the event');
  t.match(record, { seq: 9, comm: 'curl', uid: 33, failed: true, namespace: 'shop', pod: 'web-1', container: 'app', time: event.time }, 'filter fields');
  t.equal(record.bytes, RECORD_BYTES + record.json.length, 'bytes');
  t.match(eventRecord(makeHostEvent({ retval: 0 })), { failed: false, namespace: null, pod: null, container: null }, 'a host process');
});
