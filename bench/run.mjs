#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * npm run bench: what tracing every exec costs this machine, and whether anything is lost.
 * A script, not a test: it needs root, takes a few minutes and its figures depend on the host.
 *
 *   sudo npm run bench [-- --rounds=5 --execs=8000 --no-execsnoop --no-pipeline --no-export --baseline-tree=DIR]
 *   sudo npm run bench -- --export-only [--rounds=N --execs=N --agent-tree=DIR]
 *   sudo npm run bench -- --soak=600
 *   sudo npm run bench -- --scrapes [--agent-tree=DIR]
 *   sudo npm run bench -- --scope [--execs=N --no-execsnoop]
 *
 * Builds what is missing, compiles bench/storm.c and bench/noop.c (lib/storm.mjs), then runs the
 * scenarios, each in its own file under scenarios/:
 *   throughput.mjs  the storm untraced, with the agent and with execsnoop: throughput ratio,
 *                   events delivered and lost, CPU per event, BPF kernel time per exec;
 *                   --baseline-tree=DIR adds the agent of another built checkout to each round
 *                   and a row of this agent's CPU per event against that one's;
 *   paired.mjs      the exec path's BPF time next to execsnoop's with both attached at once,
 *                   the attach order alternating (with execsnoop only);
 *   memory.mjs      peak RSS with a full 10,000-event ring of 2 KiB-argv execs;
 *   latency.mjs     exec to SSE subscriber at 200 execs/s, p50 and p99;
 *   pipeline.mjs    the user-space pipeline alone (bench/pipeline.mjs), one core;
 *   scrapes.mjs     64 clients scraping /metrics back to back during a 2,000-exec burst on a
 *                   64 KiB ring: ringbuf_full.
 *   redact.mjs      redaction against 100 KB arguments built to make it backtrack (bench/redact.mjs).
 *   export.mjs      agent CPU per event with OTLP export on (to a local receiver) and off.
 *   page.mjs        the browse page with 10,000 rows in headless Chromium: main-thread ms to
 *                   open it and to filter (bench/page.mjs; --no-page skips it).
 * Prints a table and writes bench/results/latest.json; exits 1 when a target is missed. The
 * sysctl it sets is restored on every exit.
 *
 * --soak=SECONDS runs only the soak instead (scenarios/soak.mjs): RSS under a storm at the
 * machine's maximum rate, sampled every 10 s; writes bench/results/soak.json.
 *
 * --paired runs only the paired scenario and writes bench/results/paired.json.
 *
 * --scope runs only the scope scenario (scenarios/scope.mjs): BPF time per exec in scope, out of
 * scope and of execsnoop, by program; writes bench/results/scope.json.
 *
 * --scrapes runs only the scrape storm, 5 rounds, and writes bench/results/scrapes.json; with
 * --agent-tree=DIR the agent is another built checkout's (DIR/dist/main.js), for a before/after.
 * --export-only takes --agent-tree=DIR too.
 */
import { cleanup, die, hostInfo, log, writeResult } from './lib/common.mjs';
import { findExecsnoop } from './lib/execsnoop.mjs';
import { lostText, median, sum } from './lib/stats.mjs';
import { compileTools, ensureBuilt } from './lib/storm.mjs';
import { TARGETS } from './lib/targets.mjs';
import { exportCost } from './scenarios/export.mjs';
import { latency } from './scenarios/latency.mjs';
import { memory } from './scenarios/memory.mjs';
import { pageCost } from './scenarios/page.mjs';
import { pairedBpf } from './scenarios/paired.mjs';
import { pipeline } from './scenarios/pipeline.mjs';
import { scrapeStorm } from './scenarios/scrapes.mjs';
import { redaction } from './scenarios/redact.mjs';
import { soak } from './scenarios/soak.mjs';
import { scopeCost } from './scenarios/scope.mjs';
import { throughput } from './scenarios/throughput.mjs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';

const USAGE = 'sudo npm run bench [-- --rounds=N --execs=N --latency-execs=N --no-execsnoop --no-pipeline --no-export --no-page --baseline-tree=DIR | --export-only [--agent-tree=DIR] | --soak=SECONDS | --paired [--rounds=N --execs=N] | --scope | --scrapes [--agent-tree=DIR]]';
let args;
try {
  ({ values: args } = parseArgs({
    strict: true,
    options: Object.fromEntries(
      [['rounds', 'string'], ['execs', 'string'], ['latency-execs', 'string'], ['soak', 'string'], ['agent-tree', 'string'], ['baseline-tree', 'string'],
        ['no-execsnoop', 'boolean'], ['no-pipeline', 'boolean'], ['no-export', 'boolean'], ['no-page', 'boolean'], ['export-only', 'boolean'], ['scrapes', 'boolean'], ['paired', 'boolean'], ['scope', 'boolean'], ['help', 'boolean']]
        .map(([name, type]) => [name, { type }]),
    ),
  }));
} catch (err) {
  die(`${err.message}\nusage: ${USAGE}`);
}
if (args.help) {
  console.log(`usage: ${USAGE}\n(scenarios and what they measure: the comment at the top of bench/run.mjs)`);
  process.exit(0);
}
const ROUNDS = Number(args.rounds ?? 5);
const EXECS = Number(args.execs ?? 8000);
const WORKERS = 2;
const LATENCY_RATE = 200;
const LATENCY_EXECS = Number(args['latency-execs'] ?? 2000);
const RING_EVENTS = 10_000;
/** Execs run through a fresh agent before its measured storm (fewer than the ring minus EXECS). */
const WARMUP_EXECS = 1500;
/** Soak: seconds of storm (0: no soak) and the RSS sample period. */
const SOAK_SECONDS = args.soak === undefined ? 0 : Number(args.soak);
if (args.soak !== undefined && !(Number.isInteger(SOAK_SECONDS) && SOAK_SECONDS >= 30)) die(`--soak=${args.soak}: give whole seconds, at least 30`);
const SOAK_SAMPLE_MS = 10_000;
/** Scrape storm: clients, the burst they scrape through, and the small ring that shows losses. */
const SCRAPE_STORM = { clients: 64, execs: 2000, ring: '64Ki', workers: WORKERS };

if (process.getuid?.() !== 0) {
  die('must run as root (loading BPF programs and kernel.bpf_stats_enabled need it): sudo npm run bench');
}

/** The results table: [figure, execwatch, execsnoop, target, pass (null: not a target)] rows. */
/** The paired row: the exec path's BPF time with execsnoop attached at the same time. */
function pairedRow(paired) {
  const label = '  exec path ÷ execsnoop, both attached at once (µs)';
  if (!paired) return [label, 'n/a', 'n/a', TARGETS.bpfVsExecsnoop.text, null];
  const rounds = paired.ratios.map((r) => r.toFixed(2));
  return [label, `${paired.agentUsPerExec.toFixed(2)} (${paired.ratio.toFixed(2)}×; rounds ${rounds.join(', ')})`, paired.execsnoopUsPerExec.toFixed(2),
    TARGETS.bpfVsExecsnoop.text, TARGETS.bpfVsExecsnoop.ok(paired.agentUsPerExec, paired.execsnoopUsPerExec)];
}

/** The export row: CPU per event with OTLP export on, next to off, against its target. */
function exportRow(exp) {
  if (!exp) return ['CPU per event, OTLP export on / off (µs)', 'skipped', '', TARGETS.export.text, null];
  const { on, off } = exp;
  // Every exec on the host in the measured windows is an event and a record, not the storm's only.
  return ['CPU per event, OTLP export on / off (µs)',
    `${on.cpuUsPerEvent.toFixed(1)} / ${off.cpuUsPerEvent.toFixed(1)} (+${((on.cpuUsPerEvent / off.cpuUsPerEvent - 1) * 100).toFixed(0)}%; ${on.exported} exported, ${on.exportLost} export losses)`,
    '', TARGETS.export.text, TARGETS.export.ok(on.cpuUsPerEvent, off.cpuUsPerEvent) && on.exportLost === 0];
}

function table({ untracedRate, agent, baseline, snoop, paired, memory: mem, latency: lat, pipeline: pipe, scrapes, redact, exp, page }) {
  const fmt = (v, digits = 2) => (v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
  const agentLost = agent.lostTotal + sum(Object.values(mem.lost)) + sum(Object.values(lat.lost));
  return [
    ['untraced exec rate (median)', `${Math.round(untracedRate)}/s`, '', '', null],
    ['throughput ratio (median)', fmt(agent.medianRatio, 3), snoop ? fmt(snoop.medianRatio, 3) : 'n/a', TARGETS.ratio.text,
      TARGETS.ratio.ok(agent.medianRatio, snoop?.medianRatio)],
    ['events delivered / execs', `${agent.delivered}/${agent.execs}`, snoop ? `${snoop.delivered}/${snoop.execs}` : 'n/a', 'all',
      agent.delivered >= agent.execs],
    ['events lost, by stage (all runs)', lostText({ ...agent.lost }) + (agentLost > agent.lostTotal ? ` (+${agentLost - agent.lostTotal} mem/latency)` : ''),
      snoop ? lostText(snoop.lost) : 'n/a', TARGETS.lost.text, TARGETS.lost.ok(agentLost)],
    ['CPU s per 1,000 events', fmt(agent.cpuSecondsPer1000, 4), snoop ? fmt(snoop.cpuSecondsPer1000, 4) : 'n/a', '≤ 0.015', null],
    ['CPU per event (µs)', fmt(agent.cpuUsPerEvent, 1), snoop ? fmt(snoop.cpuUsPerEvent, 1) : 'n/a', TARGETS.cpu.text, TARGETS.cpu.ok(agent.cpuUsPerEvent)],
    ...(baseline
      ? [[`CPU per event ÷ baseline tree's (${fmt(baseline.cpuUsPerEvent, 1)} µs)`, `${fmt(agent.cpuUsPerEvent / baseline.cpuUsPerEvent, 2)}×`, '',
          TARGETS.vsBaseline.text, TARGETS.vsBaseline.ok(agent.cpuUsPerEvent, baseline.cpuUsPerEvent)]]
      : []),
    ['BPF kernel time per exec (µs)', fmt(agent.bpfUsPerExec, 2), snoop ? fmt(snoop.bpfUsPerExec, 2) : 'n/a', TARGETS.bpf.text, TARGETS.bpf.ok(agent.bpfUsPerExec)],
    ['  of which per syscall (ia32 raw-syscall fallback)', fmt(agent.bpfPerSyscallUsPerExec, 2), '', '', null],
    ['  exec path (exec and exit programs) ÷ execsnoop', fmt(agent.bpfUsPerExec - agent.bpfPerSyscallUsPerExec, 2) +
      (snoop ? ` (${fmt((agent.bpfUsPerExec - agent.bpfPerSyscallUsPerExec) / snoop.bpfUsPerExec, 2)}×)` : ''), snoop ? fmt(snoop.bpfUsPerExec, 2) : 'n/a',
      TARGETS.bpfVsExecsnoop.text, snoop ? TARGETS.bpfVsExecsnoop.ok(agent.bpfUsPerExec - agent.bpfPerSyscallUsPerExec, snoop.bpfUsPerExec) : null],
    pairedRow(paired),
    ['peak RSS, storm rounds (MB)', fmt(agent.peakRssMB, 1), snoop ? fmt(snoop.peakRssMB, 1) : 'n/a', '', null],
    ['peak RSS, full ring, 2 KiB argv (MB)', `${fmt(mem.rss / 2 ** 20, 1)} (${mem.held} held, ${mem.streamed}/${mem.execs} streamed)`, '',
      TARGETS.rss.text, TARGETS.rss.ok(mem.rss / 2 ** 20) && mem.held === RING_EVENTS],
    [`latency p50 / p99 at ${LATENCY_RATE}/s (ms)`, `${fmt(lat.p50, 1)} / ${fmt(lat.p99, 1)} (${lat.received}/${lat.execs})`, 'n/a',
      TARGETS.latency.text, TARGETS.latency.ok(lat.p99) && lat.received === lat.execs],
    [`ringbuf_full, ${SCRAPE_STORM.execs}-exec burst, ${SCRAPE_STORM.clients} scrapers, ${SCRAPE_STORM.ring} ring`,
      scrapes.rounds.map((r) => r.lost.ringbuf_full).join(', '), '', TARGETS.lost.text,
      TARGETS.lost.ok(sum(scrapes.rounds.map((r) => r.lost.ringbuf_full)))],
    ['pipeline, one core (events/s)', pipe ? `${Math.round(pipe.eventsPerSecond)}` : 'skipped', '', TARGETS.pipeline.text,
      pipe ? TARGETS.pipeline.ok(pipe.eventsPerSecond) : null],
    ['redaction, hostile 100 KB argument (ms): slowest --redact / built-in',
      `${fmt(redact.slowestPattern.ms[1], 1)} (${redact.slowestPattern.name}) / ${fmt(redact.slowestRule.ms[1], 1)}`, '', TARGETS.redact.text, redact.pass],
    exportRow(exp),
    ['browse page, 10,000 rows: open / filter (main-thread ms)', page ? `${fmt(page.open.ms, 0)} / ${fmt(page.toggle.ms, 0)} (search ${fmt(page.search.ms, 0)})` : 'skipped', '',
      TARGETS.page.text, page ? page.pass : null],
  ];
}

function printTable(rows) {
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => String(r[i]).length), ['figure', 'execwatch', 'execsnoop', 'target'][i].length));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  const out = [line(['figure', 'execwatch', 'execsnoop', 'target']) + '  result', line(widths.map((w) => '-'.repeat(w))) + '  ------'];
  for (const r of rows) out.push(`${line(r.slice(0, 4))}  ${r[4] === null ? '' : r[4] ? 'PASS' : 'FAIL'}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main() {
  ensureBuilt();
  const tools = compileTools();
  if (SOAK_SECONDS > 0) {
    await soak(tools, { seconds: SOAK_SECONDS, sampleMs: SOAK_SAMPLE_MS });
    return;
  }
  if (args.scope) {
    const execsnoop = args['no-execsnoop'] ? null : findExecsnoop();
    log(`scope: ${EXECS} execs with 4 KiB of argv, agent in scope, out of scope (--exclude-host)${execsnoop ? ' and execsnoop' : ''}`);
    const result = await scopeCost(tools, { execs: EXECS, workers: WORKERS, argvBytes: 4000, execsnoop });
    cleanup();
    for (const [what, r] of Object.entries(result)) {
      if (r) log(`scope: ${what}: ${(r.nsPerExec / 1000).toFixed(2)} µs/exec over ${r.execs} execs (${r.rate}/s); by program (ns/exec): ${JSON.stringify(r.programs)}`);
    }
    writeResult('scope.json', { date: new Date().toISOString(), host: hostInfo(tools), execs: EXECS, argvBytes: 4000, ...result });
    return;
  }
  if (args.paired) {
    const execsnoop = findExecsnoop();
    if (!execsnoop) die('--paired needs execsnoop (Debian: apt-get install libbpf-tools)');
    log(`paired: ${ROUNDS} rounds of ${EXECS} execs, the agent and execsnoop attached at once`);
    const paired = await pairedBpf(tools, { rounds: ROUNDS, execs: EXECS, workers: WORKERS, execsnoop });
    cleanup();
    const row = pairedRow(paired);
    printTable([row]);
    writeResult('paired.json', { date: new Date().toISOString(), host: hostInfo(tools), execs: EXECS, ...paired });
    if (row[4] === false) process.exitCode = 1;
    return;
  }
  if (args.scrapes) {
    const tree = args['agent-tree'] ?? undefined;
    log(`scrape storm: ${SCRAPE_STORM.clients} scrapers, ${SCRAPE_STORM.execs}-exec burst, ${SCRAPE_STORM.ring} ring, agent of ${tree ?? 'this tree'}`);
    const result = await scrapeStorm(tools, { ...SCRAPE_STORM, rounds: ROUNDS, tree });
    writeResult('scrapes.json', { date: new Date().toISOString(), host: hostInfo(tools), tree: tree ?? '.', ...result });
    return;
  }
  const exportRounds = { rounds: ROUNDS, execs: EXECS, workers: WORKERS, warmupExecs: WARMUP_EXECS };
  if (args['export-only']) {
    const tree = args['agent-tree'] ?? undefined;
    log(`export: ${ROUNDS} rounds of ${EXECS} execs, OTLP export off and on, agent of ${tree ?? 'this tree'}`);
    const exp = await exportCost(tools, { ...exportRounds, tree });
    cleanup();
    printTable([exportRow(exp)]);
    writeResult('export.json', { date: new Date().toISOString(), host: hostInfo(tools), tree: tree ?? '.', config: exportRounds, export: exp });
    if (exportRow(exp)[4] === false) process.exitCode = 1;
    return;
  }
  const execsnoop = args['no-execsnoop'] ? null : findExecsnoop();
  const baselineTree = args['baseline-tree'];
  log(`${cpus().length} CPUs, ${ROUNDS} rounds of ${EXECS} execs from ${WORKERS} workers${execsnoop ? `, execsnoop ${execsnoop}` : ''}` +
    `${baselineTree ? `, baseline agent of ${baselineTree}` : ''}`);
  const storm = await throughput(tools, { rounds: ROUNDS, execs: EXECS, workers: WORKERS, warmupExecs: WARMUP_EXECS, execsnoop, baselineTree });
  const paired = execsnoop ? (log('paired: the agent and execsnoop attached at once'), await pairedBpf(tools, { rounds: ROUNDS, execs: EXECS, workers: WORKERS, execsnoop })) : null;
  log('memory: full 10,000-event ring of 2 KiB-argv execs, one SSE subscriber');
  const mem = await memory(tools, { ringEvents: RING_EVENTS, workers: WORKERS });
  log(`latency: ${LATENCY_EXECS} execs at ${LATENCY_RATE}/s, SSE subscriber`);
  const lat = await latency(tools, { rate: LATENCY_RATE, execs: LATENCY_EXECS });
  log(`scrape storm: ${SCRAPE_STORM.clients} scrapers, ${SCRAPE_STORM.execs}-exec burst, ${SCRAPE_STORM.ring} ring`);
  const scrapes = await scrapeStorm(tools, { ...SCRAPE_STORM, rounds: 3 });
  const pipe = args['no-pipeline'] ? null : (log('pipeline: user space only, one core'), pipeline());
  log('redaction: hostile 100 KB arguments');
  const redact = redaction();
  const exp = args['no-export'] ? null : (log('export: OTLP export off and on'), await exportCost(tools, exportRounds));
  const page = args['no-page'] ? null : (log('browse page: 10,000 rows in headless Chromium'), pageCost());
  cleanup();

  const untracedRate = median(storm.untraced);
  const rows = table({ untracedRate, agent: storm.agent, baseline: storm.baseline, snoop: storm.execsnoop, paired, memory: mem, latency: lat, pipeline: pipe, scrapes, redact, exp, page });
  printTable(rows);
  writeResult('latest.json', {
    date: new Date().toISOString(),
    host: hostInfo(tools),
    config: { rounds: ROUNDS, execsPerRound: EXECS, workers: WORKERS, latencyRate: LATENCY_RATE, latencyExecs: LATENCY_EXECS },
    untraced: { rates: storm.untraced.map((r) => Math.round(r)), median: untracedRate },
    agent: storm.agent,
    baseline: storm.baseline && { tree: baselineTree, ...storm.baseline },
    execsnoop: storm.execsnoop,
    paired,
    memory: mem,
    latency: lat,
    scrapes,
    pipeline: pipe,
    redaction: redact,
    export: exp,
    page,
    pass: Object.fromEntries(rows.filter((r) => r[4] !== null).map((r) => [r[0], r[4]])),
  });
  if (rows.some((r) => r[4] === false)) process.exitCode = 1;
}

main().catch((err) => {
  cleanup();
  die(err.stack ?? String(err));
});
