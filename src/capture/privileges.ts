/**
 * Least privilege after start-up, the whole of it. Dropping capabilities is not enough while the
 * uid stays 0: file owner bits still let root write /proc/sys/kernel/*, open root-owned devices and
 * read root's 0600 files. So, once the programs are attached, the ring buffer is open and the ports
 * are bound, every thread:
 *   1. drops every capability but CAP_SETUID and CAP_SETGID, empties the bounding set and sets
 *      no_new_privs (capabilities.ts: a set-user-ID binary can never bring root back);
 *   2. clears its supplementary groups and switches to the --run-as gid and uid (the uid switch
 *      takes the last two capabilities away);
 * and then every thread in /proc is checked, as is every file the agent reads again later (tokens
 * that rotate, the API server's certificates): one it can no longer read is a start-up error
 * naming it, not a failure an hour later.
 */
import { accessSync, constants } from 'node:fs';
import type { RunAs } from '../config.js';
import { StartupError } from '../startup-error.js';
import type { NativeBinding } from './binding.js';
import { CAP_SETGID, CAP_SETUID, capabilityBit, capabilityField, capabilityNames, dropCapabilities, threadStatuses, type DropReport } from './capabilities.js';

/** One thread's credentials, from /proc/PID/task/TID/status. */
export interface ThreadCredentials {
  tid: number;
  name: string;
  /** Real, effective, saved and file-system uid (the Uid line). */
  uids: number[];
  /** The same four gids (the Gid line). */
  gids: number[];
  /** Supplementary groups. */
  groups: number[];
  effective: bigint;
  permitted: bigint;
  noNewPrivs: boolean;
}

function idsLine(status: string, field: string): number[] {
  const m = new RegExp(`^${field}:([\\t 0-9]*)$`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} line in a thread's status`);
  return (m[1] as string).split(/\s+/).filter(Boolean).map(Number);
}

/** The credentials of every thread of a process (default: this one), under `root`'s /proc. */
export function threadCredentials(pid: number | 'self' = 'self', root = '/'): ThreadCredentials[] {
  return threadStatuses(pid, root).map(({ tid, status }) => ({
    tid,
    name: /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '',
    uids: idsLine(status, 'Uid'),
    gids: idsLine(status, 'Gid'),
    groups: idsLine(status, 'Groups'),
    effective: capabilityField(status, 'CapEff'),
    permitted: capabilityField(status, 'CapPrm'),
    noNewPrivs: /^NoNewPrivs:\s*1$/m.test(status),
  }));
}

/** What a thread still holds beyond `runAs` with no capability and no_new_privs, or null. */
function excess(th: ThreadCredentials, runAs: RunAs | null): string | null {
  const wrong: string[] = [];
  if (runAs && th.uids.some((id) => id !== runAs.uid)) wrong.push(`uid ${th.uids.join(' ')}`);
  if (runAs && th.gids.some((id) => id !== runAs.gid)) wrong.push(`gid ${th.gids.join(' ')}`);
  if (runAs && th.groups.length > 0) wrong.push(`groups ${th.groups.join(' ')}`);
  const caps = th.effective | th.permitted;
  if (caps !== 0n) wrong.push(capabilityNames(caps).join(','));
  if (!th.noNewPrivs) wrong.push('no_new_privs unset');
  return wrong.length > 0 ? `${th.tid} (${th.name}): ${wrong.join(', ')}` : null;
}

/** What was done, for the start-up line. */
export interface PrivilegeReport {
  capabilities: DropReport;
  /** The user every thread switched to; null with --run-as 0 (the uid stayed). */
  user: RunAs | null;
  /** Threads checked in /proc afterwards. */
  threads: number;
}

export interface DropPrivilegesOptions {
  /** Files the agent reads again after start-up: each must stay readable. */
  readLater?: readonly string[];
  /** Root of the /proc tree to check (default '/'). */
  root?: string;
}

/**
 * Drops capabilities on every thread and switches each to `runAs` (unless its uid is 0), then
 * checks every thread and every file of `readLater`. Throws a StartupError naming --run-as when
 * the switch is refused or a file is no longer readable, and an Error naming the thread when one
 * still holds something.
 */
export function dropPrivileges(
  binding: Pick<NativeBinding, 'dropCapabilities' | 'switchUser'>,
  runAs: RunAs,
  opts: DropPrivilegesOptions = {},
): PrivilegeReport {
  const root = opts.root ?? '/';
  const flag = `--run-as ${runAs.uid}:${runAs.gid}`;
  const user = runAs.uid === 0 ? null : runAs;
  const capabilities = dropCapabilities(binding, user ? capabilityBit(CAP_SETUID) | capabilityBit(CAP_SETGID) : 0n, root);
  if (user) {
    try {
      binding.switchUser(user.uid, user.gid);
    } catch (err) {
      const { message, code } = err as NodeJS.ErrnoException;
      throw new StartupError([
        `${flag}: cannot switch to that user (${message}, ${String(code)}): the agent needs CAP_SETUID and CAP_SETGID until then, or give --run-as 0 to keep uid 0`,
      ]);
    }
  }
  // What the process held before the user switch was reported by the capability drop; the
  // switch cleared the two it kept.
  const report = { ...capabilities, dropped: [...capabilities.dropped, ...(user ? capabilities.kept : [])], kept: user ? [] : capabilities.kept };
  const threads = threadCredentials('self', root);
  const held = threads.map((th) => excess(th, user)).filter((line) => line !== null);
  if (held.length > 0) {
    throw Object.assign(new Error(`privileges still held after the switch by thread ${held.join('; ')}`), { code: 'ERR_PRIVILEGES_HELD' });
  }
  const unreadable: string[] = [];
  for (const file of opts.readLater ?? []) {
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      unreadable.push(
        `${flag}: ${file} is not readable as uid ${runAs.uid} gid ${runAs.gid} (${(err as NodeJS.ErrnoException).code}), and the agent reads it again later: ` +
          'make it readable by that user or group (the chart sets the pod\'s fsGroup to the gid), or choose another --run-as',
      );
    }
  }
  if (unreadable.length > 0) throw new StartupError(unreadable, 2);
  return { capabilities: report, user, threads: threads.length };
}

/** The start-up line that says what the agent gave up. */
export function describePrivileges(report: PrivilegeReport): string {
  const { dropped, boundingSetCleared } = report.capabilities;
  const user = report.user ? `uid ${report.user.uid} gid ${report.user.gid}, no supplementary groups` : 'uid 0 kept (--run-as 0)';
  const caps = dropped.length > 0 ? `${dropped.length} capabilities dropped (${dropped.join(',')})` : 'no capabilities held';
  const bounding = boundingSetCleared ? 'bounding set emptied' : 'bounding set left as is (no CAP_SETPCAP)';
  return `all ${report.threads} threads now run as ${user}; ${caps}; ${bounding}; no_new_privs set`;
}
