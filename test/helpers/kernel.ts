/**
 * Shared by the real-kernel tests: whether they may run, tracefs and cgroup v2 locations, the
 * compiled exec helper, and waiting for events.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './poll.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = join(here, '..', '..');

/**
 * tap options for a test that needs root and the real kernel: skipped with the reason when not
 * root, unless EXECWATCH_REQUIRE_BPF=1 (CI), where running without root is a failure.
 */
export function kernelTest(): { skip: string | false } {
  if (process.getuid?.() === 0) return { skip: false };
  if (process.env.EXECWATCH_REQUIRE_BPF === '1') {
    throw new Error('EXECWATCH_REQUIRE_BPF=1 but the tests do not run as root: the real-kernel tests cannot run');
  }
  return { skip: 'needs root and the real kernel (set EXECWATCH_REQUIRE_BPF=1 to fail instead of skipping)' };
}

function mountsOf(fstype: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[f.indexOf('-') + 1] === fstype)
    .map((f) => f[4] as string);
}

/** Mounts tracefs at /sys/kernel/tracing when no tracefs is mounted (the CI machine boots without). */
export function ensureTracefs(): void {
  if (mountsOf('tracefs').length > 0) return;
  execFileSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing']);
}

/** The cgroup v2 mount point: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts. */
export function cgroup2Root(): string {
  const m = mountsOf('cgroup2')[0];
  if (!m) throw new Error('no cgroup2 mount in /proc/self/mountinfo');
  return m;
}

/** Creates a cgroup v2 directory path (parents included) and returns its inode number. */
export function makeCgroup(path: string): number {
  mkdirSync(path, { recursive: true });
  return statSync(path).ino;
}

let helperPath: string | null = null;

/** Compiles test/fixtures/exec-helper.c once per process and returns the binary's path. */
export function execHelper(): string {
  if (helperPath && existsSync(helperPath)) return helperPath;
  const out = join(repoRoot, 'build', 'test', 'exec-helper');
  mkdirSync(join(repoRoot, 'build', 'test'), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  execFileSync('clang', ['-O2', '-Wall', '-pthread', '-o', tmp, join(repoRoot, 'test', 'fixtures', 'exec-helper.c')]);
  execFileSync('mv', ['-f', tmp, out]);
  helperPath = out;
  return out;
}

let stormPath: string | null = null;

/** Compiles test/fixtures/exec-storm.c (static) once per process and returns the binary's path. */
export function execStorm(): string {
  if (stormPath && existsSync(stormPath)) return stormPath;
  const out = join(repoRoot, 'build', 'test', 'exec-storm');
  mkdirSync(join(repoRoot, 'build', 'test'), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  execFileSync('clang', ['-O2', '-Wall', '-static', '-pthread', '-o', tmp, join(repoRoot, 'test', 'fixtures', 'exec-storm.c')]);
  execFileSync('mv', ['-f', tmp, out]);
  stormPath = out;
  return out;
}

let exec32Path: string | null = null;

/**
 * Compiles test/fixtures/exec32.c once per process as a static 32-bit (ia32) binary and returns
 * its path. Needs gcc-multilib (a test package of scripts/setup.mjs).
 */
export function exec32Helper(): string {
  if (exec32Path && existsSync(exec32Path)) return exec32Path;
  const out = join(repoRoot, 'build', 'test', 'exec32');
  mkdirSync(join(repoRoot, 'build', 'test'), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  execFileSync('gcc', ['-m32', '-static', '-O2', '-Wall', '-o', tmp, join(repoRoot, 'test', 'fixtures', 'exec32.c')]);
  execFileSync('mv', ['-f', tmp, out]);
  exec32Path = out;
  return out;
}

/**
 * Why this kernel refuses 32-bit binaries, or null when it runs them. With ia32 emulation off at
 * run time (the ia32_emulation=0 boot parameter, or a hypervisor such as PVM or Xen PV that runs no
 * 32-bit code) execve fails with ENOEXEC, and spawn's execvp then hands the file to /bin/sh as a
 * script: the shell's complaint is the signature required, so a helper that fails to run for
 * another reason is not taken for a refusal.
 */
export function refuses32Bit(): string | null {
  const stderr = spawnSync(exec32Helper(), ['usage'], { encoding: 'utf8' }).stderr ?? '';
  const refused = !stderr.startsWith('usage: exec32') && /Syntax error|Exec format error/.test(stderr);
  return refused ? `this kernel refuses 32-bit binaries (ENOEXEC; ${stderr.trim()})` : null;
}

/** The programs every kernel attaches (bpf/execwatch.bpf.c). */
export const CORE_PROGRAMS = ['handle_enter_execve', 'handle_enter_execveat', 'handle_exec', 'handle_exit_execve', 'handle_exit_execveat', 'handle_fork', 'handle_task_exit'] as const;

/**
 * The programs that follow 32-bit execs: the addon attaches one of these sets, by what the kernel
 * allows (native/tracer.cc): fentry/fexit where BPF trampolines work, the raw syscall tracepoints
 * where they do not, none where the kernel runs no 32-bit code (without ia32 emulation, or with it
 * turned off at run time: this CI host).
 */
export const COMPAT_PATHS = {
  fentry: ['handle_enter_compat_execve', 'handle_enter_compat_execveat', 'handle_exit_compat_execve', 'handle_exit_compat_execveat'],
  raw: ['handle_enter_compat', 'handle_exit_compat'],
  none: [],
} as const;

/** The sorted names a tracer attaches on a kernel that takes `path` for 32-bit execs. */
export function programsWith(path: keyof typeof COMPAT_PATHS): string[] {
  return [...CORE_PROGRAMS, ...COMPAT_PATHS[path]].sort();
}

/** The 32-bit exec path an attached list shows (for the assertions above), or null when none fits. */
export function compatPathOf(attached: readonly string[]): keyof typeof COMPAT_PATHS | null {
  const sorted = [...attached].sort();
  const path = (Object.keys(COMPAT_PATHS) as (keyof typeof COMPAT_PATHS)[]).find((p) => programsWith(p).join() === sorted.join());
  return path ?? null;
}

/** A marker unique to this test run, to find our own execs among the machine's. */
export function marker(label: string): string {
  return `execwatch-${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Resolves when `pred` holds, polling every 20 ms; rejects with `what` after `timeoutMs`. */
export function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return eventually(pred, what, timeoutMs, 20);
}

/** IDs of the BPF objects of one kind a process holds open, from /proc/PID/fdinfo. */
function fdinfoIds(pid: number, field: 'prog_id' | 'map_id'): number[] {
  const dir = `/proc/${pid}/fdinfo`;
  const ids: number[] = [];
  for (const fd of execFileSync('ls', [dir], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    let info = '';
    try {
      info = readFileSync(join(dir, fd), 'utf8');
    } catch {
      continue;
    }
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(info);
    if (m) ids.push(Number(m[1]));
  }
  return ids;
}

/** IDs of the BPF programs a process holds open. */
export function bpfProgIds(pid: number): number[] {
  return fdinfoIds(pid, 'prog_id');
}

/** IDs of the BPF maps a process holds open. */
export function bpfMapIds(pid: number): number[] {
  return fdinfoIds(pid, 'map_id');
}

/** Whether a BPF program with this id is still loaded anywhere (bpftool prog show id N). */
export function progLoaded(id: number): boolean {
  try {
    execFileSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The programs of `ids` still loaded once the kernel has had up to `timeoutMs` to free them:
 * detaching is immediate, but programs on the syscall tracepoints are freed after an RCU grace
 * period (tens of milliseconds).
 */
export async function stillLoaded(ids: number[], timeoutMs = 2000): Promise<number[]> {
  await eventually(() => !ids.some(progLoaded), 'the programs to be unloaded', timeoutMs, 20).catch(() => {});
  return ids.filter(progLoaded);
}

/** run_time_ns and run_cnt of one BPF program, by id, from the fdinfo of a process that holds it. */
export interface ProgRun {
  ns: number;
  runs: number;
}

/**
 * Run time and runs of each program of `ids` (name → id) that process `pid` holds, read from
 * /proc/PID/fdinfo (they count only while kernel.bpf_stats_enabled is 1).
 */
export function progRuns(pid: number, ids: Record<string, number>): Record<string, ProgRun> {
  const byId = new Map<number, ProgRun>();
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of execFileSync('ls', [dir], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    let info = '';
    try {
      info = readFileSync(join(dir, fd), 'utf8');
    } catch {
      continue;
    }
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    // A link's fdinfo names its program too, without the run figures.
    if (!Number.isNaN(field('run_time_ns'))) byId.set(field('prog_id'), { ns: field('run_time_ns'), runs: field('run_cnt') });
  }
  return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, byId.get(id) ?? { ns: Number.NaN, runs: Number.NaN }]));
}

/**
 * The host pid of the process of `cgroup` that is pid 1 of a pid namespace of its own (a
 * simulated container's init, made with `unshare --pid --fork`), or undefined while there is none.
 */
export function namespaceInit(cgroup: string): number | undefined {
  for (const line of readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n')) {
    if (line === '') continue;
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${line}/status`, 'utf8'))?.[1]?.split(/\s+/) ?? [];
      if (nspid.length > 1 && nspid[nspid.length - 1] === '1') return Number(line);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** Runs `argv` inside `cgroup` (the exec helper joins it, then execs); its stderr is kept for finished(). */
export function inCgroup(cgroup: string, argv: string[]): ChildProcess {
  return spawn(execHelper(), ['cgroup', cgroup, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Resolves when `child` exits 0; rejects with its exit code and stderr otherwise. */
export function finished(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exited ${code}: ${err}`))));
  });
}
