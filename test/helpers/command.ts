/**
 * The execwatch command run as a user runs it, for the real-kernel tests that look at it from
 * outside: its threads in /proc, its --log-events lines, its exit after a signal.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
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

/** Starts `execwatch --log-events` on free loopback ports with `args`; resolves once it serves. */
export function startCommand(args: string[] = []): Promise<RunningAgent> {
  return watchStartup(
    spawn(
      process.execPath,
      [...process.execArgv, join(repoRoot, 'src', 'main.ts'), '--log-events', '--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
}

/**
 * Follows an execwatch process spawned with piped stdout and stderr until it prints its URLs;
 * rejects with its stderr when it exits first or takes longer than `timeoutMs`.
 */
export async function watchStartup(child: ChildProcessByStdio<null, Readable, Readable>, timeoutMs = 30_000): Promise<RunningAgent> {
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

/** The --log-events lines whose text contains `marker`, parsed. */
export function loggedEvents<T = { argv: string[] }>(out: string, marker: string): T[] {
  return out
    .split('\n')
    .filter((line) => line.includes(marker))
    .map((line) => JSON.parse(line) as T);
}
