/**
 * Least privilege after start-up, capabilities part. Loading and attaching the programs needs
 * CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); once they are attached and the ring buffer is open,
 * the agent needs none: consuming the ring and reading the loss counters is reading memory it
 * mapped, detaching is closing descriptors. So every thread gives up every capability (the user
 * switch of privileges.ts keeps CAP_SETUID and CAP_SETGID for its own step, and the switch takes
 * them away), and a compromise of the HTTP side can neither load BPF nor read kernel memory.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NativeBinding } from './binding.js';

/** Capability names by number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (Linux 5.9). */
export const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** The capability numbers the agent reasons about (linux/capability.h); names from CAPABILITY_NAMES. */
export const CAP_SETGID = 6;
export const CAP_SETUID = 7;
export const CAP_SYS_ADMIN = 21;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

/** The bit of one capability in a mask. */
export const capabilityBit = (cap: number): bigint => 1n << BigInt(cap);

/** The names of the capabilities in a mask; numbers this table does not know yet as CAP_<n>. */
export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let cap = 0; mask >> BigInt(cap) !== 0n; cap += 1) {
    if ((mask >> BigInt(cap)) & 1n) names.push(CAPABILITY_NAMES[cap] ?? `CAP_${cap}`);
  }
  return names;
}

/** One thread's capability sets, from /proc/PID/task/TID/status. */
export interface ThreadCapabilities {
  tid: number;
  name: string;
  effective: bigint;
  permitted: bigint;
}

/** A capability mask line of /proc/PID/status (CapEff, CapPrm…) in hex, or null when absent. */
export function parseCapabilityField(status: string, field: string): bigint | null {
  const m = new RegExp(`^${field}:\\s*([0-9a-fA-F]+)$`, 'm').exec(status);
  return m ? BigInt(`0x${m[1]}`) : null;
}

/** A capability mask line a thread's status must have. */
export function capabilityField(status: string, field: string): bigint {
  const mask = parseCapabilityField(status, field);
  if (mask === null) throw new Error(`no ${field} line in a thread's status`);
  return mask;
}

/** The status text of every thread of a process (default: this one), under `root`'s /proc. */
export function threadStatuses(pid: number | 'self' = 'self', root = '/'): { tid: number; status: string }[] {
  const tasks = join(root, 'proc', String(pid), 'task');
  const threads: { tid: number; status: string }[] = [];
  for (const tid of readdirSync(tasks)) {
    try {
      threads.push({ tid: Number(tid), status: readFileSync(join(tasks, tid, 'status'), 'utf8') });
    } catch {
      // The thread ended after the listing: it holds nothing any more.
    }
  }
  return threads;
}

/** The capabilities of every thread of a process (default: this one), under `root`'s /proc. */
export function threadCapabilities(pid: number | 'self' = 'self', root = '/'): ThreadCapabilities[] {
  return threadStatuses(pid, root).map(({ tid, status }) => ({
    tid,
    name: /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '',
    effective: capabilityField(status, 'CapEff'),
    permitted: capabilityField(status, 'CapPrm'),
  }));
}

/** What was dropped (privileges.ts words the start-up line). */
export interface DropReport {
  threads: number;
  /** Capabilities the process held before and gave up. */
  dropped: string[];
  /** Capabilities still held (those `keep` asked for and the process had). */
  kept: string[];
  boundingSetCleared: boolean;
}

/**
 * Drops every capability but `keep` on every thread, then checks each thread in /proc: a thread
 * still holding more than that is an error, never a silent partial drop.
 */
export function dropCapabilities(binding: Pick<NativeBinding, 'dropCapabilities'>, keep = 0n, root = '/'): DropReport {
  const before = threadCapabilities('self', root).reduce((all, t) => all | t.permitted, 0n);
  const result = binding.dropCapabilities(keep);
  const held = threadCapabilities('self', root).filter((t) => ((t.effective | t.permitted) & ~keep) !== 0n);
  if (held.length > 0) {
    const which = held.map((t) => `${t.tid} (${t.name}): ${capabilityNames((t.effective | t.permitted) & ~keep).join(',')}`);
    throw Object.assign(new Error(`capabilities still held after the drop by thread ${which.join('; ')}`), { code: 'ERR_CAPABILITIES_HELD' });
  }
  return {
    threads: result.threads,
    dropped: capabilityNames(before & ~keep),
    kept: capabilityNames(before & keep),
    boundingSetCleared: result.boundingSetCleared,
  };
}
