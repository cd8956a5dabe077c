/**
 * Decodes the kernel's records (bpf/execwatch.h) into ExecEvents. This is the hot path: one call
 * per ring-buffer wake-up, ~200k records/s on one core. It reads fields straight off the batch
 * Buffer (no DataView, no per-record subarrays in the common all-ASCII case) and allocates little
 * beyond the event itself.
 */
import { isUtf8 } from 'node:buffer';
import type { ExecEvent } from '../events/types.js';

/** sizeof(struct execwatch_record): EXECWATCH_HEADER_SIZE. */
export const HEADER_SIZE = 480;
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
  flags: 20,
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
  reserved1: 60,
  comm: 64,
  parent_comm: 80,
  cgroup_leaf: 96,
  cgroup_parent: 352,
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
} as const;

/** enum execwatch_counter, without the EXECWATCH_CTR_ prefix: indexes of the per-CPU counters. */
export const COUNTERS = {
  RINGBUF_FULL: 0,
  STATE_MAP_FULL: 1,
  ARGV_READ_ERROR: 2,
  EVENTS: 3,
  MAX: 4,
} as const;

/** What decoding needs besides the bytes. */
export interface DecodeContext {
  /** Stamped on every event. */
  node: string;
  /** CLOCK_REALTIME − CLOCK_BOOTTIME in ns, read once per batch: boot_ns + this = wall clock. */
  bootOffsetNs: bigint;
  /** Called once per decoded event, in record order: gives the event's `seq`. */
  nextSeq(): number;
}

const O = RECORD_OFFSETS;
const NS_PER_S = 1_000_000_000n;

// RFC 3339 up to the seconds' dot, for the last second formatted: events come in bursts within
// the same second, so the Date work is done about once per second rather than per event.
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** Wall-clock ns since the epoch → `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC, POSIX: no leap seconds). */
export function formatTimeNs(wallNs: bigint): string {
  let second = Number(wallNs / NS_PER_S);
  let nanos = Number(wallNs % NS_PER_S);
  if (nanos < 0) {
    // BigInt division truncates toward zero; before 1970 the fraction must still count forward.
    nanos += 1e9;
    second -= 1;
  }
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  return `${cachedPrefix}${String(nanos).padStart(9, '0')}Z`;
}

/** True when every byte of buf[start, end) is below 0x80. */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  let bits = 0;
  for (let i = start; i < end; i += 1) bits |= buf[i] as number;
  return bits < 0x80;
}

/** A NUL-terminated string in a fixed-size field (the whole field when it has no NUL). */
function fixedString(buf: Buffer, start: number, size: number): string {
  const limit = start + size;
  let end = start;
  while (end < limit && buf[end] !== 0) end += 1;
  return buf.toString('utf8', start, end);
}

/** Splits NUL-terminated arguments; the last may lack its NUL (truncated), "" arguments are kept. */
function splitArgs(buf: Buffer, start: number, end: number, encoding: 'latin1' | 'utf8'): string[] {
  if (encoding === 'latin1') {
    // The common case in one string and one split: a toString per argument costs several times
    // more than the bytes it decodes. A NUL byte decodes to U+0000 in latin1, so this is exact.
    if (start === end) return [];
    const args = buf.toString('latin1', start, end).split('\0');
    if (buf[end - 1] === 0) args.pop();
    return args;
  }
  const args: string[] = [];
  let from = start;
  while (from < end) {
    let nul = buf.indexOf(0, from);
    if (nul < 0 || nul > end) nul = end;
    args.push(buf.toString(encoding, from, nul));
    from = nul + 1;
  }
  return args;
}

/** Reads the u64 at `at` as a decimal string; a number while exact (cgroup ids stay far below 2^53). */
function u64String(buf: Buffer, at: number): string {
  const hi = buf.readUInt32LE(at + 4);
  if (hi < 0x200000) return String(hi * 0x1_0000_0000 + buf.readUInt32LE(at));
  return buf.readBigUInt64LE(at).toString();
}

function decodeRecord(buf: Buffer, at: number, ctx: DecodeContext, bootNs: bigint): ExecEvent {
  const flags = buf.readUInt32LE(at + O.flags);
  const filenameStart = at + HEADER_SIZE;
  const filenameEnd = filenameStart + buf.readUInt16LE(at + O.filename_len);
  const argvEnd = filenameEnd + buf.readUInt32LE(at + O.argv_len);

  // ASCII (the usual case) is valid UTF-8 and decodes fastest as latin1.
  const filenameAscii = isAscii(buf, filenameStart, filenameEnd);
  const filenameValid = filenameAscii || isUtf8(buf.subarray(filenameStart, filenameEnd));
  const argvAscii = isAscii(buf, filenameEnd, argvEnd);
  const argvValid = argvAscii || isUtf8(buf.subarray(filenameEnd, argvEnd));

  const event: ExecEvent = {
    seq: ctx.nextSeq(),
    time: formatTimeNs(bootNs + ctx.bootOffsetNs),
    node: ctx.node,
    pid: buf.readUInt32LE(at + O.pid),
    tid: buf.readUInt32LE(at + O.tid),
    ppid: buf.readUInt32LE(at + O.ppid),
    uid: buf.readUInt32LE(at + O.uid),
    gid: buf.readUInt32LE(at + O.gid),
    comm: fixedString(buf, at + O.comm, COMM_LEN),
    parentComm: fixedString(buf, at + O.parent_comm, COMM_LEN),
    filename: buf.toString(filenameAscii ? 'latin1' : 'utf8', filenameStart, filenameEnd),
    argv: splitArgs(buf, filenameEnd, argvEnd, argvAscii ? 'latin1' : 'utf8'),
    argc: buf.readUInt32LE(at + O.argc),
    argvTruncated: (flags & FLAGS.ARGV_TRUNCATED) !== 0,
    filenameTruncated: (flags & FLAGS.FILENAME_TRUNCATED) !== 0,
    retval: buf.readInt32LE(at + O.retval),
    fileless: (flags & FLAGS.FILELESS) !== 0,
    execveat: (flags & FLAGS.EXECVEAT) !== 0,
    readError: (flags & FLAGS.READ_ERROR) !== 0,
    cgroupId: u64String(buf, at + O.cgroup_id),
    cgroup: fixedString(buf, at + O.cgroup_leaf, CGROUP_LEAF_LEN),
    cgroupParent: fixedString(buf, at + O.cgroup_parent, CGROUP_PARENT_LEN),
    cgroupTruncated: (flags & FLAGS.CGROUP_NAME_TRUNCATED) !== 0,
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    workload: null,
  };
  // The strings above carry U+FFFD for bad bytes; the exact bytes are kept beside them.
  if (!argvValid) event.argvBase64 = buf.toString('base64', filenameEnd, argvEnd);
  if (!filenameValid) event.filenameBase64 = buf.toString('base64', filenameStart, filenameEnd);
  return event;
}

/**
 * Decodes every record of one batch, calling `emit` with each event and its kernel boot_ns (for
 * the delay histogram). A record that cannot be framed (record_len 0, not a multiple of 8, shorter
 * than the header or than its own contents, or running past the batch) is counted as malformed and
 * ends the batch, since nothing after it can be found. Never throws on bad bytes; an exception from
 * `emit` propagates.
 */
export function decodeBatch(
  batch: Buffer,
  ctx: DecodeContext,
  emit: (event: ExecEvent, bootNs: bigint) => void,
): { decoded: number; malformed: number } {
  let decoded = 0;
  for (let at = 0; at < batch.length; ) {
    if (batch.length - at < HEADER_SIZE) return { decoded, malformed: 1 };
    const recordLen = batch.readUInt32LE(at + O.record_len);
    const contentLen = HEADER_SIZE + batch.readUInt16LE(at + O.filename_len) + batch.readUInt32LE(at + O.argv_len);
    if (recordLen % 8 !== 0 || contentLen > recordLen || recordLen > batch.length - at) return { decoded, malformed: 1 };
    const bootNs = batch.readBigUInt64LE(at + O.boot_ns);
    emit(decodeRecord(batch, at, ctx, bootNs), bootNs);
    decoded += 1;
    at += recordLen;
  }
  return { decoded, malformed: 0 };
}
