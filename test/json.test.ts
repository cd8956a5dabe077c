// The hand-written event serializer against JSON.stringify, over many varied events.
import t from 'tap';
import { decodeBatch } from '../src/capture/decode.js';
import { EVENT_FIELDS, PLACE_CACHE_MAX } from '../src/events/json.js';
import { eventRecord } from '../src/events/record.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { encodeBatch } from './helpers/records.js';
import { rng } from './helpers/rng.js';

/** The event's JSON as the agent writes it (once per event, in its record). */
const eventJson = (event: ExecEvent): string => eventRecord(event).json;

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
  if (random() < 0.3) event.argvBase64 = Buffer.from(event.argv.join('\0')).toString('base64');
  if (random() < 0.3) event.filenameBase64 = Buffer.from(event.filename).toString('base64');
  return event;
}

t.test('eventJson parses to what JSON.stringify gives, over 2,000 varied events', async (t) => {
  let mismatches = 0;
  for (let i = 0; i < 2000; i += 1) {
    const event = variedEvent(i);
    const ours = eventJson(event);
    if (JSON.stringify(JSON.parse(ours)) !== JSON.stringify(event)) {
      mismatches += 1;
      t.same(JSON.parse(ours), JSON.parse(JSON.stringify(event)), `event ${i}`);
    }
  }
  t.equal(mismatches, 0, 'same value, same key order, for every event');
});

t.test('eventJson of decoded events, with and without the optional fields', async (t) => {
  const batch = encodeBatch(
    { argv: ['ls', '-l', 'ü'], filename: '/bin/ls' },
    { argv: Buffer.from([0x61, 0xff, 0x00]), filename: Buffer.from([0x2f, 0xfe]) },
  );
  const events: ExecEvent[] = [];
  decodeBatch(batch, { node: 'n', bootOffsetNs: 0n, nextSeq: () => events.length + 1 }, (e) => events.push(e));
  t.equal(events.length, 2, 'decoded');
  for (const event of events) t.equal(eventJson(event), JSON.stringify(event), `byte for byte: ${event.filename}`);
  t.ok('argvBase64' in (events[1] as ExecEvent), 'the optional argv field was exercised');
  t.ok('filenameBase64' in (events[1] as ExecEvent), 'and the optional filename field');
});

t.test('eventJson writes every field of the contract and nothing else', async (t) => {
  const event = makeEvent({ argvBase64: 'QQ==', filenameBase64: 'Lw==' });
  t.same(Object.keys(JSON.parse(eventJson(event))).sort(), Object.keys(EVENT_FIELDS).sort(), 'EVENT_FIELDS');
  t.same(Object.keys(event).sort(), Object.keys(EVENT_FIELDS).sort(), 'the test helper builds every field');
});

t.test('the cgroup and pod text of a cgroup is reused only while every value it came from is the same', async (t) => {
  const base = makeEvent({ cgroupId: '77' });
  const variants: readonly [string, ExecEvent][] = [
    ['first', base], ['again', base], ['pod', { ...base, pod: 'other' }], ['namespace', { ...base, namespace: null }],
    ['podUid', { ...base, podUid: null }], ['container', { ...base, container: null }], ['containerId', { ...base, containerId: null }],
    ['no workload', { ...base, workload: null }], ['workload kind', { ...base, workload: { kind: 'Job', name: 'web' } }],
    ['workload name', { ...base, workload: { kind: 'Deployment', name: 'api' } }], ['cgroup', { ...base, cgroup: 'x' }],
    ['cgroupParent', { ...base, cgroupParent: 'y' }], ['cgroupTruncated', { ...base, cgroupTruncated: true }], ['back', base],
  ];
  for (const [name, event] of variants) t.equal(eventJson(event), JSON.stringify(event), name);
});

t.test('the cgroup text cache is bounded', async (t) => {
  for (let id = 0; id <= PLACE_CACHE_MAX; id += 1) eventJson(makeEvent({ cgroupId: `c${id}` }));
  const event = makeEvent({ cgroupId: 'c1', pod: 'after-clear' });
  t.equal(eventJson(event), JSON.stringify(event), 'still right after the cache was cleared');
});
