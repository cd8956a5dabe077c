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
  EXIT_OFFSETS,
  EXIT_SIZE,
  exitOf,
  FILENAME_MAX,
  FLAGS,
  HEADER_SIZE,
  RECORD_KINDS,
  RECORD_OFFSETS,
  THROTTLE_OFFSETS,
  THROTTLE_SIZE,
  EventClock,
  ExecCgroups,
  execCgroupsMax,
  type DecodeContext,
} from '../src/capture/decode.js';
import { CGROUP_STAT_OFFSETS, CGROUP_STAT_SIZE, CGROUP_STATS_SIZE, CGROUP_STATS_SLOTS, THROTTLE_QUIET_NS } from '../src/capture/cgroup-stats.js';
import { createRedactor } from '../src/events/redact.js';
import { execIdOf, execIdOfTicks } from '../src/events/exec-id.js';
import { serializeEvent, type AgentEvent, type ExecEvent, type ExitEvent, type ThrottleEvent } from '../src/events/schema.js';
import { repoRoot } from './helpers/kernel.js';
import { decodeContext } from './helpers/decode-context.js';
import { encodeBatch, encodeExit, encodeRecord, encodeThrottle, type RecordFields } from './helpers/records.js';

const header = readFileSync(join(repoRoot, 'bpf', 'execwatch.h'), 'utf8');

/** 2026-11-24T16:02:03Z as ns since the epoch, minus 1000 s of uptime: the default offset. */
const WALL_2026 = BigInt(Date.UTC(2026, 10, 24, 16, 2, 3)) * 1_000_000n;
const OFFSET = WALL_2026 - 1000n * 1_000_000_000n;
const BOOT_ID = '0123456789abcdef0123456789abcdef';

function decodeAll(batch: Buffer, bootOffsetNs = OFFSET, node = 'node-1', clock = new EventClock(), cgroups = new ExecCgroups(8, () => true)) {
  const ctx: DecodeContext = { ...decodeContext(node, bootOffsetNs, BOOT_ID), clock, cgroups };
  const events: { event: ExecEvent; bootNs: number }[] = [];
  const result = decodeBatch(batch, ctx, (event, bootNs) => events.push({ event: event as ExecEvent, bootNs }));
  return { ...result, events: events.map((e) => e.event), bootNs: events.map((e) => e.bootNs) };
}

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
  t.same(RECORD_KINDS, enumOf('execwatch_record_kind', 'EXECWATCH_RECORD_'), 'RECORD_KINDS = enum execwatch_record_kind');

  // Lay each struct out as the C compiler does (natural alignment; all fields here are naturally sized).
  const sizes: Record<string, number> = { __u64: 8, __s64: 8, __u32: 4, __s32: 4, __u16: 2, char: 1 };
  const layout = (struct: string) => {
    const body = new RegExp(`struct ${struct} \\{([^}]*)\\}`).exec(header)?.[1] ?? '';
    const offsets: Record<string, number> = {};
    let at = 0;
    for (const [, type, name, count] of body.replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/(\w+)\s+(\w+)(?:\[(\w+)\])?;/g)) {
      const size = sizes[type as string] as number;
      at = Math.ceil(at / size) * size;
      offsets[name as string] = at;
      at += size * (count === undefined ? 1 : define(count));
    }
    return { offsets, size: at };
  };
  const exec = layout('execwatch_record');
  t.same(exec.offsets, RECORD_OFFSETS, 'RECORD_OFFSETS = the C layout');
  t.equal(exec.size, HEADER_SIZE, 'the fields end at EXECWATCH_HEADER_SIZE');
  const exit = layout('execwatch_exit_record');
  t.same(exit.offsets, EXIT_OFFSETS, 'EXIT_OFFSETS = the C layout');
  t.equal(exit.size, EXIT_SIZE, 'the exit record\'s fixed part is EXECWATCH_EXIT_SIZE bytes');
  t.equal(EXIT_SIZE, define('EXECWATCH_EXIT_SIZE'), 'EXIT_SIZE');
  t.same(Object.keys(exit.offsets).slice(0, 5), Object.keys(exec.offsets).slice(0, 5), 'both start with the common 24 bytes');
  t.equal(exit.offsets.pid, exec.offsets.pid, 'the common bytes end at the same place');
  const throttle = layout('execwatch_throttle_record');
  t.same(throttle.offsets, THROTTLE_OFFSETS, 'THROTTLE_OFFSETS = the C layout');
  t.equal(throttle.size, THROTTLE_SIZE, 'the throttle record\'s fixed part is EXECWATCH_THROTTLE_SIZE bytes');
  t.equal(THROTTLE_SIZE, define('EXECWATCH_THROTTLE_SIZE'), 'THROTTLE_SIZE');
  t.same(Object.keys(throttle.offsets).slice(0, 5), Object.keys(exec.offsets).slice(0, 5), 'it starts with the common 24 bytes too');
  const stat = layout('execwatch_cgroup_stat');
  t.same(stat.offsets, CGROUP_STAT_OFFSETS, 'CGROUP_STAT_OFFSETS = the C layout');
  t.equal(stat.size, CGROUP_STAT_SIZE, 'a slot is CGROUP_STAT_SIZE bytes');
  t.equal(CGROUP_STATS_SLOTS, define('EXECWATCH_CGROUP_STATS_SLOTS'), 'CGROUP_STATS_SLOTS');
  t.equal(CGROUP_STATS_SIZE, (CGROUP_STATS_SLOTS + 1) * CGROUP_STAT_SIZE, 'a CPU\'s table: `other`, then the slots');
  t.equal(THROTTLE_QUIET_NS, BigInt(/#define EXECWATCH_THROTTLE_QUIET_NS (\d+)ULL/.exec(header)?.[1] ?? '0'), 'THROTTLE_QUIET_NS');
});

t.test('a throttle record decodes into the start of an episode', async (t) => {
  const ctx = decodeContext('node-1', OFFSET, BOOT_ID);
  const got: ThrottleEvent[] = [];
  const result = decodeBatch(
    Buffer.concat([encodeThrottle({ bootNs: 1000n * 1_000_000_000n + 5n, cgroupId: 77n, pid: 31, tid: 32, comm: 'loop', cgroup: 'cri-containerd-ab.scope', cgroupParent: 'kubepods-pod1.slice', flags: FLAGS.CGROUP_NAME_TRUNCATED }), encodeRecord({})]),
    ctx,
    (event) => got.push(event as ThrottleEvent),
  );
  t.same(result, { decoded: 2, malformed: 0 }, 'the throttle record and the exec after it');
  t.same(got[0], {
    seq: 0, kind: 'throttle', phase: 'start', time: '2026-11-24T16:02:03.000000005Z', node: 'node-1',
    since: '2026-11-24T16:02:03.000000005Z', suppressed: 0, pid: 31, comm: 'loop',
    cgroupId: '77', cgroup: 'cri-containerd-ab.scope', cgroupParent: 'kubepods-pod1.slice', cgroupTruncated: true,
    containerId: null, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'unresolved',
  }, 'the throttle event, its pod to be found by the enricher');
  t.equal(got[1]?.kind, 'exec', 'then the exec');
  t.same(decodeBatch(encodeThrottle({ recordLen: 48 }), ctx, () => {}), { decoded: 0, malformed: 1 }, 'a throttle record shorter than its fixed part is malformed');
  t.same(decodeBatch(encodeThrottle({ recordLen: 56 }), ctx, () => {}), { decoded: 0, malformed: 1 }, 'and one whose cgroup names run past its record_len');
});

t.test('a record decodes into the ExecEvent contract', async (t) => {
  const { events, bootNs, decoded, malformed } = decodeAll(
    encodeRecord({
      bootNs: 1000n * 1_000_000_000n + 123_456_789n,
      cgroupId: 4711n,
      pid: 4242, tid: 4243, ppid: 4200, uid: 1000, gid: 1001, retval: 0,
      startNs: 12_345_678_901n, forkParentStartNs: 1_000_000_000n, euid: 0, egid: 42, loginuid: 1000, sessionid: 7,
      comm: 'curl', parentComm: 'sh', cgroup: 'cri-containerd-3f1c.scope', cgroupParent: 'kubepods-pod12.slice',
      filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'],
    }),
  );
  const scope = { node: 'node-1', bootId: BOOT_ID };
  t.same({ decoded, malformed }, { decoded: 1, malformed: 0 }, 'one record, nothing malformed');
  t.same(
    events[0],
    {
      seq: 0, kind: 'exec', time: '2026-11-24T16:02:03.123456789Z', node: 'node-1',
      pid: 4242, tid: 4243, ppid: 4200,
      execId: execIdOfTicks(scope, 1234, 4242), parentExecId: execIdOfTicks(scope, 100, 4200),
      uid: 1000, gid: 1001, euid: 0, egid: 42, euidDiffers: true, loginuid: 1000, sessionid: 7,
      comm: 'curl', parentComm: 'sh', ancestors: [], filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'], argc: 3,
      argvTruncated: false, filenameTruncated: false, retval: 0, fileless: false, drift: false, execveat: false, readError: false,
      cgroupId: '4711', cgroup: 'cri-containerd-3f1c.scope', cgroupParent: 'kubepods-pod12.slice', cgroupTruncated: false,
      containerId: null, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'unresolved',
      origin: 'workload', sessionExecId: null,
    },
    'every field; seq (given at delivery) 0, enrichment fields null, attribution unresolved until enriched',
  );
  t.same(Object.keys(events[0] as ExecEvent).filter((k) => k.endsWith('Base64')), [], 'no base64 fields for UTF-8 input');
  t.same(bootNs, [1000 * 1_000_000_000 + 123_456_789], 'emit receives the record boot_ns');
});

t.test('audit ids: unset is null; euid equal to uid is no difference', async (t) => {
  const unset = decodeOne({ loginuid: 4294967295, sessionid: 4294967295, uid: 5, euid: 5 });
  t.same([unset.loginuid, unset.sessionid, unset.euidDiffers], [null, null, false], 'null, null, false');
  const set = decodeOne({ loginuid: 0, sessionid: 0 });
  t.same([set.loginuid, set.sessionid], [0, 0], 'zero is an id');
});

t.test('origin as the kernel sees it: pid 1 of its namespace, a parent in another namespace, else inside', async (t) => {
  const HOST_NS = 4026531836;
  const POD_NS = 4026532999;
  const cases = [
    ['pid 1 of a new pid namespace', { pidns: POD_NS, parentPidns: HOST_NS, nsPid: 1 }, 'init'],
    ['a parent outside its pid namespace (nsenter, a runtime\'s exec)', { pidns: POD_NS, parentPidns: HOST_NS, nsPid: 7 }, 'exec'],
    ['a parent in the same namespace', { pidns: POD_NS, parentPidns: POD_NS, nsPid: 8 }, 'workload'],
    ['a failed exec (the kernel reads no namespaces for it)', { pidns: 0, parentPidns: 0, nsPid: 0, retval: -2 }, 'workload'],
  ] as const;
  for (const [what, fields, origin] of cases) t.equal(decodeOne(fields).origin, origin, what);
});

t.test('execId: the start time in clock ticks, as /proc/PID/stat field 22 counts them', async (t) => {
  const scope = { node: 'node-1', bootId: BOOT_ID };
  const event = decodeOne({ startNs: 12_349_999_999n, pid: 77 });
  t.equal(event.execId, execIdOfTicks(scope, 1234, 77), 'floor(ns / 10 ms)');
  t.equal(event.execId, execIdOf(scope, 12_340_000_000n, 77), 'the same tick, the same id');
  t.not(decodeOne({ startNs: 12_350_000_000n, pid: 77 }).execId, event.execId, 'the next tick, another id');
  t.not(decodeOne({ startNs: 12_349_999_999n, pid: 78 }).execId, event.execId, 'another pid, another id');
  t.match(event.execId, /^[A-Za-z0-9_.-]+$/, 'URL-safe');
});

t.test('parentExecId names the parent at the fork; ppid and parentComm the parent at the exec', async (t) => {
  const scope = { node: 'node-1', bootId: BOOT_ID };
  // The shell that forked it (pid 300) exited; the kernel gave the process to pid 1.
  const event = decodeOne({ ppid: 1, parentComm: 'systemd', forkPpid: 300, forkParentStartNs: 7_000_000_000n });
  t.same([event.ppid, event.parentComm], [1, 'systemd'], 'ppid: the real parent now');
  t.equal(event.parentExecId, execIdOfTicks(scope, 700, 300), 'parentExecId: the shell that forked it');
});

t.test('an exit record decodes into the ExitEvent contract', async (t) => {
  const ctx = decodeContext('node-1', OFFSET, BOOT_ID);
  const got: AgentEvent[] = [];
  const result = decodeBatch(
    Buffer.concat([
      encodeRecord({ pid: 10 }),
      encodeExit({
        bootNs: 1001n * 1_000_000_000n, execNs: 999n * 1_000_000_000n + 500_000_000n, startNs: 5_000_000_000n,
        pid: 4242, tid: 4243, status: 3 << 8, orphans: 2, comm: 'sh', cgroupId: 99n, cgroup: 'c.scope', cgroupParent: 'p.slice',
        flags: FLAGS.CGROUP_NAME_TRUNCATED,
      }),
    ]),
    ctx,
    (event) => got.push(event),
  );
  t.same(result, { decoded: 2, malformed: 0 }, 'an exec and an exit in one batch');
  t.same(got[1], {
    seq: 0, kind: 'exit', time: '2026-11-24T16:02:04.000000000Z', node: 'node-1',
    execId: execIdOfTicks({ node: 'node-1', bootId: BOOT_ID }, 500, 4242), pid: 4242, tid: 4243, comm: 'sh',
    status: 'error', code: 3, signal: null, coreDumped: false, duration: 1.5, execTime: '2026-11-24T16:02:02.500000000Z', orphans: 2,
    cgroupId: '99', cgroup: 'c.scope', cgroupParent: 'p.slice', cgroupTruncated: true,
    containerId: null, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'unresolved',
    origin: 'workload', sessionExecId: null,
  } satisfies ExitEvent, 'every field');
  const bad = [
    ['record_len shorter than the fixed part', encodeExit({ recordLen: 72 })],
    ['cgroup names past record_len', encodeExit({ recordLen: 80 })],
    ['an unknown kind', encodeExit({ kind: 2 })],
    ['shorter than the common bytes', encodeExit().subarray(0, 16)],
  ] as const;
  for (const [name, bytes] of bad) {
    t.same(decodeBatch(bytes, ctx, () => t.fail('nothing decoded')), { decoded: 0, malformed: 1 }, `${name}: malformed`);
  }
});

t.test('an exit in its exec\'s cgroups carries no names: it takes its exec\'s', async (t) => {
  const cgroups = new ExecCgroups(8, () => true);
  const decode = (...records: Buffer[]) => decodeAll(Buffer.concat(records), OFFSET, 'node-1', new EventClock(), cgroups).events as unknown as AgentEvent[];
  const asExec = { flags: FLAGS.CGROUP_AS_EXEC, cgroupId: 7n, cgroup: '', cgroupParent: '' };
  const [exec] = decode(encodeRecord({ pid: 20, startNs: 9_000_000_000n, cgroupId: 31n, cgroup: 'cri-containerd-ab.scope', cgroupParent: 'kubepods-pod1.slice', flags: FLAGS.CGROUP_NAME_TRUNCATED }));
  t.equal(cgroups.size, 1, 'a successful exec is remembered');
  decode(encodeRecord({ pid: 20, startNs: 9_000_000_000n, retval: -2, cgroup: 'other.scope' }));
  const [exit] = decode(encodeExit({ pid: 20, startNs: 9_000_000_000n, ...asExec }));
  t.match(exit, { kind: 'exit', execId: (exec as ExecEvent).execId, cgroupId: '31', cgroup: 'cri-containerd-ab.scope', cgroupParent: 'kubepods-pod1.slice', cgroupTruncated: true }, 'in a later batch, the exec\'s cgroup (a failed exec in between changes nothing)');
  t.equal(cgroups.size, 0, 'and the entry leaves with the exit');
  decode(encodeRecord({ pid: 21, startNs: 9_000_000_000n, cgroup: 'a.scope' }));
  const [moved] = decode(encodeExit({ pid: 21, startNs: 9_000_000_000n, cgroupId: 8n, cgroup: 'b.scope', cgroupParent: 'p.slice' }));
  t.match(moved, { cgroupId: '8', cgroup: 'b.scope', cgroupParent: 'p.slice', cgroupTruncated: false }, 'a process that moved: the names its exit carries');
  t.equal(cgroups.size, 0, 'its entry leaves too');
  const [unknown] = decode(encodeExit({ pid: 22, ...asExec }));
  t.match(unknown, { cgroupId: '7', cgroup: '', cgroupParent: '' }, 'an exit whose exec is not known: its cgroup by id alone');

  const where = { cgroupId: '1', cgroup: '', cgroupParent: '', cgroupTruncated: false };
  const running = new Set(['a', 'c', 'd']);
  const full = new ExecCgroups(3, (pid) => running.has(String.fromCharCode(pid)));
  for (const id of ['a', 'b', 'c', 'd']) full.remember(id, id.charCodeAt(0), 0n, where);
  t.equal(full.size, 3, 'past its bound, the entries of processes no longer running go (b\'s exit was lost)');
  t.equal(full.take('b'), undefined, 'b is gone');
  t.equal(full.take('a'), where, 'a, the oldest, still runs: kept');
  const blind = new ExecCgroups(2, () => true);
  blind.remember('a', 1, 0n, where);
  blind.remember('b', 2, 0n, where);
  blind.remember('a', 1, 0n, where);
  blind.remember('c', 3, 0n, where);
  t.equal(blind.size, 2, 'when every one seems to run, bounded all the same');
  t.equal(blind.take('b'), undefined, 'the oldest goes first (a new image of a counts as new)');
  t.equal(blind.take('a'), where, 'the others stay');
  t.equal(execCgroupsMax(2), 65_536, 'twice the kernel\'s table of processes: 32,768 up to 32 CPUs');
  t.equal(execCgroupsMax(64), 131_072, 'and 1,024 per CPU beyond');
});

t.test('wait statuses', async (t) => {
  const cases = [
    [0, { status: 'ok', code: 0, signal: null, coreDumped: false }],
    [3 << 8, { status: 'error', code: 3, signal: null, coreDumped: false }],
    [255 << 8, { status: 'error', code: 255, signal: null, coreDumped: false }],
    [9, { status: 'signal', code: null, signal: 9, coreDumped: false }],
    [11 | 0x80, { status: 'signal', code: null, signal: 11, coreDumped: true }],
  ] as const;
  for (const [status, want] of cases) t.same(exitOf(status), want, `0x${status.toString(16)}`);
});

t.test('flags', async (t) => {
  const booleans = ['argvTruncated', 'filenameTruncated', 'readError', 'execveat', 'fileless', 'cgroupTruncated', 'drift'] as const;
  const cases = [
    [FLAGS.ARGV_TRUNCATED, ['argvTruncated']],
    [FLAGS.FILENAME_TRUNCATED, ['filenameTruncated']],
    [FLAGS.READ_ERROR, ['readError']],
    [FLAGS.EXECVEAT, ['execveat']],
    [FLAGS.FILELESS, ['fileless']],
    [FLAGS.CGROUP_NAME_TRUNCATED, ['cgroupTruncated']],
    [FLAGS.DRIFT, ['drift']],
    [FLAGS.CGROUP_V1 | FLAGS.NO_ENTER_STATE, []],
    [0, []],
    [0x1ff, booleans],
  ] as const;
  for (const [flags, set] of cases) {
    const event = decodeOne({ flags });
    // What readers get.
    const json = JSON.parse(serializeEvent(event)) as Record<string, unknown>;
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
  const atBatchEnd = encodeRecord({ cgroup: '', cgroupParent: '', filename: '/x', argv: Buffer.from('ab\0cde') });
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

t.test('names: comm in its fixed field, the cgroups\' by their lengths', async (t) => {
  const full = decodeOne({ comm: 'x'.repeat(16), parentComm: 'abc\0garbage', cgroup: 'c'.repeat(256), cgroupParent: 'p'.repeat(128) });
  t.equal(full.comm, 'x'.repeat(16), 'a comm filling its 16 bytes has no NUL and is read whole');
  t.equal(full.parentComm, 'abc', 'bytes after the NUL are ignored');
  t.equal(full.cgroup, 'c'.repeat(256), 'a 256-byte leaf name is read whole, not into the parent');
  t.equal(full.cgroupParent, 'p'.repeat(128), 'a 128-byte parent name is read whole, not into the filename');
  t.equal(full.filename, '/usr/bin/true', 'and the filename starts after them');
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

  // Everything at its largest at once.
  const node = `${'n'.repeat(252)}.`;
  const largest = decodeAll(encodeRecord({ filename, argv: Buffer.alloc(ARGV_MAX), comm: 'c'.repeat(16), parentComm: 'p'.repeat(16), retval: -2147483648, pid: 2 ** 32 - 1 }), OFFSET, node).events[0] as ExecEvent;
  const parsed = JSON.parse(serializeEvent(largest)) as ExecEvent;
  t.same([parsed.node, parsed.filename, parsed.argv.length, parsed.retval, parsed.pid], [node, filename, ARGV_MAX, -2147483648, 2 ** 32 - 1], 'whole: node, filename, every argument, the extreme numbers');
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

  // Records that go back and forth across a second.
  const times = decodeAll(encodeBatch({ bootNs: 999_999_999n }, { bootNs: S }, { bootNs: S - 1n }, { bootNs: S + 5n }), epoch2017 - S)
    .events.map((e) => e.time);
  t.same(times, ['2016-12-31T23:59:59.999999999Z', '2017-01-01T00:00:00.000000000Z', '2016-12-31T23:59:59.999999999Z', '2017-01-01T00:00:00.000000005Z'], 'each time right in record order');

  // One clock for every batch, as the tracer keeps it: three seconds in turn, and the wall clock
  // stepped between two batches (NTP), never a second's text from before.
  const clock = new EventClock();
  const timeAt = (bootNs: bigint, offset: bigint) => decodeAll(encodeRecord({ bootNs }), offset, 'node-1', clock).events[0]?.time;
  const seconds = [0n, 1n, 2n, 0n, 2n, 1n, 1n, 0n].map((second) => timeAt(second * S + 42n, epoch2017));
  t.same(seconds, [0, 1, 2, 0, 2, 1, 1, 0].map((second) => `2017-01-01T00:00:0${second}.000000042Z`), 'the second of each record, whichever were seen before');
  t.equal(timeAt(S + 42n, epoch2017 + 3600n * S), '2017-01-01T01:00:01.000000042Z', 'the same boot time after the wall clock moved an hour');
});

t.test('several records in one batch', async (t) => {
  const batch = encodeBatch(
    { pid: 1, bootNs: 10n, argv: ['a'] },
    { pid: 2, bootNs: 20n, argv: ['b', 'x'.repeat(37)] },
    { pid: 3, bootNs: 30n, filename: '/x', argv: [] },
  );
  const { events, bootNs, decoded, malformed } = decodeAll(batch);
  t.same({ decoded, malformed }, { decoded: 3, malformed: 0 }, 'three decoded');
  t.same(events.map((e) => [e.pid, e.argv.length]), [[1, 1], [2, 2], [3, 0]], 'in order');
  t.same(bootNs, [10, 20, 30], 'each with its boot_ns');
  t.same(decodeAll(Buffer.alloc(0)), { decoded: 0, malformed: 0, events: [], bootNs: [] }, 'an empty batch is nothing');
  const padded = encodeRecord({ recordLen: 600, argv: ['p'] });
  const after = decodeAll(Buffer.concat([padded, encodeRecord({ pid: 9 })])).events;
  t.same(after.map((e) => [e.argv, e.pid]), [[['p'], 4242], [['true'], 9]], 'extra padding is skipped by record_len');
});

t.test('malformed records are counted, end the batch, and never throw', async (t) => {
  const good = encodeRecord({ pid: 1 });
  const full = encodeRecord({ pid: 2, argv: ['abc'] });
  // A cut batch can only be noticed at its end: records after it would be framed from garbage.
  const cases = [
    ['record_len 0', encodeRecord({ recordLen: 0 }), good],
    ['a kind this agent does not know', encodeRecord({ kind: 9 }), good],
    ['record_len not a multiple of 8', encodeRecord({ recordLen: 380 }), good],
    ['record_len shorter than the header', encodeRecord({ recordLen: 136 }), good],
    ['cgroup names beyond the record', encodeRecord({ cgroupLeafLen: 300 }), good],
    ['filename_len beyond the record', encodeRecord({ filenameLen: 200 }), good],
    ['argv_len beyond the record', encodeRecord({ argvLen: 4096 }), good],
    ['record_len beyond the batch', encodeRecord({ recordLen: 2048 }).subarray(0, 600), good],
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
  const ctx = decodeContext('n', 0n, BOOT_ID);
  t.throws(() => decodeBatch(encodeRecord(), ctx, () => {
    throw new Error('sink failed');
  }), /sink failed/, 'not swallowed');
});

t.test('argv at the edges of its encoding and of the budget', async (t) => {
  const cases: [string, readonly string[] | Buffer, string[]][] = [
    ['plain ASCII', ['ls', '-l', '/var/log'], ['ls', '-l', '/var/log']],
    ['no arguments', [], []],
    ['only a NUL', Buffer.from([0]), ['']],
    ['quote, backslash, tab, DEL', ['sh', '-c', 'echo "a\\b"\t\x7f'], ['sh', '-c', 'echo "a\\b"\t\x7f']],
    ['a control character', ['printf', '\x1b[31m'], ['printf', '\x1b[31m']],
    ['valid UTF-8', ['echo', 'naïve', '日本'], ['echo', 'naïve', '日本']],
    ['invalid UTF-8', Buffer.from('cat\0f\xffo\0', 'latin1'), ['cat', 'f\ufffdo']],
    ['exactly the argv budget', ['x'.repeat(ARGV_MAX - 1)], ['x'.repeat(ARGV_MAX - 1)]],
    ['every byte a NUL', Buffer.alloc(ARGV_MAX), Array<string>(ARGV_MAX).fill('')],
    ['longer than the argv budget', ['x'.repeat(ARGV_MAX), 'y'.repeat(ARGV_MAX)], ['x'.repeat(ARGV_MAX), 'y'.repeat(ARGV_MAX)]],
  ];
  for (const [name, argv, want] of cases) {
    const event = decodeOne({ argv });
    t.same(event.argv, want, `${name}: the array`);
    t.same(JSON.parse(serializeEvent(event)).argv, want, `${name}: and its JSON`);
  }
});

t.test('redaction reaches the text of a decoded event', async (t) => {
  const event = decodeOne({ argv: ['mysql', '--password=hunter2', '-u', 'root'] });
  t.ok(createRedactor([/--password=\S+/g], false)(event), 'redacted');
  const json = serializeEvent(event);
  t.notMatch(json, /hunter2/, 'the secret is not in the text');
  t.same(JSON.parse(json).argv, ['mysql', '***', '-u', 'root'], 'the redacted argv is');
  const clean = decodeOne({ argv: ['mysql', '-u', 'root'] });
  t.notOk(createRedactor([/--password=\S+/g], false)(clean), 'nothing to redact');
  t.same(clean.argv, ['mysql', '-u', 'root'], 'an event without secrets keeps its argv');
});

t.test('cgroup names are each record\'s own, whatever its cgroup id', async (t) => {
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
  const v2 = decodeAll(encodeBatch({ cgroupId: 2n, cgroup: 'a.scope', cgroupParent: 'p.slice' }, { cgroupId: 2n, cgroup: 'b.scope', cgroupParent: 'q.slice' })).events;
  t.same(names(v2), [['a.scope', 'p.slice'], ['b.scope', 'q.slice']], 'one id, other names without the v1 flag: still each record\'s own');
  // A hybrid host: the v2 root's id also carries the names of cgroup v1 records.
  const hybrid = decodeAll(encodeBatch(
    { cgroupId: 3n, cgroup: '', cgroupParent: '' },
    { cgroupId: 3n, cgroup: 'docker-1.scope', cgroupParent: 'system.slice', flags: FLAGS.CGROUP_V1 },
    { cgroupId: 3n, cgroup: '', cgroupParent: '' },
  )).events;
  t.same(names(hybrid), [['', ''], ['docker-1.scope', 'system.slice'], ['', '']], 'one id for v2 and v1 names: each record has its own');
});
