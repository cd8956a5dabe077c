/**
 * Decodes the kernel's records (bpf/execwatch.h) into plain ExecEvents: one call per ring-buffer
 * wake-up. Every string is copied out of the batch (the addon may reuse its bytes after the call),
 * and bytes that are not UTF-8 are kept exactly beside the text (argvBase64, filenameBase64).
 * The pod fields are filled by src/enrich, and `seq` when the event is delivered.
 */
import { isUtf8 } from 'node:buffer';
import { execIdWith, ticksOf } from '../events/exec-id.js';
import { formatTime, type ExecEvent, type ExitEvent, type ExitStatus, type KernelEvent, type Origin, type ThrottleEvent } from '../events/schema.js';

/** sizeof(struct execwatch_record): EXECWATCH_HEADER_SIZE. Each kind's cgroup names follow its struct. */
export const HEADER_SIZE = 144;
/** sizeof(struct execwatch_exit_record): EXECWATCH_EXIT_SIZE. */
export const EXIT_SIZE = 80;
/** sizeof(struct execwatch_throttle_record): EXECWATCH_THROTTLE_SIZE. */
export const THROTTLE_SIZE = 56;
/** EXECWATCH_ID_UNSET: an audit id the process has not got (or the kernel has no audit). */
export const ID_UNSET = 4294967295;
export const COMM_LEN = 16;
export const CGROUP_LEAF_LEN = 256;
export const CGROUP_PARENT_LEN = 128;
export const FILENAME_MAX = 4096;
export const ARGV_MAX = 32768;

/** Byte offsets of struct execwatch_record's fields; the tests derive them from the C header. */
export const RECORD_OFFSETS = {
  boot_ns: 0,
  cgroup_id: 8,
  record_len: 16,
  kind: 20,
  flags: 22,
  pid: 24,
  tid: 28,
  ppid: 32,
  uid: 36,
  gid: 40,
  retval: 44,
  argc: 48,
  filename_len: 52,
  reserved0: 54,
  argv_len: 56,
  fork_ppid: 60,
  start_ns: 64,
  fork_parent_start_ns: 72,
  euid: 80,
  egid: 84,
  loginuid: 88,
  sessionid: 92,
  pidns: 96,
  parent_pidns: 100,
  ns_pid: 104,
  cgroup_leaf_len: 108,
  cgroup_parent_len: 110,
  comm: 112,
  parent_comm: 128,
} as const;

/** Byte offsets of struct execwatch_exit_record's fields; the tests derive them from the C header. */
export const EXIT_OFFSETS = {
  boot_ns: 0,
  cgroup_id: 8,
  record_len: 16,
  kind: 20,
  flags: 22,
  pid: 24,
  tid: 28,
  status: 32,
  orphans: 36,
  start_ns: 40,
  exec_ns: 48,
  comm: 56,
  cgroup_leaf_len: 72,
  cgroup_parent_len: 74,
  reserved: 76,
} as const;

/** Byte offsets of struct execwatch_throttle_record's fields; the tests derive them from the C header. */
export const THROTTLE_OFFSETS = {
  boot_ns: 0,
  cgroup_id: 8,
  record_len: 16,
  kind: 20,
  flags: 22,
  pid: 24,
  tid: 28,
  comm: 32,
  cgroup_leaf_len: 48,
  cgroup_parent_len: 50,
  reserved: 52,
} as const;

/** enum execwatch_record_kind, without the EXECWATCH_RECORD_ prefix. */
export const RECORD_KINDS = {
  EXEC: 0,
  EXIT: 1,
  THROTTLE: 2,
} as const;

/** enum execwatch_flag, without the EXECWATCH_F_ prefix. */
export const FLAGS = {
  ARGV_TRUNCATED: 1 << 0,
  FILENAME_TRUNCATED: 1 << 1,
  READ_ERROR: 1 << 2,
  EXECVEAT: 1 << 3,
  FILELESS: 1 << 4,
  CGROUP_V1: 1 << 5,
  NO_ENTER_STATE: 1 << 6,
  CGROUP_NAME_TRUNCATED: 1 << 7,
  DRIFT: 1 << 8,
  CGROUP_AS_EXEC: 1 << 9,
} as const;

/** enum execwatch_counter, without the EXECWATCH_CTR_ prefix: indexes of the counters map. */
export const COUNTERS = {
  RINGBUF_FULL: 0,
  STATE_MAP_FULL: 1,
  ARGV_READ_ERROR: 2,
  EVENTS: 3,
  EXCLUDED_HOST: 4,
  EXCLUDED_NAMESPACE: 5,
  EXCLUDED_POD: 6,
  THROTTLED: 7,
  PROCESS_MAP_FULL: 8,
  MAX: 9,
} as const;

/** What decoding needs besides the bytes. */
export interface DecodeContext {
  /** Stamped on every event. */
  node: string;
  /** What every execId of this node's boot starts with: execIdPrefix(), computed once by the caller. */
  execIdPrefix: string;
  /** CLOCK_REALTIME − CLOCK_BOOTTIME in ns, read once per batch: boot_ns + this = wall clock. */
  bootOffsetNs: bigint;
  /** Writes the events' times: one per tracer, kept from batch to batch. */
  clock: EventClock;
  /** Where each live process's exec ran, for its exit: one per tracer, kept from batch to batch. */
  cgroups: ExecCgroups;
}

const O = RECORD_OFFSETS;

/** The bytes of a fixed-size field before its first NUL (the whole field when it has none). */
function fixedString(buf: Buffer, start: number, size: number): string {
  const nul = buf.indexOf(0, start);
  return buf.toString('utf8', start, nul < 0 || nul > start + size ? start + size : nul);
}

/**
 * Where the parent cgroup's name starts in the record at `at`: every kind has the names right after
 * its fixed part (`size` bytes), the leaf's cgroup_leaf_len bytes (at `lenAt`) first, then the
 * parent's cgroup_parent_len (at `lenAt` + 2).
 */
function leafEnd(buf: Buffer, at: number, size: number, lenAt: number): number {
  return at + size + buf.readUInt16LE(at + lenAt);
}

/** Where the record's cgroup names end (see leafEnd). */
function namesEnd(buf: Buffer, at: number, size: number, lenAt: number): number {
  return leafEnd(buf, at, size, lenAt) + buf.readUInt16LE(at + lenAt + 2);
}

/** The NUL-terminated arguments of `text`; the last may lack its NUL (truncated), empty ones are kept. */
function splitArgs(text: string): string[] {
  if (text === '') return [];
  const args = text.split('\0');
  if (text.endsWith('\0')) args.pop();
  return args;
}

/**
 * base64 of buf[start, end) when those bytes are not valid UTF-8, which their text then shows as
 * U+FFFD (a text without one came from valid UTF-8, so most records skip the check).
 */
function exactBytes(buf: Buffer, start: number, end: number, text: string): string | undefined {
  if (!text.includes('\ufffd') || isUtf8(buf.subarray(start, end))) return undefined;
  return buf.toString('base64', start, end);
}

const NS_PER_S = 1_000_000_000n;

/**
 * Event times (RFC 3339 text, as formatTime writes them) of every batch a tracer decodes. Records
 * mostly share their second, and an exit's exec time its second or the one before: the text of
 * the last two seconds seen is kept, and the rest is the nanoseconds. A clock made anew for each
 * batch formatted a second's text (a Date and its ISO string) about once per wake-up, and twice
 * more for an exit whose exec fell in the second before: 2% of the agent's CPU samples under a storm.
 */
export class EventClock {
  #second = -1n;
  #prefix = '';
  #previousSecond = -1n;
  #previousPrefix = '';

  /** The time at `ns` nanoseconds since the epoch. */
  timeOf(ns: bigint): string {
    // The fraction counts forward from the second before, also before 1970.
    const nanos = ((ns % NS_PER_S) + NS_PER_S) % NS_PER_S;
    return `${this.#prefixOf(ns - nanos)}${String(nanos).padStart(9, '0')}Z`;
  }

  /** "YYYY-MM-DDTHH:MM:SS." of the whole second `second` (in ns). */
  #prefixOf(second: bigint): string {
    if (second === this.#second) return this.#prefix;
    if (second === this.#previousSecond) return this.#previousPrefix;
    this.#previousSecond = this.#second;
    this.#previousPrefix = this.#prefix;
    this.#second = second;
    this.#prefix = formatTime(second).slice(0, 20);
    return this.#prefix;
  }
}

/** Where a process ran, as its exec record named it. */
type ExecCgroup = Pick<ExecEvent, 'cgroupId' | 'cgroup' | 'cgroupParent' | 'cgroupTruncated'>;

/**
 * Most processes whose exec's cgroup is kept, on a machine of `cpus` CPUs: twice the kernel's table
 * of processes (max(32768, 1024 per CPU), native/tracer.cc), which bounds those that can send an
 * exit. The other half is room for entries whose exit never came (below).
 */
export const execCgroupsMax = (cpus: number): number => 2 * Math.max(32_768, 1024 * cpus);

/** Whether the process `pid` that started `ticks` clock ticks after boot still runs. */
export type Alive = (pid: number, ticks: bigint) => boolean;

/**
 * The cgroup of each live process's last successful exec, by execId, for one tracer. The kernel
 * writes an exit's cgroup names only when the process ends in other cgroups than its exec record
 * named (EXECWATCH_F_CGROUP_AS_EXEC otherwise, which took 23% off the exit program's time); the
 * exit then takes its exec's from here, and the entry leaves. An exit the ring had no room for (or
 * a later exec's record, after which the kernel sends no exit) leaves its entry behind: once
 * `max` are held, the entries of processes that no longer run go, all in one pass (so the next
 * pass is at least as many lost exits away), then, if that was not enough, the oldest.
 */
export class ExecCgroups {
  readonly #byExec = new Map<string, { where: ExecCgroup; pid: number; ticks: bigint }>();

  constructor(
    private readonly max: number,
    private readonly alive: Alive,
  ) {}

  /** Entries held now. */
  get size(): number {
    return this.#byExec.size;
  }

  remember(execId: string, pid: number, ticks: bigint, where: ExecCgroup): void {
    // A new image of the process replaces its entry, at the newest end.
    this.#byExec.delete(execId);
    this.#byExec.set(execId, { where, pid, ticks });
    if (this.#byExec.size <= this.max) return;
    for (const [id, kept] of this.#byExec) if (!this.alive(kept.pid, kept.ticks)) this.#byExec.delete(id);
    // Every one still running (processes this agent cannot see in /proc): the oldest go.
    while (this.#byExec.size > this.max) this.#byExec.delete(this.#byExec.keys().next().value as string);
  }

  /** The entry of `execId`, gone from here (its process has ended). */
  take(execId: string): ExecCgroup | undefined {
    const kept = this.#byExec.get(execId);
    if (kept === undefined) return undefined;
    this.#byExec.delete(execId);
    return kept.where;
  }
}

/** An audit id, null when unset. */
function auditId(buf: Buffer, at: number): number | null {
  const id = buf.readUInt32LE(at);
  return id === ID_UNSET ? null : id;
}

/** The cgroup id of a record (every kind has one, at its own offset), as the events' decimal text. */
function cgroupIdAt(buf: Buffer, at: number): string {
  return buf.readBigUInt64LE(at).toString();
}

/*
 * Every kind of record carries where its process ran (cgroup id, leaf and parent names, each at
 * its own offsets); the pod fields are the enricher's to fill, null until then. The decoders write
 * those fields out in their literals rather than spreading a shared object into them: a spread in
 * the middle of a literal copies property by property into a new object (CopyDataProperties and
 * CreateDataProperty in a perf profile of the agent under a storm). With the records written out
 * too (src/events/record.ts) and the ring's seqs in a typed array, the agent's CPU through one
 * 20,000-exec storm was 0.81-0.87 of before (README, Performance).
 */

/**
 * What the kernel tells of where a successful exec came from, before its pod and lineage are known
 * (src/enrich/origin.ts finishes it): pid 1 of its pid namespace is `init`; a parent in another pid
 * namespace started it from outside (`exec`); else `workload` (a descendant, or not known: a failed
 * exec, a kernel without the pid namespace reads).
 */
function kernelOrigin(buf: Buffer, at: number): Origin {
  const pidns = buf.readUInt32LE(at + O.pidns);
  if (pidns === 0) return 'workload';
  if (buf.readUInt32LE(at + O.ns_pid) === 1) return 'init';
  return buf.readUInt32LE(at + O.parent_pidns) !== pidns ? 'exec' : 'workload';
}

/** One framed exec record, its cgroup names ending (and its filename starting) at `filenameStart`. */
function decodeExec(buf: Buffer, at: number, ctx: DecodeContext, prefix: string, time: string, filenameStart: number, filenameLen: number, argvLen: number): ExecEvent {
  const { node } = ctx;
  const flags = buf.readUInt16LE(at + O.flags);
  const parentStart = leafEnd(buf, at, HEADER_SIZE, O.cgroup_leaf_len);
  const filenameEnd = filenameStart + filenameLen;
  const argvEnd = filenameEnd + argvLen;
  const filename = buf.toString('utf8', filenameStart, filenameEnd);
  const argv = buf.toString('utf8', filenameEnd, argvEnd);
  const pid = buf.readUInt32LE(at + O.pid);
  const startTicks = ticksOf(buf.readBigUInt64LE(at + O.start_ns));
  const ppid = buf.readUInt32LE(at + O.ppid);
  const uid = buf.readUInt32LE(at + O.uid);
  const euid = buf.readUInt32LE(at + O.euid);
  const event: ExecEvent = {
    seq: 0,
    kind: 'exec',
    time,
    node,
    pid,
    tid: buf.readUInt32LE(at + O.tid),
    ppid,
    execId: execIdWith(prefix, startTicks, pid),
    // The parent at the fork, which the kernel's ppid no longer names once that parent has exited.
    parentExecId: execIdWith(prefix, ticksOf(buf.readBigUInt64LE(at + O.fork_parent_start_ns)), buf.readUInt32LE(at + O.fork_ppid)),
    uid,
    gid: buf.readUInt32LE(at + O.gid),
    euid,
    egid: buf.readUInt32LE(at + O.egid),
    euidDiffers: euid !== uid,
    loginuid: auditId(buf, at + O.loginuid),
    sessionid: auditId(buf, at + O.sessionid),
    comm: fixedString(buf, at + O.comm, COMM_LEN),
    parentComm: fixedString(buf, at + O.parent_comm, COMM_LEN),
    // The pipeline's process table fills them in at delivery.
    ancestors: [],
    filename,
    argv: splitArgs(argv),
    argc: buf.readUInt32LE(at + O.argc),
    argvTruncated: (flags & FLAGS.ARGV_TRUNCATED) !== 0,
    filenameTruncated: (flags & FLAGS.FILENAME_TRUNCATED) !== 0,
    retval: buf.readInt32LE(at + O.retval),
    fileless: (flags & FLAGS.FILELESS) !== 0,
    drift: (flags & FLAGS.DRIFT) !== 0,
    execveat: (flags & FLAGS.EXECVEAT) !== 0,
    readError: (flags & FLAGS.READ_ERROR) !== 0,
    cgroupId: cgroupIdAt(buf, at + O.cgroup_id),
    cgroup: buf.toString('utf8', at + HEADER_SIZE, parentStart),
    cgroupParent: buf.toString('utf8', parentStart, filenameStart),
    cgroupTruncated: (flags & FLAGS.CGROUP_NAME_TRUNCATED) !== 0,
    // The enricher decides; until then nothing is known of the pod.
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    image: null,
    imageId: null,
    workload: null,
    attribution: 'unresolved',
    origin: kernelOrigin(buf, at),
    sessionExecId: null,
  };
  // A failed exec leaves the process's image, and where its exec ran, as they were.
  // Its own small object: the exec event itself would be kept alive, argv and all, until the exit.
  if (event.retval === 0) {
    const where = { cgroupId: event.cgroupId, cgroup: event.cgroup, cgroupParent: event.cgroupParent, cgroupTruncated: event.cgroupTruncated };
    ctx.cgroups.remember(event.execId, pid, startTicks, where);
  }
  const argvBase64 = exactBytes(buf, filenameEnd, argvEnd, argv);
  if (argvBase64 !== undefined) event.argvBase64 = argvBase64;
  const filenameBase64 = exactBytes(buf, filenameStart, filenameEnd, filename);
  if (filenameBase64 !== undefined) event.filenameBase64 = filenameBase64;
  return event;
}

const E = EXIT_OFFSETS;

/** How a wait status (exit code << 8, or the signal, | 0x80 with a core) reads. */
export function exitOf(status: number): { status: ExitStatus; code: number | null; signal: number | null; coreDumped: boolean } {
  const signal = status & 0x7f;
  if (signal === 0) {
    const code = (status >> 8) & 0xff;
    return { status: code === 0 ? 'ok' : 'error', code, signal: null, coreDumped: false };
  }
  return { status: 'signal', code: null, signal, coreDumped: (status & 0x80) !== 0 };
}

/**
 * Where an exit record says its process ended: in its exec's cgroups (kept by `ctx.cgroups`) when
 * the kernel found it still there, else the names the record carries. An exit whose exec's entry
 * is gone (pruned, see ExecCgroups, or its exec record lost) names its cgroup by id alone.
 */
function exitCgroup(buf: Buffer, at: number, ctx: DecodeContext, execId: string, end: number): ExecCgroup {
  const flags = buf.readUInt16LE(at + E.flags);
  const exec = ctx.cgroups.take(execId);
  if ((flags & FLAGS.CGROUP_AS_EXEC) !== 0) return exec ?? { cgroupId: cgroupIdAt(buf, at + E.cgroup_id), cgroup: '', cgroupParent: '', cgroupTruncated: false };
  const parentStart = leafEnd(buf, at, EXIT_SIZE, E.cgroup_leaf_len);
  return {
    cgroupId: cgroupIdAt(buf, at + E.cgroup_id),
    cgroup: buf.toString('utf8', at + EXIT_SIZE, parentStart),
    cgroupParent: buf.toString('utf8', parentStart, end),
    cgroupTruncated: (flags & FLAGS.CGROUP_NAME_TRUNCATED) !== 0,
  };
}

/** One exit record (its length checked by the caller, who found its cgroup names ending at `end`). */
function decodeExit(buf: Buffer, at: number, ctx: DecodeContext, prefix: string, time: string, end: number): ExitEvent {
  const pid = buf.readUInt32LE(at + E.pid);
  const execId = execIdWith(prefix, ticksOf(buf.readBigUInt64LE(at + E.start_ns)), pid);
  const where = exitCgroup(buf, at, ctx, execId, end);
  const execNs = buf.readBigUInt64LE(at + E.exec_ns);
  const bootNs = buf.readBigUInt64LE(at + E.boot_ns);
  const { status, code, signal, coreDumped } = exitOf(buf.readInt32LE(at + E.status));
  return {
    seq: 0,
    kind: 'exit',
    time,
    node: ctx.node,
    execId,
    pid,
    tid: buf.readUInt32LE(at + E.tid),
    comm: fixedString(buf, at + E.comm, COMM_LEN),
    status,
    code,
    signal,
    coreDumped,
    duration: Number(bootNs - execNs) / 1e9,
    execTime: ctx.clock.timeOf(execNs + ctx.bootOffsetNs),
    orphans: buf.readUInt32LE(at + E.orphans),
    cgroupId: where.cgroupId,
    cgroup: where.cgroup,
    cgroupParent: where.cgroupParent,
    cgroupTruncated: where.cgroupTruncated,
    // The enricher decides; until then nothing is known of the pod.
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    image: null,
    imageId: null,
    workload: null,
    attribution: 'unresolved',
    // The pipeline gives it its exec's.
    origin: 'workload',
    sessionExecId: null,
  };
}

const T = THROTTLE_OFFSETS;

/** One throttle record (checked like an exit's, its names ending at `end`): an episode's start. */
function decodeThrottle(buf: Buffer, at: number, ctx: DecodeContext, time: string, end: number): ThrottleEvent {
  const flags = buf.readUInt16LE(at + T.flags);
  const parentStart = leafEnd(buf, at, THROTTLE_SIZE, T.cgroup_leaf_len);
  return {
    seq: 0,
    kind: 'throttle',
    phase: 'start',
    time,
    node: ctx.node,
    since: time,
    suppressed: 0,
    pid: buf.readUInt32LE(at + T.pid),
    comm: fixedString(buf, at + T.comm, COMM_LEN),
    cgroupId: cgroupIdAt(buf, at + T.cgroup_id),
    cgroup: buf.toString('utf8', at + THROTTLE_SIZE, parentStart),
    cgroupParent: buf.toString('utf8', parentStart, end),
    cgroupTruncated: (flags & FLAGS.CGROUP_NAME_TRUNCATED) !== 0,
    // The enricher decides; until then nothing is known of the pod.
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    image: null,
    imageId: null,
    workload: null,
    attribution: 'unresolved',
  };
}

/**
 * Decodes every record of one batch, calling `emit` with each event and its kernel boot_ns (for
 * the delay histogram). A record that cannot be framed (record_len not a multiple of 8, shorter
 * than the header or than its own contents, or running past the batch) is counted as malformed
 * and ends the batch, since nothing after it can be found. Never throws on bad bytes; an
 * exception from `emit` propagates.
 */
export function decodeBatch(
  batch: Buffer,
  ctx: DecodeContext,
  emit: (event: KernelEvent, bootNs: number) => void,
): { decoded: number; malformed: number } {
  const timeOf = (bootNs: bigint): string => ctx.clock.timeOf(bootNs + ctx.bootOffsetNs);
  const prefix = ctx.execIdPrefix;
  let decoded = 0;
  for (let at = 0; at < batch.length; ) {
    // The 24 bytes every kind starts with.
    if (batch.length - at < 24) return { decoded, malformed: 1 };
    const recordLen = batch.readUInt32LE(at + O.record_len);
    if (recordLen % 8 !== 0 || recordLen > batch.length - at) return { decoded, malformed: 1 };
    const kind = batch.readUInt16LE(at + O.kind);
    const bootNs = batch.readBigUInt64LE(at + O.boot_ns);
    if (kind === RECORD_KINDS.EXEC) {
      if (recordLen < HEADER_SIZE) return { decoded, malformed: 1 };
      const filenameLen = batch.readUInt16LE(at + O.filename_len);
      const argvLen = batch.readUInt32LE(at + O.argv_len);
      const names = namesEnd(batch, at, HEADER_SIZE, O.cgroup_leaf_len);
      if (names + filenameLen + argvLen > at + recordLen) return { decoded, malformed: 1 };
      emit(decodeExec(batch, at, ctx, prefix, timeOf(bootNs), names, filenameLen, argvLen), Number(bootNs));
    } else if (kind === RECORD_KINDS.EXIT) {
      if (recordLen < EXIT_SIZE) return { decoded, malformed: 1 };
      const names = namesEnd(batch, at, EXIT_SIZE, E.cgroup_leaf_len);
      if (names > at + recordLen) return { decoded, malformed: 1 };
      emit(decodeExit(batch, at, ctx, prefix, timeOf(bootNs), names), Number(bootNs));
    } else if (kind === RECORD_KINDS.THROTTLE) {
      if (recordLen < THROTTLE_SIZE) return { decoded, malformed: 1 };
      const names = namesEnd(batch, at, THROTTLE_SIZE, T.cgroup_leaf_len);
      if (names > at + recordLen) return { decoded, malformed: 1 };
      emit(decodeThrottle(batch, at, ctx, timeOf(bootNs), names), Number(bootNs));
    } else {
      return { decoded, malformed: 1 };
    }
    decoded += 1;
    at += recordLen;
  }
  return { decoded, malformed: 0 };
}
