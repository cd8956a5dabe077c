/**
 * The execwatch command run as a user runs it, for the real-kernel tests that look at it from
 * outside: its threads in /proc, its --log-events lines, its exit after a signal.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Test } from 'tap';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { repoRoot, waitFor } from './kernel.js';

export interface RunningAgent {
  child: ChildProcessByStdio<null, Readable, Readable>;
  pid: number;
  /** Everything written to stdout / stderr so far. */
  out: () => string;
  err: () => string;
  /** The /metrics URL printed at start-up. */
  metricsUrl: string;
  /** The events API base URL printed at start-up. */
  apiUrl: string;
  /** Resolves with the exit code (null when killed by a signal) once all output is read. */
  exited: Promise<number | null>;
}

/** How to run the command besides its arguments. */
export interface CommandOptions {
  /** Node options before the script (e.g. `--import` of a test module). */
  nodeArgs?: string[];
  /** A command that runs node (e.g. setpriv with its options). */
  wrapper?: string[];
  env?: NodeJS.ProcessEnv;
}

/** The execwatch command line: `execwatch --log-events` on free loopback ports with `args`. */
export function commandLine(args: string[] = [], opts: CommandOptions = {}): string[] {
  const node = [process.execPath, ...process.execArgv, ...(opts.nodeArgs ?? []), join(repoRoot, 'src', 'main.ts')];
  return [...(opts.wrapper ?? []), ...node, '--log-events', '--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', ...args];
}

/** Starts `execwatch --log-events` on free loopback ports with `args`; resolves once it serves. */
export function startCommand(args: string[] = [], opts: CommandOptions = {}): Promise<RunningAgent> {
  const [file, ...rest] = commandLine(args, opts) as [string, ...string[]];
  return watchStartup(spawn(file, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env }));
}

/**
 * Under tap, every Node child process writes its coverage and process info into .tap/ when it
 * exits; the agent then runs as its --run-as user (65534), which may not write root's 0755
 * directories: without this its coverage would be lost and each exit would print EACCES. Sticky
 * and world-writable, as /tmp, for the length of the run (tap recreates them).
 */
function shareCoverageDirectories(): void {
  const cwd = process.env._TAPJS_PROCESSINFO_CWD_;
  if (!cwd) return;
  for (const dir of ['coverage', 'processinfo']) {
    try {
      chmodSync(join(cwd, '.tap', dir), 0o1777);
    } catch {
      // Not there (coverage off): nothing is written.
    }
  }
}

/**
 * Follows an execwatch process spawned with piped stdout and stderr until it prints its URLs;
 * rejects with its stderr when it exits first or takes longer than `timeoutMs`.
 */
export async function watchStartup(child: ChildProcessByStdio<null, Readable, Readable>, timeoutMs = 30_000): Promise<RunningAgent> {
  shareCoverageDirectories();
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': the output is read to its end first.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(() => gone || /events\s+http:\/\//.test(err), `the start-up lines (${err})`, timeoutMs);
  if (gone) throw new Error(`execwatch exited at start-up: ${err}`);
  return {
    child,
    pid: child.pid as number,
    out: () => out,
    err: () => err,
    metricsUrl: (/metrics\s+(http:\/\/\S+\/metrics)/.exec(err) as RegExpExecArray)[1] as string,
    apiUrl: (/events\s+(http:\/\/[^\s/]+)/.exec(err) as RegExpExecArray)[1] as string,
    exited,
  };
}

/**
 * The command with the smallest ring buffer (64 KiB: about 110 records of a short exec) and room
 * for 20,000 recent events, as a child a test can hold with SIGSTOP so that the kernel loses
 * events; `args` after those. Killed (after a SIGCONT) when `t` ends. `metricsBase` is the
 * metrics listener without its path.
 */
export async function startSmallRingAgent(t: Test, args: string[]): Promise<RunningAgent & { metricsBase: string }> {
  const [file, ...rest] = commandLine(['--ringbuf-bytes', '64Ki', '--recent-events', '20000', '--log-level', 'warn', ...args]) as [string, ...string[]];
  const agent = await watchStartup(spawn(file, rest, { stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
  t.teardown(() => {
    agent.child.kill('SIGCONT');
    agent.child.kill('SIGKILL');
  });
  return { ...agent, metricsBase: agent.metricsUrl.replace(/\/metrics$/, '') };
}

/** The --log-events lines whose text contains `marker`, parsed. */
export function loggedEvents<T = { argv: string[] }>(out: string, marker: string): T[] {
  return out
    .split('\n')
    .filter((line) => line.includes(marker))
    .map((line) => JSON.parse(line) as T);
}
