/**
 * execId: a process's name across the cluster. Made of what names a process on a node for the
 * whole boot (its start time and pid) and what names the boot (the node, the kernel's boot id),
 * so the kernel's records and a /proc scan give the same id for the same process, and a pid
 * reused later gets another. The start time is counted in clock ticks, as /proc/PID/stat field
 * 22 shows it (start_boottime / (NSEC_PER_SEC / USER_HZ)): two processes of one pid cannot start
 * within one tick, the pid space being far larger than what can be forked in 10 ms.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/PID/stat's times, 100 on every Linux architecture's user ABI. */
export const CLOCK_TICKS_PER_SECOND = 100;
const NS_PER_TICK = 1_000_000_000n / BigInt(CLOCK_TICKS_PER_SECOND);

/** What every execId of one agent run shares. */
export interface ExecIdScope {
  node: string;
  /** /proc/sys/kernel/random/boot_id, without its dashes. */
  bootId: string;
}

/** The kernel's boot id (a UUID, new at every boot), dashes removed. */
export function readBootId(root = '/'): string {
  return readFileSync(`${root}proc/sys/kernel/random/boot_id`, 'utf8').trim().replaceAll('-', '');
}

/**
 * What every execId of one scope starts with: base64url of "node:bootId". Computed once per
 * batch by the decoder; the rest of an id is plain digits.
 */
export function execIdPrefix(scope: ExecIdScope): string {
  return Buffer.from(`${scope.node}:${scope.bootId}`).toString('base64url');
}

/** `prefix.ticks.pid`: URL-safe (base64url, digits and dots). */
export function execIdWith(prefix: string, ticks: bigint | number | string, pid: number): string {
  return `${prefix}.${ticks}.${pid}`;
}

/** The start time in ticks of a start_boottime in ns. */
export const ticksOf = (startNs: bigint): bigint => startNs / NS_PER_TICK;

/** The execId of the process `pid` that started `ticks` clock ticks after boot. */
export function execIdOfTicks(scope: ExecIdScope, ticks: bigint | number | string, pid: number): string {
  return execIdWith(execIdPrefix(scope), ticks, pid);
}

/** The execId of the process `pid` whose group leader's start_boottime is `startNs`. */
export function execIdOf(scope: ExecIdScope, startNs: bigint, pid: number): string {
  return execIdOfTicks(scope, ticksOf(startNs), pid);
}

/** What an execId is made of, or null for a string that is not one. */
export function parseExecId(execId: string): { node: string; bootId: string; ticks: number; pid: number } | null {
  const parts = /^([A-Za-z0-9_-]+)\.(\d{1,20})\.(\d{1,10})$/.exec(execId);
  if (parts === null) return null;
  const match = /^(.*):([0-9a-f]{32})$/.exec(Buffer.from(parts[1] as string, 'base64url').toString());
  if (match === null) return null;
  return { node: match[1] as string, bootId: match[2] as string, ticks: Number(parts[2]), pid: Number(parts[3]) };
}
