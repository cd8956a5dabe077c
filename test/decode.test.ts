// The record decoder: kernel bytes (bpf/execwatch.h) → ExecEvent, malformed input counted, never thrown.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  ARGV_MAX,
  CGROUP_LEAF_LEN,
  CGROUP_PARENT_LEN,
  COMM_LEN,
  COUNTERS,
  decodeBatch,
  FILENAME_MAX,
  FLAGS,
  HEADER_SIZE,
  RECORD_OFFSETS,
  type DecodeContext,
} from '../src/capture/decode.js';
import { DecodedEvent } from '../src/events/decoded.js';
import { compileFilter, timeMs } from '../src/events/filter.js';
import { eventRecord } from '../src/events/record.js';
import { createRedactor } from '../src/events/redact.js';
import { eventBytes } from '../src/enrich/pending.js';
import type { ExecEvent } from '../src/events/schema.js';
import { repoRoot } from './helpers/kernel.js';
import { encodeBatch, encodeRecord, type RecordFields } from './helpers/records.js';

const header = readFileSync(join(repoRoot, 'bpf', 'execwatch.h'), 'utf8');

/** 2026-11-24T16:02:03Z as ns since the epoch, minus 1000 s of uptime: the default offset. */
const WALL_2026 = BigInt(Date.UTC(2026, 10, 24, 16, 2, 3)) * 1_000_000n;
const OFFSET = WALL_2026 - 1000n * 1_000_000_000n;

function decodeAll(batch: Buffer, bootOffsetNs = OFFSET, node = 'node-1', firstSeq = 100) {
  let seq = firstSeq;
  const ctx: DecodeContext = { node, bootOffsetNs, nextSeq: () => ++seq };
  const events: { event: ExecEvent; bootNs: number }[] = [];
  const result = decodeBatch(batch, ctx, (event, bootNs) => events.push({ event, bootNs }));
  return { ...result, events: events.map((e) => e.event), bootNs: events.map((e) => e.bootNs) };
}

/** An ExecEvent that did not come from the decoder. */
const makeEventLike = (): ExecEvent => JSON.parse(JSON.stringify(decodeOne({}))) as ExecEvent;

function decodeOne(fields: Partial<RecordFields>): ExecEvent {
  const { events, decoded, malformed } = decodeAll(encodeRecord(fields));
  if (decoded !== 1 || malformed !== 0 || !events[0]) throw new Error(`decoded ${decoded}, malformed ${malformed}`);
  return events[0];
}

t.test('the constants mirror bpf/execwatch.h', async (t) => {
  const define = (name: string) => Number(new RegExp(`#define ${name} (\\d+)`).exec(header)?.[1]);
  t.equal(HEADER_SIZE, define('EXECWATCH_HEADER_SIZE'), 'HEADER_SIZE');
  t.equal(COMM_LEN, define('EXECWATCH_COMM_LEN'), 'COMM_LEN');
  t.equal(CGROUP_LEAF_LEN, define('EXECWATCH_CGROUP_LEAF_LEN'), 'CGROUP_LEAF_LEN');
  t.equal(CGROUP_PARENT_LEN, define('EXECWATCH_CGROUP_PARENT_LEN'), 'CGROUP_PARENT_LEN');
  t.equal(FILENAME_MAX, define('EXECWATCH_FILENAME_MAX'), 'FILENAME_MAX');
  t.equal(ARGV_MAX, define('EXECWATCH_ARGV_MAX'), 'ARGV_MAX');

  const enumOf = (name: string, prefix: string) => {
    const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(header)?.[1] ?? '';
    const entries = [...body.matchAll(new RegExp(`${prefix}(\\w+) = ([^,]+),`, 'g'))];
    return Object.fromEntries(entries.map(([, key, value]) => [key, Function(`return ${value}`)() as number]));
  };
  t.same(FLAGS, enumOf('execwatch_flag', 'EXECWATCH_F_'), 'FLAGS = enum execwatch_flag');
  t.same(COUNTERS, enumOf('execwatch_counter', 'EXECWATCH_CTR_'), 'COUNTERS = enum execwatch_counter');

  // Lay the struct out as the C compiler does (natural alignment; all fields here are naturally sized).
  const sizes: Record<string, number> = { __u64: 8, __s64: 8, __u32: 4, __s32: 4, __u16: 2, char: 1 };
  const body = /struct execwatch_record \{([^}]*)\}/.exec(header)?.[1] ?? '';
  const offsets: Record<string, number> = {};
  let at = 0;
  for (const [, type, name, count] of body.matchAll(/(\w+)\s+(\w+)(?:\[(\w+)\])?;/g)) {
    const size = sizes[type as string] as number;
    at = Math.ceil(at / size) * size;
    offsets[name as string] = at;
    at += size * (count === undefined ? 1 : define(count));
  }
  t.same(offsets, RECORD_OFFSETS, 'RECORD_OFFSETS = the C layout');
  t.equal(at, HEADER_SIZE, 'the fields end at EXECWATCH_HEADER_SIZE');
});

t.test('a record decodes into the ExecEvent contract', async (t) => {
  const { events, bootNs, decoded, malformed } = decodeAll(
    encodeRecord({
      bootNs: 1000n * 1_000_000_000n + 123_456_789n,
      cgroupId: 4711n,
      pid: 4242, tid: 4243, ppid: 4200, uid: 1000, gid: 1001, retval: 0,
      comm: 'curl', parentComm: 'sh', cgroup: 'cri-containerd-3f1c.scope', cgroupParent: 'kubepods-pod12.slice',
      filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'],
    }),
  );
  t.same({ decoded, malformed }, { decoded: 1, malformed: 0 }, 'one record, nothing malformed');
  t.same(
    events[0],
    {
      seq: 101, time: '2026-11-24T16:02:03.123456789Z', node: 'node-1',
      pid: 4242, tid: 4243, ppid: 4200, uid: 1000, gid: 1001,
      comm: 'curl', parentComm: 'sh', filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'], argc: 3,
      argvTruncated: false, filenameTruncated: false, retval: 0, fileless: false, execveat: false, readError: false,
      cgroupId: '4711', cgroup: 'cri-containerd-3f1c.scope', cgroupParent: 'kubepods-pod12.slice', cgroupTruncated: false,
      containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null,
    },
    'every field, enrichment fields null',
  );
  t.same(Object.keys(events[0] as ExecEvent).filter((k) => k.endsWith('Base64')), [], 'no base64 fields for UTF-8 input');
  t.same(bootNs, [1000 * 1_000_000_000 + 123_456_789], 'emit receives the record boot_ns');
});

t.test('flags', async (t) => {
  const booleans = ['argvTruncated', 'filenameTruncated', 'readError', 'execveat', 'fileless', 'cgroupTruncated'] as const;
  const cases = [
    [FLAGS.ARGV_TRUNCATED, ['argvTruncated']],
    [FLAGS.FILENAME_TRUNCATED, ['filenameTruncated']],
    [FLAGS.READ_ERROR, ['readError']],
    [FLAGS.EXECVEAT, ['execveat']],
    [FLAGS.FILELESS, ['fileless']],
    [FLAGS.CGROUP_NAME_TRUNCATED, ['cgroupTruncated']],
    [FLAGS.CGROUP_V1 | FLAGS.NO_ENTER_STATE, []],
    [0, []],
    [0xff, booleans],
  ] as const;
  for (const [flags, set] of cases) {
    const event = decodeOne({ flags });
    // What readers get: the text the decoder wrote.
    const json = JSON.parse(eventRecord(event).json) as Record<string, unknown>;
    for (const field of booleans) {
      t.equal(event[field], (set as readonly string[]).includes(field), `flags 0x${flags.toString(16)}: ${field}`);
      t.equal(json[field], (set as readonly string[]).includes(field), `flags 0x${flags.toString(16)}: ${field} in the JSON`);
    }
  }
});

t.test('numbers: retval, ids, cgroup id', async (t) => {
  const cases = [
    [{ retval: -2 }, 'retval', -2],
    [{ retval: -13 }, 'retval', -13],
    [{ uid: 4294967295 }, 'uid', 4294967295],
    [{ gid: 65534 }, 'gid', 65534],
    [{ pid: 4194304, tid: 4194303 }, 'tid', 4194303],
    [{ argc: 70000 }, 'argc', 70000],
    [{ cgroupId: 0n }, 'cgroupId', '0'],
    [{ cgroupId: 2n ** 53n - 1n }, 'cgroupId', '9007199254740991'],
    [{ cgroupId: 2n ** 53n + 1n }, 'cgroupId', '9007199254740993'],
    [{ cgroupId: 2n ** 64n - 1n }, 'cgroupId', '18446744073709551615'],
  ] as const;
  for (const [fields, key, want] of cases) {
    t.equal(decodeOne(fields)[key], want, `${key} ${String(want)}`);
  }
});

t.test('argv', async (t) => {
  const cases = [
    ['empty region', Buffer.alloc(0), []],
    ['one empty argument', Buffer.from('\0'), ['']],
    ['empty arguments kept', Buffer.from('printf\0\0x\0\0'), ['printf', '', 'x', '']],
    ['last argument truncated without NUL', Buffer.from('echo\0hel'), ['echo', 'hel']],
    ['spaces and quotes stay inside one argument', Buffer.from('sh\0-c\0echo "a b"\0'), ['sh', '-c', 'echo "a b"']],
    ['UTF-8', Buffer.from('echo\0héllo wörld 🌍\0'), ['echo', 'héllo wörld 🌍']],
  ] as const;
  for (const [name, argv, want] of cases) {
    const event = decodeOne({ argv, argc: want.length });
    t.same(event.argv, want, name);
    t.equal(event.argvBase64, undefined, `${name}: valid UTF-8, no argvBase64`);
  }
  const atBatchEnd = encodeRecord({ filename: '/x', argv: Buffer.from('ab\0cde') });
  t.equal(atBatchEnd.length, HEADER_SIZE + 8, 'no padding: the last argument ends the batch');
  t.same(decodeAll(atBatchEnd).events[0]?.argv, ['ab', 'cde'], 'an unterminated argument at the very end of the batch');
  const truncated = decodeOne({ argv: Buffer.from('ls\0-l\0/v'), argc: 9, flags: FLAGS.ARGV_TRUNCATED });
  t.same([truncated.argv, truncated.argc, truncated.argvTruncated], [['ls', '-l', '/v'], 9, true], 'argc counts what the kernel saw');
});

t.test('bytes that are not UTF-8 show as U+FFFD and are kept exactly in base64', async (t) => {
  const rawArgv = Buffer.from([0x63, 0x61, 0x74, 0, 0x66, 0xff, 0x6f, 0, 0xc3, 0x28, 0, 0xe2, 0x82]);
  const event = decodeOne({ argv: rawArgv });
  t.same(event.argv, ['cat', 'f\ufffdo', '\ufffd(', '\ufffd'], 'bad bytes replaced in argv strings');
  t.ok(Buffer.from(event.argvBase64 as string, 'base64').equals(rawArgv), 'argvBase64 round-trips to the exact bytes');
  t.equal(event.filenameBase64, undefined, 'the filename was valid: no filenameBase64');

  const rawFilename = Buffer.from([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xfe, 0x78]);
  const named = decodeOne({ filename: rawFilename });
  t.equal(named.filename, '/tmp/\ufffdx', 'bad byte replaced in filename');
  t.ok(Buffer.from(named.filenameBase64 as string, 'base64').equals(rawFilename), 'filenameBase64 round-trips');
  t.equal(named.argvBase64, undefined, 'argv was valid: no argvBase64');

  const utf8 = decodeOne({ filename: '/opt/café/bin', argv: ['naïve'] });
  t.same([utf8.filename, utf8.argv, 'filenameBase64' in utf8, 'argvBase64' in utf8], ['/opt/café/bin', ['naïve'], false, false], 'valid non-ASCII UTF-8 needs no base64');
});

t.test('fixed-size names', async (t) => {
  const full = decodeOne({ comm: 'x'.repeat(16), parentComm: 'abc\0garbage', cgroup: 'c'.repeat(256), cgroupParent: 'p'.repeat(128) });
  t.equal(full.comm, 'x'.repeat(16), 'a comm filling its 16 bytes has no NUL and is read whole');
  t.equal(full.parentComm, 'abc', 'bytes after the NUL are ignored');
  t.equal(full.cgroup, 'c'.repeat(256), 'a 256-byte leaf name is read whole, not into the parent');
  t.equal(full.cgroupParent, 'p'.repeat(128), 'a 128-byte parent name is read whole, not into the filename');
  const mismatch = `kubepods-burstable-pod${'1'.repeat(8)}_${'2'.repeat(4)}_${'3'.repeat(4)}_${'4'.repeat(4)}_${'5'.repeat(12)}.slice:cri-containerd:${'a'.repeat(64)}`;
  t.equal(decodeOne({ cgroup: mismatch }).cgroup, mismatch, `a driver-mismatch leaf (${mismatch.length} bytes) keeps its container id`);
  t.equal(decodeOne({ cgroupParent: '' }).cgroupParent, '', 'an empty name');
  t.equal(decodeOne({ flags: FLAGS.CGROUP_NAME_TRUNCATED }).cgroupTruncated, true, 'the truncation flag reaches the event');
  t.equal(full.cgroupTruncated, false, 'not truncated unless the kernel says so');
});

t.test('maximum sizes', async (t) => {
  const filename = `/${'f'.repeat(FILENAME_MAX - 1)}`;
  const args = Array.from({ length: ARGV_MAX / 8 }, (_, i) => `a${String(i).padStart(6, '0')}`);
  const event = decodeOne({ filename, argv: args });
  t.equal(event.filename, filename, `${FILENAME_MAX}-byte filename`);
  t.equal(event.argv.length, args.length, `${ARGV_MAX}-byte argv: every argument`);
  t.same([event.argv[0], event.argv.at(-1)], [args[0], args.at(-1)], 'first and last argument intact');
  const unterminated = Buffer.alloc(ARGV_MAX, 0x41);
  t.same(decodeOne({ argv: unterminated }).argv, ['A'.repeat(ARGV_MAX)], `one ${ARGV_MAX}-byte argument without NUL`);

  // Everything at its largest at once still fits the decoder's scratch (a write past a Buffer's
  // end would be dropped silently and cut the text).
  const node = `${'n'.repeat(252)}.`;
  const largest = decodeAll(encodeRecord({ filename, argv: Buffer.alloc(ARGV_MAX), comm: 'c'.repeat(16), parentComm: 'p'.repeat(16), retval: -2147483648, pid: 2 ** 32 - 1 }), OFFSET, node, 2 ** 53 - 2).events[0] as DecodedEvent;
  t.ok(DecodedEvent.front(largest) !== undefined, 'the largest plain record gets its front text');
  const parsed = JSON.parse(eventRecord(largest).json) as ExecEvent;
  t.same([parsed.seq, parsed.node, parsed.filename, parsed.argv.length, parsed.readError], [2 ** 53 - 1, node, filename, ARGV_MAX, false], 'whole: seq, node, filename, every argument, the last field');
});

t.test('time: boot ns + offset as RFC 3339 UTC with nanoseconds', async (t) => {
  const S = 1_000_000_000n;
  const epoch2017 = BigInt(Date.UTC(2017, 0, 1)) * 1_000_000n;
  const cases = [
    ['nanoseconds', 5n * S + 7n, OFFSET, '2026-11-24T15:45:28.000000007Z'],
    ['last ns of a second', 999_999_999n, epoch2017 - 2n * S, '2016-12-31T23:59:58.999999999Z'],
    ['crossing into the next second', 999_999_999n, epoch2017 - 2n * S + 1n, '2016-12-31T23:59:59.000000000Z'],
    ['no leap second 23:59:60: straight to the new year', 1_999_999_999n, epoch2017 - 2n * S + 1n, '2017-01-01T00:00:00.000000000Z'],
    ['boot time 0', 0n, OFFSET, '2026-11-24T15:45:23.000000000Z'],
    ['large uptime (1096 days, past 2^53 ns)', 1096n * 86400n * S, 0n, '1973-01-01T00:00:00.000000000Z'],
  ] as const;
  for (const [name, bootNs, offset, want] of cases) {
    t.equal(decodeAll(encodeRecord({ bootNs }), offset).events[0]?.time, want, name);
  }
  t.equal(decodeAll(encodeRecord({ bootNs: 0n }), -1n).events[0]?.time, '1969-12-31T23:59:59.999999999Z', 'before the epoch the fraction counts forward');
  t.equal(decodeAll(encodeRecord({ bootNs: 0n }), -S).events[0]?.time, '1969-12-31T23:59:59.000000000Z', 'a whole second before the epoch');

  // The per-second prefix cache must follow records that go back and forth across a second.
  const times = decodeAll(encodeBatch({ bootNs: 999_999_999n }, { bootNs: S }, { bootNs: S - 1n }, { bootNs: S + 5n }), epoch2017 - S)
    .events.map((e) => e.time);
  t.same(times, ['2016-12-31T23:59:59.999999999Z', '2017-01-01T00:00:00.000000000Z', '2016-12-31T23:59:59.999999999Z', '2017-01-01T00:00:00.000000005Z'], 'each time right in record order');
});

t.test('several records in one batch', async (t) => {
  const batch = encodeBatch(
    { pid: 1, bootNs: 10n, argv: ['a'] },
    { pid: 2, bootNs: 20n, argv: ['b', 'x'.repeat(37)] },
    { pid: 3, bootNs: 30n, filename: '/x', argv: [] },
  );
  const { events, bootNs, decoded, malformed } = decodeAll(batch);
  t.same({ decoded, malformed }, { decoded: 3, malformed: 0 }, 'three decoded');
  t.same(events.map((e) => [e.seq, e.pid, e.argv.length]), [[101, 1, 1], [102, 2, 2], [103, 3, 0]], 'in order, seq increasing');
  t.same(bootNs, [10, 20, 30], 'each with its boot_ns');
  t.same(decodeAll(Buffer.alloc(0)), { decoded: 0, malformed: 0, events: [], bootNs: [] }, 'an empty batch is nothing');
  const padded = encodeRecord({ recordLen: 512, argv: ['p'] });
  const after = decodeAll(Buffer.concat([padded, encodeRecord({ pid: 9 })])).events;
  t.same(after.map((e) => [e.argv, e.pid]), [[['p'], 4242], [['true'], 9]], 'extra padding is skipped by record_len');
});

t.test('malformed records are counted, end the batch, and never throw', async (t) => {
  const good = encodeRecord({ pid: 1 });
  const full = encodeRecord({ pid: 2, argv: ['abc'] });
  // A cut batch can only be noticed at its end: records after it would be framed from garbage.
  const cases = [
    ['record_len 0', encodeRecord({ recordLen: 0 }), good],
    ['record_len not a multiple of 8', encodeRecord({ recordLen: 380 }), good],
    ['record_len shorter than the header', encodeRecord({ recordLen: 344 }), good],
    ['filename_len beyond the record', encodeRecord({ filenameLen: 200 }), good],
    ['argv_len beyond the record', encodeRecord({ argvLen: 4096 }), good],
    ['record_len beyond the batch', encodeRecord({ recordLen: 1024 }).subarray(0, 512), good],
    ['batch cut inside a record', full.subarray(0, full.length - 8), Buffer.alloc(0)],
    ['batch cut inside a header', full.subarray(0, 100), Buffer.alloc(0)],
  ] as const;
  for (const [name, bad, after] of cases) {
    let result: ReturnType<typeof decodeAll> | undefined;
    t.doesNotThrow(() => {
      result = decodeAll(Buffer.concat([good, bad, after]));
    }, `${name}: no throw`);
    t.same([result?.decoded, result?.malformed, result?.events.map((e) => e.pid)], [1, 1, [1]], `${name}: the record before is decoded, then one malformed`);
  }
});

t.test('an exception from emit propagates (the tracer owns that policy)', async (t) => {
  const ctx: DecodeContext = { node: 'n', bootOffsetNs: 0n, nextSeq: () => 1 };
  t.throws(() => decodeBatch(encodeRecord(), ctx, () => {
    throw new Error('sink failed');
  }), /sink failed/, 'not swallowed');
});

t.test('argv is kept as the JSON the record needs, and made an array when asked', async (t) => {
  // The last column: whether the decoder keeps argv as its JSON (no byte to escape, all ASCII).
  const cases: [string, readonly string[] | Buffer, string[], boolean][] = [
    ['plain ASCII', ['ls', '-l', '/var/log'], ['ls', '-l', '/var/log'], true],
    ['empty arguments kept', ['a', '', 'b', ''], ['a', '', 'b', ''], true],
    ['no arguments', [], [], true],
    ['only a NUL', Buffer.from([0]), [''], true],
    ['unterminated last argument', Buffer.from('x\0yz'), ['x', 'yz'], true],
    ['quote, backslash, tab, DEL', ['sh', '-c', 'echo "a\\b"\t\x7f'], ['sh', '-c', 'echo "a\\b"\t\x7f'], false],
    ['a control character', ['printf', '\x1b[31m'], ['printf', '\x1b[31m'], false],
    ['DEL needs no escape', ['a\x7fb'], ['a\x7fb'], true],
    ['valid UTF-8', ['echo', 'naïve', '日本'], ['echo', 'naïve', '日本'], false],
    ['invalid UTF-8', Buffer.from('cat\0f\xffo\0', 'latin1'), ['cat', 'f\ufffdo'], false],
    ['exactly the argv budget', ['x'.repeat(ARGV_MAX - 1)], ['x'.repeat(ARGV_MAX - 1)], true],
    ['every byte a NUL', Buffer.alloc(ARGV_MAX), Array<string>(ARGV_MAX).fill(''), true],
    ['one byte over the budget', Buffer.alloc(ARGV_MAX + 1, 0x78), ['x'.repeat(ARGV_MAX + 1)], false],
    ['longer than the argv budget', ['x'.repeat(ARGV_MAX), 'y'.repeat(ARGV_MAX)], ['x'.repeat(ARGV_MAX), 'y'.repeat(ARGV_MAX)], false],
  ];
  for (const [name, argv, want, kept] of cases) {
    const event = decodeOne({ argv });
    t.ok(event instanceof DecodedEvent, `${name}: a DecodedEvent`);
    t.equal(DecodedEvent.argvJson(event), kept ? JSON.stringify(want) : undefined, `${name}: ${kept ? 'kept as exactly JSON.stringify(argv)' : 'left to JSON.stringify'}`);
    const fast = eventRecord(event).json;
    // The same event as a plain object (toJSON makes the array) must give the same text.
    const plain = (event as DecodedEvent).toJSON();
    t.same(plain.argv, want, `${name}: the array`);
    t.equal(DecodedEvent.argvJson(event), undefined, `${name}: once made, the array is the truth`);
    t.equal(fast, eventRecord(plain).json, `${name}: the record text is the same either way`);
    t.same(JSON.parse(fast), JSON.parse(JSON.stringify(event)), `${name}: and parses to the event`);
  }
  t.equal(DecodedEvent.argvJson(makeEventLike()), undefined, 'a plain object has no kept JSON');
  t.equal(DecodedEvent.timeMs(makeEventLike()), undefined, 'nor a decoder time');

  const replaced = decodeOne({ argv: ['old', 'args'] });
  replaced.argv = ['new'];
  t.equal(JSON.parse(eventRecord(replaced).json).argv[0], 'new', 'an assigned array replaces the kept JSON');
  t.same(Object.keys(JSON.parse(eventRecord(replaced).json)).slice(10, 13), ['filename', 'argv', 'argc'], 'argv stays in its place');
});

t.test('the front text the decoder writes is the text the fields give, and only plain fields get one', async (t) => {
  const FRONT = true;
  // [name, record fields, node, first seq, whether the decoder writes the front text]
  const cases: [string, Partial<RecordFields>, string, number, boolean][] = [
    ['defaults', {}, 'node-1', 100, FRONT],
    ['every flag, a failed exec, the largest numbers', { flags: 0xff, retval: -2147483648, pid: 2 ** 32 - 1, tid: 0, ppid: 1, uid: 2 ** 32 - 2, gid: 10, argc: 2 ** 32 - 1 }, 'node-1', 2 ** 53 - 2, FRONT],
    ['a positive retval, seq 0', { retval: 7 }, 'ip-10-0-0-1.ec2.internal', -1, FRONT],
    ['an empty node name, comm, parentComm, filename and argv', { comm: '', parentComm: '', filename: '', argv: [] }, '', 0, FRONT],
    ['a 16-byte comm without NUL', { comm: 'abcdefghijklmnop', parentComm: 'ABCDEFGHIJKLMNOP' }, 'n', 1, FRONT],
    ['DEL in the filename', { filename: '/tmp/a\x7fb' }, 'n', 1, FRONT],
    ['a quote in comm', { comm: 'a"b' }, 'n', 1, false],
    ['a non-ASCII parentComm', { parentComm: 'naïve' }, 'n', 1, false],
    ['a backslash in the filename', { filename: 'C:\\x' }, 'n', 1, false],
    ['a tab in an argument', { argv: ['printf', 'a\tb'] }, 'n', 1, false],
    ['a node name JSON escapes', {}, 'node"1', 1, FRONT],
    ['a non-ASCII node name', {}, 'nœud', 1, false],
    ['a node name whose JSON is 512 characters', {}, 'n'.repeat(510), 1, FRONT],
    ['a node name whose JSON is 513 characters', {}, 'n'.repeat(511), 1, false],
    ['a filename longer than the kernel sends', { filename: '/'.repeat(FILENAME_MAX + 1) }, 'n', 1, false],
  ];
  for (const [name, fields, node, firstSeq, front] of cases) {
    const { events } = decodeAll(encodeRecord(fields), OFFSET, node, firstSeq);
    const event = events[0] as DecodedEvent;
    t.equal(DecodedEvent.front(event) !== undefined, front, `${name}: ${front ? 'written from the bytes' : 'left to the serializer'}`);
    const fast = eventRecord(event);
    const plain = eventRecord(event.toJSON());
    t.equal(fast.json, plain.json, `${name}: the same text as from the fields`);
    t.same([fast.filenameAt, fast.argvAt, fast.argvEnd, fast.escaped], [plain.filenameAt, plain.argvAt, plain.argvEnd, plain.escaped], `${name}: filename and argv at the same places`);
    t.same(JSON.parse(fast.json), JSON.parse(JSON.stringify(event)), `${name}: and it parses to the event`);
    t.ok(fast.json.startsWith(fast.front) && fast.front.length >= fast.argvEnd, `${name}: the front the filters search begins the text and holds argv`);
    t.ok(compileFilter({ filename: event.filename })(fast), `${name}: the filename filter matches its filename`);
    t.notOk(compileFilter({ filename: `${event.filename}x` })(fast), `${name}: and no other`);
  }
  t.equal(DecodedEvent.front(makeEventLike()), undefined, 'a plain object has no front text');

  // The q filter searches filename and arguments in the front text, and nothing else of it.
  const found = (q: string, fields: Partial<RecordFields>) => {
    const event = decodeOne(fields);
    t.ok(DecodedEvent.front(event) !== undefined, `${JSON.stringify(fields)}: a front text`);
    return compileFilter({ q })(eventRecord(event));
  };
  t.ok(found('bin/tr', {}), 'q: in the filename');
  t.ok(found('-rf', { argv: ['rm', '-rf', '/tmp/x'] }), 'q: in an argument');
  t.notOk(found('a,b', { argv: ['a', 'b'] }), 'q: not across two arguments');
  t.ok(found('a,b', { argv: ['x', 'a,b'] }), 'q: a comma inside an argument');
  t.notOk(found('zzcomm', { comm: 'zzcomm' }), 'q: not in comm');
  t.notOk(found('4242', { pid: 4242 }), 'q: not in the numbers');
});

t.test('redaction reaches the record text of a decoded event', async (t) => {
  const event = decodeOne({ argv: ['mysql', '--password=hunter2', '-u', 'root'] });
  t.ok(createRedactor([/--password=\S+/g])(event), 'redacted');
  const json = eventRecord(event).json;
  t.notMatch(json, /hunter2/, 'the secret is not in the text');
  t.same(JSON.parse(json).argv, ['mysql', '***', '-u', 'root'], 'the redacted argv is');
  const clean = decodeOne({ argv: ['mysql', '-u', 'root'] });
  t.notOk(createRedactor([/--password=\S+/g])(clean), 'nothing to redact');
  t.equal(DecodedEvent.argvJson(clean), '["mysql","-u","root"]', 'an event without secrets keeps the decoder text');
});

t.test("the waiting room's estimate of a decoded event leaves its argv JSON in place", async (t) => {
  const argv = ['java', '-jar', 'x'.repeat(1000)];
  const event = decodeOne({ argv });
  t.ok(eventBytes(event) >= 1000 + 512, `the arguments count (${eventBytes(event)})`);
  t.equal(DecodedEvent.argvJson(event), JSON.stringify(argv), 'the text is still kept');
  t.ok(Math.abs(eventBytes(event) - eventBytes({ ...(event as DecodedEvent).toJSON() })) < 2 * 1000, 'near the estimate of the same event as an array');
});

t.test('the decoder time gives the record the same milliseconds as parsing the text', async (t) => {
  const S = 1_000_000_000n;
  for (const bootNs of [0n, 1n, 999_999_999n, 123_456_789n * S + 987_654_321n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 60n + 12_345n]) {
    const event = decodeOne({ bootNs });
    t.ok(Object.is(eventRecord(event).timeMs, timeMs(event.time)), `boot ns ${bootNs}: ${event.time}`);
  }
});

t.test('cgroup names are decoded once per cgroup, and follow its bytes', async (t) => {
  const v1Fields: Partial<RecordFields>[] = [
    { cgroupId: 1n, cgroup: 'a.scope', cgroupParent: 'p.slice' },
    { cgroupId: 1n, cgroup: 'b.scope', cgroupParent: 'p.slice' },
    { cgroupId: 1n, cgroup: 'b.scope', cgroupParent: 'q.slice' },
    { cgroupId: 1n, cgroup: 'b.scopeX', cgroupParent: 'q.slice' },
    { cgroupId: 1n, cgroup: 'b.scope', cgroupParent: 'q.slice' },
    { cgroupId: 1n, cgroup: 'c'.repeat(CGROUP_LEAF_LEN), cgroupParent: 'p'.repeat(CGROUP_PARENT_LEN) },
    { cgroupId: 1n, cgroup: 'c'.repeat(CGROUP_LEAF_LEN), cgroupParent: 'p'.repeat(CGROUP_PARENT_LEN) },
    { cgroupId: 1n, cgroup: 'c'.repeat(CGROUP_LEAF_LEN - 1), cgroupParent: 'p'.repeat(CGROUP_PARENT_LEN) },
  ];
  const names = (events: ExecEvent[]) =>
    events.map((e) => [e.cgroup.length > 20 ? e.cgroup.length : e.cgroup, e.cgroupParent.length > 20 ? e.cgroupParent.length : e.cgroupParent]);
  const v1 = decodeAll(encodeBatch(...v1Fields.map((f) => ({ ...f, flags: FLAGS.CGROUP_V1 })))).events;
  t.same(
    names(v1),
    [['a.scope', 'p.slice'], ['b.scope', 'p.slice'], ['b.scope', 'q.slice'], ['b.scopeX', 'q.slice'], ['b.scope', 'q.slice'],
      [CGROUP_LEAF_LEN, CGROUP_PARENT_LEN], [CGROUP_LEAF_LEN, CGROUP_PARENT_LEN], [CGROUP_LEAF_LEN - 1, CGROUP_PARENT_LEN]],
    'one id, names changing from record to record (cgroup v1, the flag set): each event has its own',
  );
  // On cgroup v2 an id names one cgroup for the whole boot (v2 cgroups cannot be renamed).
  const v2 = decodeAll(encodeBatch({ cgroupId: 2n, cgroup: 'a.scope', cgroupParent: 'p.slice' }, { cgroupId: 2n, cgroup: 'b.scope', cgroupParent: 'q.slice' })).events;
  t.same(names(v2), [['a.scope', 'p.slice'], ['a.scope', 'p.slice']], 'cgroup v2: the names of an id are decoded once');
  // A hybrid host: the v2 root's id also carries the names of cgroup v1 records.
  const hybrid = decodeAll(encodeBatch(
    { cgroupId: 3n, cgroup: '', cgroupParent: '' },
    { cgroupId: 3n, cgroup: 'docker-1.scope', cgroupParent: 'system.slice', flags: FLAGS.CGROUP_V1 },
    { cgroupId: 3n, cgroup: '', cgroupParent: '' },
  )).events;
  t.same(names(hybrid), [['', ''], ['docker-1.scope', 'system.slice'], ['', '']], 'one id for v2 and v1 names: each record has its own');
  // More cgroups than are remembered, then the first ones again.
  const many = Array.from({ length: 5000 }, (_, i) => ({ cgroupId: BigInt(10_000 + i), cgroup: `s${i}.scope` }));
  const events = decodeAll(encodeBatch(...many, ...many.slice(0, 10))).events;
  t.equal(events.length, 5010, 'all decoded');
  t.ok(events.every((e, i) => e.cgroup === `s${i % 5000}.scope` && e.cgroupId === String(10_000 + (i % 5000))), 'every name and id right past the bound');
  // The cache was cleared when full: ids from before (and not seen since) are read again when
  // they come back with other names (not possible on v2, but it shows what is still held).
  const renamed = decodeAll(encodeBatch(...many.slice(10, 20).map((f) => ({ ...f, cgroup: `${f.cgroup}.new` })))).events;
  t.ok(renamed.every((e, i) => e.cgroup === `s${10 + i}.scope.new`), 'early ids were dropped when the cache filled');
  const held = decodeAll(encodeBatch(...many.slice(4990).map((f) => ({ ...f, cgroup: 'other.scope' })))).events;
  t.ok(held.every((e, i) => e.cgroup === `s${4990 + i}.scope`), 'the latest ids are still held (names decoded once per id on v2)');
  // The same for comm and parentComm, which are kept once per value.
  const comms = Array.from({ length: 5000 }, (_, i) => ({ comm: `worker-${i}`, parentComm: `parent-${i % 4500}` }));
  const named = decodeAll(encodeBatch(...comms, ...comms.slice(0, 10))).events;
  t.ok(named.every((e, i) => e.comm === `worker-${i % 5000}` && e.parentComm === `parent-${(i % 5000) % 4500}`), 'every comm right past the bound');
});
