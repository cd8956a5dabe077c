/**
 * Decodes the kernel's records (bpf/execwatch.h) into ExecEvents. This is the hot path: one call
 * per ring-buffer wake-up, over 200k records/s on one core. It reads fields straight off the
 * batch Buffer (no DataView, no per-record subarrays), writes the event's JSON up to its cgroup
 * fields straight from the bytes when they are plain ASCII (argv included: the event makes the
 * array only if asked, events/decoded.ts), decodes a cgroup's names and each comm once, and
 * allocates little beyond the event itself.
 */
import { isUtf8 } from 'node:buffer';
import { DecodedEvent, type DecodedFront } from '../events/decoded.js';
import { ARGV_KEY, NODE_JSON_MAX, plainNodeJson } from '../events/json.js';
import type { ExecEvent } from '../events/schema.js';

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

/** Seconds since the epoch and nanoseconds → `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. */
function formatTime(second: number, nanos: number): string {
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  return `${cachedPrefix}${String(nanos).padStart(9, '0')}Z`;
}

/** Wall-clock seconds and nanoseconds [0, 1e9) of a wall-clock time in ns (floor division). */
function splitNs(wallNs: bigint): [second: number, nanos: number] {
  let second = Number(wallNs / NS_PER_S);
  let nanos = Number(wallNs % NS_PER_S);
  if (nanos < 0) {
    // BigInt division truncates toward zero; before 1970 the fraction must still count forward.
    nanos += 1e9;
    second -= 1;
  }
  return [second, nanos];
}

// boot_ns + offset, without BigInt work per event: boot_ns is hi·2^32 + lo, and hi·2^32 + offset
// is split into seconds and nanoseconds once per value of hi (every 4.3 s) and of the offset (read
// once per batch). lo (< 2^32) plus those nanoseconds stays far below 2^53: exact in a double.
let baseHi = -1;
let baseOffsetNs = 0n;
let baseSecond = 0;
let baseNanos = 0;

/** The epoch milliseconds of the last wallTime() (no array per event to return both). */
let wallMs = 0;

/**
 * The wall-clock time of boot_ns hi·2^32 + lo as RFC 3339 UTC with nanoseconds (POSIX: no leap
 * seconds); its epoch milliseconds are left in wallMs.
 */
function wallTime(hi: number, lo: number, offsetNs: bigint): string {
  if (hi !== baseHi || offsetNs !== baseOffsetNs) {
    [baseSecond, baseNanos] = splitNs((BigInt(hi) << 32n) + offsetNs);
    baseHi = hi;
    baseOffsetNs = offsetNs;
  }
  const sum = baseNanos + lo;
  const carry = Math.floor(sum / 1e9);
  const second = baseSecond + carry;
  const nanos = sum - carry * 1e9;
  // nanos / 1e9 is the double Number(".nnnnnnnnn") parses to: the same value filter.ts's timeMs
  // gives for the text, bit for bit.
  wallMs = second * 1000 + (nanos / 1e9) * 1000;
  return formatTime(second, nanos);
}

/** True when every byte of buf[start, end) is below 0x80. */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  let bits = 0;
  for (let i = start; i < end; i += 1) bits |= buf[i] as number;
  return bits < 0x80;
}

/** Bytes before the first NUL of a fixed-size field (the whole field when it has no NUL). */
function fieldLength(buf: Buffer, start: number, size: number): number {
  const limit = start + size;
  let end = start;
  while (end < limit && buf[end] !== 0) end += 1;
  return end - start;
}

/** A NUL-terminated string in a fixed-size field (the whole field when it has no NUL). */
function fixedString(buf: Buffer, start: number, size: number): string {
  return buf.toString('utf8', start, start + fieldLength(buf, start, size));
}

/** Splits NUL-terminated arguments; the last may lack its NUL (truncated), "" arguments are kept. */
function splitArgs(buf: Buffer, start: number, end: number, encoding: 'latin1' | 'utf8'): string[] {
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

/** Room for the keys, time, numbers, comm and parentComm of the front text (about 450 bytes) and the node. */
const FRONT_FIXED_MAX = 1024 + NODE_JSON_MAX;

/**
 * Where the JSON written from bytes goes: room for the event's fields, the longest filename and the
 * longest argv with every byte a NUL (3 bytes of JSON each).
 */
const scratch = Buffer.allocUnsafe(FRONT_FIXED_MAX + FILENAME_MAX + 3 * ARGV_MAX);

/** Writes `text` (ASCII) into scratch at p; returns the end. */
function put(text: string, p: number): number {
  for (let i = 0; i < text.length; i += 1) scratch[p + i] = text.charCodeAt(i);
  return p + text.length;
}

/** Writes a non-negative integer below 2^53 in decimal; returns the end. */
function putUint(n: number, p: number): number {
  let digits = 1;
  for (let m = n; m >= 10; m = (m - (m % 10)) / 10) digits += 1;
  let rest = n;
  for (let i = p + digits - 1; i >= p; i -= 1) {
    const d = rest % 10;
    scratch[i] = 0x30 + d;
    rest = (rest - d) / 10;
  }
  return p + digits;
}

/** True for the bytes a JSON string holds as they are and that are ASCII. */
const plain = (c: number): boolean => c >= 0x20 && c < 0x80 && c !== 0x22 && c !== 0x5c;

/** Copies buf[start, end) into scratch at p when every byte is plain; the end, or -1. */
function putPlain(buf: Buffer, start: number, end: number, p: number): number {
  for (let i = start; i < end; i += 1) {
    const c = buf[i] as number;
    if (!plain(c)) return -1;
    scratch[p] = c;
    p += 1;
  }
  return p;
}

/**
 * Writes the JSON array of the arguments in buf[start, end) (one per NUL, the last NUL optional,
 * as splitArgs splits them) at p; the end, or -1 when a byte is not plain or argv exceeds
 * ARGV_MAX (splitArgs and JSON.stringify then do it).
 */
function putArgv(buf: Buffer, start: number, end: number, p: number): number {
  if (start === end) return put('[]', p);
  const last = buf[end - 1] === 0 ? end - 1 : end;
  if (last - start > ARGV_MAX) return -1;
  scratch[p] = 0x5b; // [
  scratch[p + 1] = 0x22; // "
  p += 2;
  for (let i = start; i < last; i += 1) {
    const c = buf[i] as number;
    if (plain(c)) {
      scratch[p] = c;
      p += 1;
    } else if (c === 0) {
      scratch[p] = 0x22; // ","
      scratch[p + 1] = 0x2c;
      scratch[p + 2] = 0x22;
      p += 3;
    } else {
      return -1;
    }
  }
  scratch[p] = 0x22;
  scratch[p + 1] = 0x5d; // ]
  return p + 2;
}

const bool = (value: boolean): string => (value ? 'true' : 'false');

/** The front text, and comm, parentComm and filename, whose texts it holds as they are. */
interface Front extends DecodedFront {
  comm: string;
  parentComm: string;
  filename: string;
}

/**
 * comm and parentComm values seen, each its own string, found by the text cut from a front text:
 * events share them, and a record never holds a cut of a front text (V8 keeps a cut of 13 or
 * more characters as a view of the whole text, which after redaction would keep the unredacted
 * argv alive). Cleared when full.
 */
const comms = new Map<string, string>();
/** Most comm values kept: far more than the programs a node runs. */
const COMMS_MAX = 4096;

function commOf(cut: string, buf: Buffer, start: number): string {
  let comm = comms.get(cut);
  if (comm === undefined) {
    comm = fixedString(buf, start, COMM_LEN);
    if (comms.size >= COMMS_MAX) comms.clear();
    comms.set(comm, comm);
  }
  return comm;
}

/**
 * The event's JSON from `{` through `"readError":…` — every field the decoder alone decides, in
 * the order src/events/json.ts writes them — written straight from the record's bytes; undefined
 * when comm, parentComm, the filename or an argument has a byte to escape or beyond ASCII, or the
 * node name is not plain (record.ts then serializes the fields one by one).
 */
function frontJson(
  buf: Buffer,
  at: number,
  e: DecodedEvent,
  filenameStart: number,
  filenameEnd: number,
  argvEnd: number,
): Front | undefined {
  const name = plainNodeJson(e.node);
  if (name === null) return undefined;
  // A filename_len beyond the kernel's bound (a corrupt record) would not fit the scratch.
  if (filenameEnd - filenameStart > FILENAME_MAX) return undefined;
  let p = putUint(e.seq, put('{"seq":', 0));
  p = put(name, put('","node":', put(e.time, put(',"time":"', p))));
  p = putUint(e.pid, put(',"pid":', p));
  p = putUint(e.tid, put(',"tid":', p));
  p = putUint(e.ppid, put(',"ppid":', p));
  p = putUint(e.uid, put(',"uid":', p));
  p = putUint(e.gid, put(',"gid":', p));
  const comm = at + O.comm;
  const commAt = put(',"comm":"', p);
  const commEnd = putPlain(buf, comm, comm + fieldLength(buf, comm, COMM_LEN), commAt);
  if (commEnd < 0) return undefined;
  const parentComm = at + O.parent_comm;
  const parentCommAt = put('","parentComm":"', commEnd);
  const parentCommEnd = putPlain(buf, parentComm, parentComm + fieldLength(buf, parentComm, COMM_LEN), parentCommAt);
  if (parentCommEnd < 0) return undefined;
  const filenameAt = put('","filename":"', parentCommEnd);
  const filenameEndAt = putPlain(buf, filenameStart, filenameEnd, filenameAt);
  if (filenameEndAt < 0) return undefined;
  const argvAt = put(ARGV_KEY, put('"', filenameEndAt));
  const argvEndAt = putArgv(buf, filenameEnd, argvEnd, argvAt);
  if (argvEndAt < 0) return undefined;
  p = putUint(e.argc, put(',"argc":', argvEndAt));
  p = put(bool(e.argvTruncated), put(',"argvTruncated":', p));
  p = put(bool(e.filenameTruncated), put(',"filenameTruncated":', p));
  p = put(',"retval":', p);
  p = e.retval < 0 ? putUint(-e.retval, put('-', p)) : putUint(e.retval, p);
  p = put(bool(e.fileless), put(',"fileless":', p));
  p = put(bool(e.execveat), put(',"execveat":', p));
  p = put(bool(e.readError), put(',"readError":', p));
  const text = scratch.toString('latin1', 0, p);
  // The texts are plain: each is its JSON without the quotes (cheaper to cut than to decode).
  return {
    text,
    filenameAt,
    argvAt,
    argvEnd: argvEndAt,
    comm: commOf(text.slice(commAt, commEnd), buf, comm),
    parentComm: commOf(text.slice(parentCommAt, parentCommEnd), buf, parentComm),
    filename: text.slice(filenameAt, filenameEndAt),
  };
}

/** The decoded cgroup fields of one cgroup, and the bytes they were decoded from. */
interface CgroupText {
  leafLength: number;
  parentLength: number;
  /** The names are cgroup v1's (EXECWATCH_F_CGROUP_V1). */
  v1: boolean;
  /** The leaf name's bytes, then the parent's. */
  bytes: Buffer;
  cgroupId: string;
  cgroup: string;
  cgroupParent: string;
}

/**
 * Every exec of a container carries the same cgroup id and names: decoded once, so the events of
 * one cgroup share their strings (and the enricher's and the serializer's caches compare them by
 * identity). On cgroup v2 the id is the cgroup's for the whole boot (and v2 cgroups cannot be
 * renamed); records whose names come from cgroup v1 (EXECWATCH_F_CGROUP_V1) all carry the same
 * v2 id, so when the record or the kept names are v1's the bytes are compared. Cleared when full.
 */
const cgroupTexts = new Map<number | string, CgroupText>();
/** Most cgroups whose text is kept: far more than the containers of one node. */
const CGROUP_TEXTS_MAX = 4096;

/** Whether a fixed-size field holds exactly bytes[from, from + length) and then a NUL or its end. */
function fieldIs(buf: Buffer, start: number, size: number, bytes: Buffer, from: number, length: number): boolean {
  return (length === size || buf[start + length] === 0) && buf.compare(bytes, from, from + length, start, start + length) === 0;
}

function cgroupText(buf: Buffer, at: number, v1: boolean): CgroupText {
  // The id as a number while exact (cgroup ids stay far below 2^53), else its decimal text.
  const hi = buf.readUInt32LE(at + O.cgroup_id + 4);
  const key = hi < 0x200000 ? hi * 0x1_0000_0000 + buf.readUInt32LE(at + O.cgroup_id) : buf.readBigUInt64LE(at + O.cgroup_id).toString();
  const leafAt = at + O.cgroup_leaf;
  const parentAt = at + O.cgroup_parent;
  const hit = cgroupTexts.get(key);
  if (
    hit !== undefined &&
    (!(v1 || hit.v1) ||
      (fieldIs(buf, leafAt, CGROUP_LEAF_LEN, hit.bytes, 0, hit.leafLength) &&
        fieldIs(buf, parentAt, CGROUP_PARENT_LEN, hit.bytes, hit.leafLength, hit.parentLength)))
  ) {
    return hit;
  }
  const leafLength = fieldLength(buf, leafAt, CGROUP_LEAF_LEN);
  const parentLength = fieldLength(buf, parentAt, CGROUP_PARENT_LEN);
  const text: CgroupText = {
    leafLength,
    parentLength,
    v1,
    bytes: Buffer.concat([buf.subarray(leafAt, leafAt + leafLength), buf.subarray(parentAt, parentAt + parentLength)]),
    cgroupId: String(key),
    cgroup: buf.toString('utf8', leafAt, leafAt + leafLength),
    cgroupParent: buf.toString('utf8', parentAt, parentAt + parentLength),
  };
  if (hit === undefined && cgroupTexts.size >= CGROUP_TEXTS_MAX) cgroupTexts.clear();
  cgroupTexts.set(key, text);
  return text;
}

/** One framed record; bootHi and bootLo are its boot_ns's two 32-bit halves. */
function decodeRecord(
  buf: Buffer,
  at: number,
  ctx: DecodeContext,
  bootHi: number,
  bootLo: number,
  filenameLen: number,
  argvLen: number,
): DecodedEvent {
  const flags = buf.readUInt32LE(at + O.flags);
  const filenameStart = at + HEADER_SIZE;
  const filenameEnd = filenameStart + filenameLen;
  const argvEnd = filenameEnd + argvLen;
  const time = wallTime(bootHi, bootLo, ctx.bootOffsetNs);
  const event = new DecodedEvent(ctx.nextSeq(), time, wallMs, ctx.node);
  event.pid = buf.readUInt32LE(at + O.pid);
  event.tid = buf.readUInt32LE(at + O.tid);
  event.ppid = buf.readUInt32LE(at + O.ppid);
  event.uid = buf.readUInt32LE(at + O.uid);
  event.gid = buf.readUInt32LE(at + O.gid);
  event.argc = buf.readUInt32LE(at + O.argc);
  event.argvTruncated = (flags & FLAGS.ARGV_TRUNCATED) !== 0;
  event.filenameTruncated = (flags & FLAGS.FILENAME_TRUNCATED) !== 0;
  event.retval = buf.readInt32LE(at + O.retval);
  event.fileless = (flags & FLAGS.FILELESS) !== 0;
  event.execveat = (flags & FLAGS.EXECVEAT) !== 0;
  event.readError = (flags & FLAGS.READ_ERROR) !== 0;

  // Usually every text is plain ASCII and the JSON up to readError is written here at once.
  const front = frontJson(buf, at, event, filenameStart, filenameEnd, argvEnd);
  let filenameValid = true;
  let argvValid = true;
  if (front !== undefined) {
    DecodedEvent.keepFront(event, front);
    event.comm = front.comm;
    event.parentComm = front.parentComm;
    event.filename = front.filename;
  } else {
    // ASCII is valid UTF-8 and decodes fastest as latin1; bad bytes become U+FFFD.
    const filenameAscii = isAscii(buf, filenameStart, filenameEnd);
    filenameValid = filenameAscii || isUtf8(buf.subarray(filenameStart, filenameEnd));
    const argvAscii = isAscii(buf, filenameEnd, argvEnd);
    argvValid = argvAscii || isUtf8(buf.subarray(filenameEnd, argvEnd));
    event.argv = splitArgs(buf, filenameEnd, argvEnd, argvAscii ? 'latin1' : 'utf8');
    event.comm = fixedString(buf, at + O.comm, COMM_LEN);
    event.parentComm = fixedString(buf, at + O.parent_comm, COMM_LEN);
    event.filename = buf.toString(filenameAscii ? 'latin1' : 'utf8', filenameStart, filenameEnd);
  }
  const cgroup = cgroupText(buf, at, (flags & FLAGS.CGROUP_V1) !== 0);
  event.cgroupId = cgroup.cgroupId;
  event.cgroup = cgroup.cgroup;
  event.cgroupParent = cgroup.cgroupParent;
  event.cgroupTruncated = (flags & FLAGS.CGROUP_NAME_TRUNCATED) !== 0;
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
  emit: (event: ExecEvent, bootNs: number) => void,
): { decoded: number; malformed: number } {
  let decoded = 0;
  for (let at = 0; at < batch.length; ) {
    if (batch.length - at < HEADER_SIZE) return { decoded, malformed: 1 };
    const recordLen = batch.readUInt32LE(at + O.record_len);
    const filenameLen = batch.readUInt16LE(at + O.filename_len);
    const argvLen = batch.readUInt32LE(at + O.argv_len);
    if (recordLen % 8 !== 0 || HEADER_SIZE + filenameLen + argvLen > recordLen || recordLen > batch.length - at) return { decoded, malformed: 1 };
    const bootHi = batch.readUInt32LE(at + O.boot_ns + 4);
    const bootLo = batch.readUInt32LE(at + O.boot_ns);
    // boot_ns as a double: exact up to 2^53 ns of uptime (104 days), within 0.1 µs for centuries after.
    emit(decodeRecord(batch, at, ctx, bootHi, bootLo, filenameLen, argvLen), bootHi * 0x1_0000_0000 + bootLo);
    decoded += 1;
    at += recordLen;
  }
  return { decoded, malformed: 0 };
}
