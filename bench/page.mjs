#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * The browse page with 10,000 rows: main-thread work in headless Chromium (Debian's chromium,
 * driven by playwright-core) to open the page and to filter it, over the agent's own events API
 * from dist/ (a ring of 10,000 synthetic execs: a few namespaces and pods, some failed, some
 * probes and exec sessions, argv of a few arguments).
 *
 *   node bench/page.mjs [--json] [--rounds=N]
 *
 * Main-thread work is Chromium's TaskDuration (Performance.getMetrics over CDP: the time the
 * renderer's main thread spent running tasks: script, style, layout, paint, parsing) between the
 * start and the end of each step, less its DevToolsCommandDuration (the commands with which
 * Playwright clicks, types and polls: the bench's work, not the page's), with script and
 * style+layout apart, and the long tasks (> 50 ms) the page's PerformanceObserver saw. Those are
 * wall-clock times: on a machine busy with other work a task that waits for a CPU counts the
 * wait. Beside them, the CPU time the main thread used (ThreadTime, the bench's DevTools commands
 * included, so an upper bound of the page's own), and the renderer process's (ProcessTime: the
 * page's worker, which parses and counts the rows, included):
 * - open100: the same page with ?limit=100, for comparison: what opening the page costs by itself;
 * - open:   navigation to ?limit=10000 until the status counts 10,000 execs and the frame after it
 *           is drawn (HTML, the modules, the first rows, the histogram, the counts by pod; the
 *           fetch, JSON parse and counting of the 10,000 events are the page's worker's, on its
 *           own thread: that is its point);
 * - toggle: "failures only" on, until the rows are redrawn (the quick toggles filter the rows loaded);
 * - search: a comm typed + Enter, until the rows are redrawn (asks the agent again).
 * Prints the median of each over the rounds and exits 1 when open or toggle is over the target
 * (bench/lib/targets.mjs). bench/run.mjs runs it as a scenario.
 */
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TARGETS } from './lib/targets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(join(root, 'dist', 'http', 'api-app.js'))) {
  process.stderr.write('page: dist/ missing: run npm run build:ts\n');
  process.exit(1);
}
const { values: args } = parseArgs({ options: { json: { type: 'boolean' }, rounds: { type: 'string' } } });
const ROUNDS = Number(args.rounds ?? 6);
const ROWS = Number(process.env.BENCH_PAGE_ROWS ?? 10_000);
const { buildApiApp } = await import(join(root, 'dist/http/api-app.js'));
const { EventStore } = await import(join(root, 'dist/events/store.js'));
const { EventHub } = await import(join(root, 'dist/events/stream.js'));
const { eventRecord } = await import(join(root, 'dist/events/record.js'));
const { chromium } = await import('playwright-core');

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const NAMESPACES = ['shop', 'payments', 'search', 'kube-system', 'monitoring'];
const COMMANDS = [['sh', '-c', 'curl -s http://localhost:8080/healthz'], ['cat', '/etc/resolv.conf'], ['python3', '-m', 'app.worker', '--queue=orders'], ['ls', '-la', '/tmp'], ['nginx', '-s', 'reload']];

/** Execs `i` of the ring: seconds apart over almost three hours. */
function eventOf(i) {
  const pid = 10_000 + i;
  const ns = NAMESPACES[i % NAMESPACES.length];
  const pod = `${ns}-web-${(i >> 3) % 7}`;
  const argv = COMMANDS[i % COMMANDS.length];
  const origin = i % 11 === 0 ? 'probe' : i % 17 === 0 ? 'exec' : 'workload';
  return {
    seq: i + 1, kind: 'exec', time: new Date(T0 + i * 1000).toISOString().replace('Z', '000000Z'), node: 'bench-node',
    pid, tid: pid, ppid: pid - 1, execId: `bench.${pid}`, parentExecId: `bench.${pid - 1}`,
    uid: 1000, gid: 1000, euid: i % 29 === 0 ? 0 : 1000, egid: 1000, euidDiffers: i % 29 === 0, loginuid: null, sessionid: null,
    comm: argv[0], parentComm: 'sh', ancestors: [{ execId: `bench.${pid - 1}`, pid: pid - 1, comm: 'sh', filename: '/bin/sh', argv: ['sh'] }],
    filename: `/usr/bin/${argv[0]}`, argv, argc: argv.length, argvTruncated: false, filenameTruncated: false,
    retval: i % 13 === 0 ? -2 : 0, fileless: false, drift: i % 97 === 0, execveat: false, readError: false,
    cgroupId: String(4000 + (i % 35)), cgroup: `cri-containerd-${'c'.repeat(64)}.scope`, cgroupParent: 'kubepods-pod1234.slice', cgroupTruncated: false,
    containerId: 'c'.repeat(64), namespace: ns, pod, podUid: '1234', container: 'app', image: 'registry.example/app:1', imageId: null,
    workload: { kind: 'Deployment', name: `${ns}-web` }, attribution: 'pod', origin, sessionExecId: origin === 'exec' ? `bench.${pid}` : null,
  };
}

const store = new EventStore({ maxEvents: ROWS });
const hub = new EventHub({ maxQueue: 256, onOverflow: () => undefined });
for (let i = 0; i < ROWS; i++) store.push(eventRecord(eventOf(i)));
const app = buildApiApp({ store, hub, logLevel: 'fatal', heartbeatMs: 15_000 });
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const profile = mkdtempSync(join(tmpdir(), 'execwatch-bench-page-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** A fresh tab, and how to measure one step in it (main-thread ms, long tasks). */
async function tab() {
  const page = await context.newPage();
  // Injected by the browser, not by the page: the page's CSP does not apply to it.
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => window.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  /** Main-thread ms so far: all tasks, and of them the DevTools commands that drive the page (not its own work). */
  const busy = async () => {
    const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value * 1000]));
    return {
      task: metrics.TaskDuration, devtools: metrics.DevToolsCommandDuration, script: metrics.ScriptDuration, layout: metrics.LayoutDuration + metrics.RecalcStyleDuration,
      thread: metrics.ThreadTime, process: metrics.ProcessTime,
    };
  };
  const step = async (act, done) => {
    // `done`: the status line's start once the step has drawn.
    const longBefore = await page.evaluate(() => window.__longTasks?.length ?? 0).catch(() => 0);
    const before = await busy();
    await act();
    await page.waitForFunction((prefix) => document.querySelector('#status')?.textContent?.startsWith(prefix), done, { timeout: 60_000, polling: 50 });
    // The status is written in the same task as the rows and the overview; the frame that lays
    // them out and paints them comes after it, and is the page's work too.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0))));
    const after = await busy();
    const long = await page.evaluate((n) => window.__longTasks.slice(n), longBefore);
    return {
      ms: after.task - before.task - (after.devtools - before.devtools),
      scriptMs: after.script - before.script,
      layoutMs: after.layout - before.layout,
      cpuMs: after.thread - before.thread,
      processCpuMs: after.process - before.process,
      longTasks: long.length,
      longestMs: Math.max(0, ...long),
    };
  };
  await page.goto('about:blank');
  return { page, step };
}

// Each step ends when the status line counts the rows it should show.
const statusIs = (prefix) => prefix;

/** Round `r`: the page with 100 rows and with 10,000 in two fresh tabs (which first alternates: the second finds the modules compiled), then the filters. */
async function round(r) {
  const small = await tab();
  const big = await tab();
  // The same page with the newest 100 rows: what opening costs without the many rows.
  const open100 = () => small.step(() => small.page.goto(`${base}/?limit=100`), statusIs('100 execs'));
  const openAll = () => big.step(() => big.page.goto(`${base}/?limit=${ROWS}`), statusIs(`${ROWS} execs`));
  let open100ms;
  let open;
  if (r % 2 === 0) {
    open100ms = await open100();
    open = await openAll();
  } else {
    open = await openAll();
    open100ms = await open100();
  }
  await small.page.close();
  const { page, step } = big;
  const failures = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i % 13 === 0).length;
  const toggle = await step(() => page.check('input[name="failures"]'), statusIs(`${failures} execs of ${ROWS}`));
  await page.uncheck('input[name="failures"]');
  await page.waitForFunction((prefix) => document.querySelector('#status')?.textContent?.startsWith(prefix), `${ROWS} execs`);
  const cats = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i % COMMANDS.length === 1).length;
  const search = await step(async () => {
    await page.fill('input[name="comm"]', 'cat');
    await page.press('input[name="comm"]', 'Enter');
  }, statusIs(`${cats} execs`));
  const rows = await page.locator('#events tbody tr').count();
  await page.close();
  return { open100: open100ms, open, toggle, search, rowsDrawn: rows };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds = [];
try {
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(r));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  await app.close();
}
const summary = Object.fromEntries(['open100', 'open', 'toggle', 'search'].map((step) => [step, {
  ms: median(rounds.map((r) => r[step].ms)),
  scriptMs: median(rounds.map((r) => r[step].scriptMs)),
  layoutMs: median(rounds.map((r) => r[step].layoutMs)),
  cpuMs: median(rounds.map((r) => r[step].cpuMs)),
  processCpuMs: median(rounds.map((r) => r[step].processCpuMs)),
  longTasks: median(rounds.map((r) => r[step].longTasks)),
  longestMs: median(rounds.map((r) => r[step].longestMs)),
}]));
const pass = TARGETS.page.ok(summary.open.ms) && TARGETS.page.ok(summary.toggle.ms);
const result = { rows: ROWS, rounds: ROUNDS, ...summary, all: rounds, pass };
if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  for (const step of ['open100', 'open', 'toggle', 'search']) {
    const s = summary[step];
    process.stdout.write(`${step.padEnd(8)} ${s.ms.toFixed(1).padStart(7)} ms main-thread (median of ${ROUNDS}; script ${s.scriptMs.toFixed(1)}, style+layout ${s.layoutMs.toFixed(1)}), ${s.longTasks} long tasks, longest ${s.longestMs.toFixed(1)} ms; CPU ${s.cpuMs.toFixed(0)} ms main thread, ${s.processCpuMs.toFixed(0)} ms renderer\n`);
  }
  process.stdout.write(`${ROWS} rows loaded, ${rounds[0].rowsDrawn} drawn after the search; target ${TARGETS.page.text} for open and for a filter: ${pass ? 'PASS' : 'FAIL'}\n`);
}
process.exitCode = pass ? 0 : 1;
