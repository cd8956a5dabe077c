#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * The kubectl plugin at cluster scale: `kubectl-execwatch events --limit 1000` over 200 simulated
 * agents of 10,000 events each, behind the tests' API-server double (its WebSocket port-forward),
 * as test/plugin-scale.test.ts builds them. The plugin runs as users run it, the built executable
 * (dist/plugin/kubectl-execwatch.js) in its own process under /usr/bin/time: wall time, peak RSS
 * and CPU time (user + system: what wall time becomes on a machine busy with other work).
 * Targets: under 3 s and under 200 MB. No root needed.
 *
 *   node bench/plugin.mjs [--nodes=200 --events=10000 --limit=1000 --rounds=3]
 *                         [--plugin=OTHER/dist/plugin/kubectl-execwatch.js]
 *
 * --plugin runs another build (an older tree's) against the same cluster, for before/after
 * figures taken in one sitting.
 *
 * The cluster side runs in this process (sharing this machine's cores with the plugin, as the
 * figures say); the test helpers are TypeScript, loaded with the loader tap uses.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TARGETS = { wallSeconds: 3, peakRssMb: 200 };

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '200' },
    events: { type: 'string', default: '10000' },
    limit: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    plugin: { type: 'string', default: join(root, 'dist/plugin/kubectl-execwatch.js') },
  },
});
const [nodes, perNode, limit, rounds] = [values.nodes, values.events, values.limit, values.rounds].map(Number);

await import('@tapjs/typescript/import');
const { startApiServer } = await import('../test/helpers/apiserver.js');
const { startSimulatedCluster } = await import('../test/helpers/cluster.js');

/** Runs the plugin under /usr/bin/time; resolves to its exit code, output lines, wall and CPU seconds and peak RSS. */
function runTimed(args) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %M %U %S', process.execPath, values.plugin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (d) => (lines += d.toString().split('\n').length - 1));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /TIME (\S+) (\d+) (\S+) (\S+)/.exec(stderr);
      if (!m) return reject(new Error(`no figures from /usr/bin/time: ${stderr}`));
      const cpuSeconds = Number(m[3]) + Number(m[4]);
      resolve({ code, lines, wallSeconds: Number(m[1]), cpuSeconds, peakRssMb: Number(m[2]) / 1024, stderr: stderr.replace(m[0], '').trim() });
    });
  });
}

const api = await startApiServer();
const dir = mkdtempSync(join(tmpdir(), 'execwatch-bench-plugin-'));
let failed = false;
try {
  process.stderr.write(`bench/plugin: starting ${nodes} simulated agents of ${perNode} events…\n`);
  const cluster = await startSimulatedCluster(api, nodes, perNode);
  // Make every agent's answer once before timing: the agents' own work is not the plugin's.
  for (let i = 0; i < nodes; i += 1) cluster.newest(i, limit);
  const kubeconfig = api.kubeconfigPath(dir);
  const results = [];
  for (let round = 1; round <= rounds; round += 1) {
    const r = await runTimed(['events', '--kubeconfig', kubeconfig, '--limit', String(limit), '-o', 'jsonl', '--timeout', '60s']);
    if (r.code !== 0 || r.lines !== limit) throw new Error(`round ${round}: exit ${r.code}, ${r.lines} events: ${r.stderr}`);
    process.stderr.write(`round ${round}: ${r.wallSeconds.toFixed(2)} s, CPU ${r.cpuSeconds.toFixed(2)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB\n`);
    results.push(r);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const wall = median(results.map((r) => r.wallSeconds));
  const rss = median(results.map((r) => r.peakRssMb));
  const cpu = median(results.map((r) => r.cpuSeconds));
  failed = wall >= TARGETS.wallSeconds || rss >= TARGETS.peakRssMb;
  process.stdout.write(
    `kubectl-execwatch events --limit ${limit}, ${nodes} nodes × ${perNode} events, median of ${rounds}: ` +
      `${wall.toFixed(2)} s wall (target < ${TARGETS.wallSeconds} s), ${cpu.toFixed(2)} s CPU, peak RSS ${rss.toFixed(0)} MB (target < ${TARGETS.peakRssMb} MB)` +
      `${failed ? ' — TARGET MISSED' : ''}\n`,
  );
  await cluster.close();
} finally {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
