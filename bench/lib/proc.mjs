// SPDX-License-Identifier: Apache-2.0
/**
 * Readings of a running process from /proc: CPU seconds, memory, and the kernel time of the BPF
 * programs it holds open (with kernel.bpf_stats_enabled, which enableBpfStats() sets and the
 * cleanup path puts back).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { log, onCleanup } from './common.mjs';

/**
 * CPU seconds of a process: the time its threads have spent on a CPU, in nanoseconds
 * (/proc/PID/task/TID/schedstat). utime + stime from /proc/PID/stat count in clock ticks (10 ms),
 * which over a round of a few hundred milliseconds is a 5-10% error; a thread that exits between
 * two readings takes its time with it, which neither the agent's threads nor execsnoop's do.
 */
export function procCpuSeconds(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread exited while being read.
    }
  }
  return ns / 1e9;
}

/** A `kB` line of /proc/PID/status (VmRSS, VmHWM), in bytes. */
export function procStatus(pid, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** run_time_ns and run_cnt of every BPF program a process holds open, by program id. */
export function bpfProgStats(pid) {
  const progs = new Map();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:bpf-prog') continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    progs.set(field('prog_id'), { runTimeNs: field('run_time_ns'), runCnt: field('run_cnt') });
  }
  return progs;
}

/** A program's name, from bpftool, or its id. */
export function progName(id) {
  try {
    return JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(id), '--json'], { encoding: 'utf8' })).name;
  } catch {
    return `prog ${id}`;
  }
}

/**
 * The agent's programs that run for every syscall of every process rather than per exec or exit:
 * the raw-syscall ia32 fallback, loaded only where the kernel gives BPF no trampolines (README,
 * Performance). Their time divided by the execs of a storm depends on how many syscalls each exec
 * of that storm makes, so it is reported beside the exec path's, not mixed into it.
 */
export const PER_SYSCALL_PROGRAMS = new Set(['handle_enter_compat', 'handle_exit_compat']);

/**
 * Kernel time of all of a tool's programs between two readings, in ns, and the part of it spent in
 * PER_SYSCALL_PROGRAMS. Per exec it is divided by the execs made, not by a program's runs: some
 * programs run for every syscall or every exit.
 */
export function bpfDelta(before, after) {
  let ns = 0;
  let perSyscallNs = 0;
  for (const [id, a] of after) {
    const delta = a.runTimeNs - (before.get(id)?.runTimeNs ?? 0);
    ns += delta;
    if (PER_SYSCALL_PROGRAMS.has(progName(id))) perSyscallNs += delta;
  }
  return { ns, perSyscallNs };
}

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** Sets kernel.bpf_stats_enabled=1 until the benchmark exits. */
export function enableBpfStats() {
  const before = readFileSync(STATS_SYSCTL, 'utf8');
  onCleanup(() => {
    try {
      writeFileSync(STATS_SYSCTL, before);
    } catch {
      // Nothing more to do: the message below says what to put back.
      log(`could not restore kernel.bpf_stats_enabled=${before.trim()}`);
    }
  });
  writeFileSync(STATS_SYSCTL, '1\n');
}
