/**
 * Builds kernel records byte for byte as bpf/execwatch.bpf.c lays them out (bpf/execwatch.h),
 * for tests of the decoder and of everything fed by it. The offsets are written out here on
 * purpose, not imported from src/capture/decode.ts, so a wrong offset there cannot hide.
 */

/** The fields of one record; strings are written as UTF-8, Buffers as their exact bytes. */
export interface RecordFields {
  bootNs: bigint;
  /** Defaults to an id derived from the cgroup names (cgroupIdOf). */
  cgroupId: bigint;
  flags: number;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  gid: number;
  retval: number;
  /** Defaults to the number of arguments in `argv` when it is an array. */
  argc: number;
  comm: string | Buffer;
  parentComm: string | Buffer;
  cgroup: string | Buffer;
  cgroupParent: string | Buffer;
  filename: string | Buffer;
  /** An array is written NUL-terminated argument by argument; a Buffer is the argv region as is. */
  argv: readonly string[] | Buffer;
  /** The parent at the fork (fork_ppid); ppid unless given. */
  forkPpid: number;
  /** The group leader's and the fork parent's start_boottime (ns). */
  startNs: bigint;
  forkParentStartNs: bigint;
  euid: number;
  egid: number;
  loginuid: number;
  sessionid: number;
  /** The pid namespaces of the process and its parent, and its pid in its own (0: unknown). */
  pidns: number;
  parentPidns: number;
  nsPid: number;
  /** Overrides of the length fields, for malformed records (the bytes written stay as given). */
  recordLen: number;
  /** enum execwatch_record_kind; 0 (exec) unless given. */
  kind: number;
  filenameLen: number;
  argvLen: number;
  cgroupLeafLen: number;
}

const HEADER = 144;

const DEFAULTS = {
  bootNs: 1_000_000_000n,
  flags: 0,
  pid: 4242,
  tid: 4242,
  ppid: 4200,
  uid: 1000,
  gid: 1000,
  startNs: 5_000_000_000n,
  forkParentStartNs: 2_000_000_000n,
  euid: 1000,
  egid: 1000,
  loginuid: 4294967295,
  sessionid: 4294967295,
  pidns: 4026531836,
  parentPidns: 4026531836,
  nsPid: 4242,
  retval: 0,
  comm: 'true',
  parentComm: 'sh',
  cgroup: 'session-1.scope',
  cgroupParent: 'user-1000.slice',
  filename: '/usr/bin/true',
  argv: ['true'],
} as const satisfies Partial<RecordFields>;

const bytesOf = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value) : value);

function writeFixed(buf: Buffer, at: number, size: number, value: string | Buffer): void {
  const bytes = bytesOf(value);
  bytes.copy(buf, at, 0, Math.min(size, bytes.length));
}

/** A cgroup's and its parent's names as every kind of record carries them after its fixed part. */
function namesOf(cgroup: string | Buffer, cgroupParent: string | Buffer): { leaf: Buffer; parent: Buffer; bytes: Buffer } {
  const leaf = bytesOf(cgroup);
  const parent = bytesOf(cgroupParent);
  return { leaf, parent, bytes: Buffer.concat([leaf, parent]) };
}

/** A fixed part of `size` bytes, the names after it, padded to a multiple of 8; the name lengths at `lenAt`. */
function withNames(size: number, lenAt: number, names: ReturnType<typeof namesOf>): Buffer {
  const buf = Buffer.alloc(Math.ceil((size + names.bytes.length) / 8) * 8);
  buf.writeUInt16LE(names.leaf.length, lenAt);
  buf.writeUInt16LE(names.parent.length, lenAt + 2);
  names.bytes.copy(buf, size);
  return buf;
}

/**
 * The id of a cgroup the test names but gives no id: the same for the same names, different for
 * different ones, as on cgroup v2 (where an id is one cgroup's for the whole boot).
 */
function cgroupIdOf(leaf: Buffer, parent: Buffer): bigint {
  let hash = 0x811c9dc5; // FNV-1a
  for (const byte of [...leaf, 0, ...parent]) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return 1_000_000n + BigInt(hash);
}

/** One record, padded to a multiple of 8 (or to `recordLen` when that is larger). */
export function encodeRecord(fields: Partial<RecordFields> = {}): Buffer {
  const f = { ...DEFAULTS, ...fields };
  const filename = typeof f.filename === 'string' ? Buffer.from(f.filename) : f.filename;
  const argv = Buffer.isBuffer(f.argv) ? f.argv : Buffer.from(f.argv.map((a) => `${a}\0`).join(''));
  const names = namesOf(f.cgroup, f.cgroupParent);
  const content = HEADER + names.bytes.length + filename.length + argv.length;
  const padded = Math.ceil(content / 8) * 8;
  const buf = Buffer.alloc(Math.max(padded, Math.ceil((f.recordLen ?? 0) / 8) * 8));

  buf.writeBigUInt64LE(f.bootNs, 0);
  buf.writeBigUInt64LE(f.cgroupId ?? cgroupIdOf(bytesOf(f.cgroup), bytesOf(f.cgroupParent)), 8);
  buf.writeUInt32LE(f.recordLen ?? padded, 16);
  buf.writeUInt16LE(f.kind ?? 0, 20);
  buf.writeUInt16LE(f.flags, 22);
  buf.writeUInt32LE(f.pid, 24);
  buf.writeUInt32LE(f.tid, 28);
  buf.writeUInt32LE(f.ppid, 32);
  buf.writeUInt32LE(f.uid, 36);
  buf.writeUInt32LE(f.gid, 40);
  buf.writeInt32LE(f.retval, 44);
  buf.writeUInt32LE(f.argc ?? (Buffer.isBuffer(f.argv) ? 0 : f.argv.length), 48);
  buf.writeUInt16LE(f.filenameLen ?? filename.length, 52);
  buf.writeUInt32LE(f.argvLen ?? argv.length, 56);
  buf.writeUInt32LE(f.forkPpid ?? f.ppid, 60);
  buf.writeBigUInt64LE(f.startNs, 64);
  buf.writeBigUInt64LE(f.forkParentStartNs, 72);
  buf.writeUInt32LE(f.euid, 80);
  buf.writeUInt32LE(f.egid, 84);
  buf.writeUInt32LE(f.loginuid, 88);
  buf.writeUInt32LE(f.sessionid, 92);
  buf.writeUInt32LE(f.pidns, 96);
  buf.writeUInt32LE(f.parentPidns, 100);
  buf.writeUInt32LE(f.nsPid, 104);
  buf.writeUInt16LE(f.cgroupLeafLen ?? names.leaf.length, 108);
  buf.writeUInt16LE(names.parent.length, 110);
  writeFixed(buf, 112, 16, f.comm);
  writeFixed(buf, 128, 16, f.parentComm);
  names.bytes.copy(buf, HEADER);
  filename.copy(buf, HEADER + names.bytes.length);
  argv.copy(buf, HEADER + names.bytes.length + filename.length);
  return buf;
}

/** The fields of one exit record (struct execwatch_exit_record). */
export interface ExitFields {
  bootNs: bigint;
  cgroupId: bigint;
  flags: number;
  pid: number;
  tid: number;
  /** The wait status: code << 8, or the signal | 0x80 with a core. */
  status: number;
  /** Processes it forked still running at its exit. */
  orphans: number;
  startNs: bigint;
  execNs: bigint;
  comm: string;
  cgroup: string;
  cgroupParent: string;
  /** enum execwatch_record_kind (1) unless given; record_len the bytes written unless given. */
  kind: number;
  recordLen: number;
}

/** One exit record: 80 bytes (EXECWATCH_EXIT_SIZE) then the cgroup names, offsets written out like encodeRecord's. */
export function encodeExit(fields: Partial<ExitFields> = {}): Buffer {
  const cgroup = fields.cgroup ?? DEFAULTS.cgroup;
  const cgroupParent = fields.cgroupParent ?? DEFAULTS.cgroupParent;
  const buf = withNames(80, 72, namesOf(cgroup, cgroupParent));
  buf.writeBigUInt64LE(fields.bootNs ?? 6_500_000_000n, 0);
  buf.writeBigUInt64LE(fields.cgroupId ?? cgroupIdOf(bytesOf(cgroup), bytesOf(cgroupParent)), 8);
  buf.writeUInt32LE(fields.recordLen ?? buf.length, 16);
  buf.writeUInt16LE(fields.kind ?? 1, 20);
  buf.writeUInt16LE(fields.flags ?? 0, 22);
  buf.writeUInt32LE(fields.pid ?? DEFAULTS.pid, 24);
  buf.writeUInt32LE(fields.tid ?? fields.pid ?? DEFAULTS.pid, 28);
  buf.writeInt32LE(fields.status ?? 0, 32);
  buf.writeUInt32LE(fields.orphans ?? 0, 36);
  buf.writeBigUInt64LE(fields.startNs ?? DEFAULTS.startNs, 40);
  buf.writeBigUInt64LE(fields.execNs ?? 5_000_000_000n, 48);
  writeFixed(buf, 56, 16, fields.comm ?? DEFAULTS.comm);
  return buf;
}

/** Several records back to back, as the addon delivers one ring-buffer wake-up. */
export function encodeBatch(...records: Partial<RecordFields>[]): Buffer {
  return Buffer.concat(records.map((r) => encodeRecord(r)));
}

/** The fields of a throttle record (struct execwatch_throttle_record). */
export interface ThrottleFields {
  bootNs: bigint;
  cgroupId: bigint;
  flags: number;
  pid: number;
  tid: number;
  comm: string;
  cgroup: string;
  cgroupParent: string;
  /** enum execwatch_record_kind (2) unless given; record_len the bytes written unless given. */
  kind: number;
  recordLen: number;
}

/** One throttle record: 56 bytes (EXECWATCH_THROTTLE_SIZE) then the cgroup names, offsets written out like encodeRecord's. */
export function encodeThrottle(fields: Partial<ThrottleFields> = {}): Buffer {
  const cgroup = fields.cgroup ?? DEFAULTS.cgroup;
  const cgroupParent = fields.cgroupParent ?? DEFAULTS.cgroupParent;
  const buf = withNames(56, 48, namesOf(cgroup, cgroupParent));
  buf.writeBigUInt64LE(fields.bootNs ?? 6_500_000_000n, 0);
  buf.writeBigUInt64LE(fields.cgroupId ?? cgroupIdOf(bytesOf(cgroup), bytesOf(cgroupParent)), 8);
  buf.writeUInt32LE(fields.recordLen ?? buf.length, 16);
  buf.writeUInt16LE(fields.kind ?? 2, 20);
  buf.writeUInt16LE(fields.flags ?? 0, 22);
  buf.writeUInt32LE(fields.pid ?? DEFAULTS.pid, 24);
  buf.writeUInt32LE(fields.tid ?? fields.pid ?? DEFAULTS.pid, 28);
  writeFixed(buf, 32, 16, fields.comm ?? DEFAULTS.comm);
  return buf;
}

/** One slot of struct execwatch_cgroup_stat. */
export interface CgroupStatFields {
  cgroupId: bigint;
  claimedNs: bigint;
  throttled: bigint;
  lost: bigint;
  lastNs: bigint;
}

/**
 * Every CPU's struct execwatch_cgroup_stats, as NativeTracer.cgroupStats() copies them: `cpus`
 * tables of `other` then 256 slots, with `slots` placed as [cpu, index (-1: other), fields].
 */
export function encodeCgroupStats(cpus: number, slots: [number, number, Partial<CgroupStatFields>][]): Buffer {
  const buf = Buffer.alloc(cpus * 257 * 40);
  for (const [cpu, index, f] of slots) {
    const at = (cpu * 257 + index + 1) * 40;
    buf.writeBigUInt64LE(f.cgroupId ?? 0n, at);
    buf.writeBigUInt64LE(f.claimedNs ?? 1n, at + 8);
    buf.writeBigUInt64LE(f.throttled ?? 0n, at + 16);
    buf.writeBigUInt64LE(f.lost ?? 0n, at + 24);
    buf.writeBigUInt64LE(f.lastNs ?? 0n, at + 32);
  }
  return buf;
}
