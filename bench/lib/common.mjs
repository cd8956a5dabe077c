// SPDX-License-Identifier: Apache-2.0
/**
 * What every part of the benchmark shares: the repository root, progress on stderr, dying with a
 * message, and the one cleanup path (children killed, sysctl restored, temporary files removed)
 * that every exit goes through.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Progress and errors, on stderr (stdout has only the results). */
export function log(message) {
  process.stderr.write(`bench: ${message}\n`);
}

export function die(message) {
  log(message);
  process.exit(1);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Child processes still running: killed by cleanup(). */
const children = new Set();
export function track(child) {
  children.add(child);
}
export function untrack(child) {
  children.delete(child);
}

/**
 * Undo steps, run once each by cleanup() after the children die, the last registered first: a step
 * registered later undoes what was done on top of an earlier one's (the throughput and paired
 * scenarios both set kernel.bpf_stats_enabled, the second finding the first's 1).
 */
const undos = [];
export function onCleanup(undo) {
  undos.push(undo);
}

export function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  for (const undo of undos.splice(0).reverse()) undo();
}
// die() and every other exit come through here.
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

/** The machine the figures come from. */
export const hostInfo = (tools) => ({
  cpus: cpus().length,
  kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  node: process.version,
  staticNoop: tools.staticNoop,
});

/** Writes bench/results/NAME as indented JSON. */
export function writeResult(name, result) {
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', name), `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote bench/results/${name}`);
}
