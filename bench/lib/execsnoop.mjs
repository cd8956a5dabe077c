// SPDX-License-Identifier: Apache-2.0
/** libbpf-tools' execsnoop, the reference the benchmark measures the agent against. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { die, sleep, track, untrack } from './common.mjs';
import { bpfProgStats } from './proc.mjs';

/** Where libbpf-tools' (or bcc's) execsnoop is installed, or null. */
export const findExecsnoop = () => ['/usr/sbin/execsnoop', '/usr/bin/execsnoop', '/usr/sbin/execsnoop-bpfcc'].find((p) => existsSync(p)) ?? null;

/**
 * Starts `execsnoop` writing its lines to `name` in the work directory, and returns once its
 * programs are attached and it has settled into polling: { pid, stop() }, where stop() ends it and
 * resolves to its output lines and what it wrote on stderr (it reports its losses there).
 */
export async function startExecsnoop(tools, execsnoop, name) {
  const out = join(tools.work, name);
  const fd = openSync(out, 'w');
  const child = spawn(execsnoop, [], { stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  track(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 10_000;
  while (bpfProgStats(child.pid).size < 2) {
    if (child.exitCode !== null || Date.now() > deadline) die(`execsnoop did not start:\n${stderr}`);
    await sleep(20);
  }
  await sleep(500);
  return {
    pid: child.pid,
    async stop() {
      child.kill('SIGINT');
      await exited;
      untrack(child);
      const lines = readFileSync(out, 'utf8').split('\n');
      rmSync(out);
      return { lines, stderr };
    },
  };
}
