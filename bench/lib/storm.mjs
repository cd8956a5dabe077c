// SPDX-License-Identifier: Apache-2.0
/**
 * The exec storm: builds what the agent needs, compiles bench/storm.c and bench/noop.c (static)
 * into a temporary directory that the cleanup path removes, and runs the storm.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { die, log, onCleanup, root } from './common.mjs';

/** Runs the npm build scripts whose output is missing. */
export function ensureBuilt() {
  const pieces = [
    ['build/execwatch.bpf.o', 'build:bpf'],
    ['native/build/Release/execwatch.node', 'build:addon'],
    ['dist/main.js', 'build:ts'],
  ];
  for (const [file, script] of pieces) {
    if (existsSync(join(root, file))) continue;
    log(`${file} missing, running npm run ${script}`);
    const r = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) die(`npm run ${script} failed`);
  }
}

/**
 * The storm and the do-nothing binary, compiled into a fresh temporary directory:
 * { work, storm, noop, warm, staticNoop }.
 */
export function compileTools() {
  const work = mkdtempSync(join(tmpdir(), 'execwatch-bench-'));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const cc = process.env.CC ?? 'clang';
  const storm = join(work, 'storm');
  const noop = join(work, 'noop');
  const run = (argv) => {
    const r = spawnSync(cc, argv, { encoding: 'utf8' });
    if (r.error) die(`${cc} not found (${r.error.message}): install clang or set CC`);
    return r;
  };
  let r = run(['-O2', '-Wall', '-o', storm, join(root, 'bench', 'storm.c')]);
  if (r.status !== 0) die(`compiling bench/storm.c failed:\n${r.stderr}`);
  r = run(['-O2', '-static', '-o', noop, join(root, 'bench', 'noop.c')]);
  let staticNoop = true;
  if (r.status !== 0) {
    // No libc.a (libc6-dev without static libs): a dynamic binary still works, exec costs more.
    staticNoop = false;
    r = run(['-O2', '-o', noop, join(root, 'bench', 'noop.c')]);
    if (r.status !== 0) die(`compiling bench/noop.c failed:\n${r.stderr}`);
  }
  // The same binary under a path the filename filter on `noop` does not match.
  const warm = join(work, 'warmup', 'noop');
  mkdirSync(dirname(warm));
  copyFileSync(noop, warm);
  chmodSync(warm, 0o755);
  return { work, storm, noop, warm, staticNoop };
}

const stormArgs = (tools, mode, n, count, extra) => [mode, String(n), String(count), tools.noop, ...extra];

/** The storm's closing JSON line, with its rate; a failed spawn invalidates the measurement. */
function stormResult(stdout) {
  const result = JSON.parse(stdout.trim().split('\n').pop());
  if (result.failed > 0) die(`storm: ${result.failed} spawns failed`);
  return { ...result, rate: result.execs / result.seconds };
}

/** `storm MODE N COUNT noop EXTRA…`, waited for (bench/storm.c says what the modes do). */
export function runStorm(tools, mode, n, count, extra = []) {
  const r = spawnSync(tools.storm, stormArgs(tools, mode, n, count, extra), { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) die(`storm failed: ${r.stderr}`);
  return stormResult(r.stdout);
}

/** The same, while this process goes on serving its event loop (SSE subscribers, timers). */
export function runStormAsync(tools, mode, n, count, extra = []) {
  return new Promise((resolve) => {
    const child = spawn(tools.storm, stormArgs(tools, mode, n, count, extra), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      if (code !== 0) die(`storm exited with ${code}`);
      resolve(stormResult(out));
    });
  });
}
