/**
 * The processes running when the agent starts, read from /proc, to seed the process table: their
 * execIds (from /proc/PID/stat's start time, field 22, as the kernel's records give it), parents,
 * names, argv and containers. Kernel threads are left out. A process that ends while it is read
 * is skipped.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { parseCgroup } from '../enrich/cgroup.js';
import { execIdOfTicks, type ExecIdScope } from '../events/exec-id.js';
import type { ProcessInfo } from '../events/processes.js';

/** What /proc/PID/stat says: the name, the parent and the start time in clock ticks. */
export interface Stat {
  comm: string;
  ppid: number;
  startTicks: string;
}

/** Parses /proc/PID/stat; the name is in parentheses and may hold any byte, ')' included. */
export function parseStat(text: string): Stat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // Fields from the third on (state), so field N is at N - 3.
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  const startTicks = fields[19];
  if (!Number.isInteger(ppid) || startTicks === undefined || !/^\d+$/.test(startTicks)) return null;
  return { comm: text.slice(open + 1, close), ppid, startTicks };
}

/** Whether the process `pid` that started `ticks` clock ticks after boot still runs (its stat says so). */
export function stillRuns(pid: number, ticks: bigint, root = '/'): boolean {
  try {
    return parseStat(readFileSync(`${root}proc/${pid}/stat`, 'latin1'))?.startTicks === String(ticks);
  } catch {
    return false;
  }
}

/**
 * The container of a /proc/PID/cgroup text: from the cgroup v2 line ("0::/…"), else from the
 * memory controller's line (cgroup v1), by the same patterns the events' cgroup names go through.
 */
export function containerOf(text: string): string | null {
  const lines = text.split('\n');
  const path = (lines.find((l) => l.startsWith('0::')) ?? lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l)) ?? '').replace(/^[^:]*:[^:]*:/, '');
  const names = path.split('/');
  const leaf = names[names.length - 1] as string;
  const parent = names.length > 1 ? (names[names.length - 2] as string) : '';
  return parseCgroup(leaf, parent)?.containerId ?? null;
}

const read = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** Every user-space process under `${root}proc`, as the process table takes them. */
export function scanProcesses(scope: ExecIdScope, root = '/'): ProcessInfo[] {
  const proc = `${root}proc`;
  const stats = new Map<number, Stat>();
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    const stat = parseStat(read(`${proc}/${name}/stat`) ?? '');
    if (stat !== null) stats.set(Number(name), stat);
  }
  const found: ProcessInfo[] = [];
  for (const [pid, stat] of stats) {
    // kthreadd (pid 2) and its children are kernel threads: nothing exec'd them.
    if (pid === 2 || stat.ppid === 2) continue;
    const cmdline = read(`${proc}/${pid}/cmdline`);
    if (cmdline === null) continue;
    const argv = cmdline === '' ? [] : cmdline.replace(/\0$/, '').split('\0');
    let filename = argv[0] ?? '';
    try {
      filename = readlinkSync(`${proc}/${pid}/exe`);
    } catch {
      // No exe link (a process ending now, or one whose image is gone): argv[0] stands in.
    }
    const parent = stats.get(stat.ppid);
    found.push({
      execId: execIdOfTicks(scope, stat.startTicks, pid),
      parentExecId: parent === undefined ? null : execIdOfTicks(scope, parent.startTicks, stat.ppid),
      pid,
      comm: stat.comm,
      filename,
      argv,
      containerId: containerOf(read(`${proc}/${pid}/cgroup`) ?? ''),
    });
  }
  return found;
}
