// SPDX-License-Identifier: Apache-2.0
/**
 * Throughput, CPU and BPF time: B A B E B A B E … where B is the storm alone, A the same storm
 * with a fresh agent running and E with libbpf-tools' execsnoop writing to a file (when
 * installed); with a baseline tree, B A B R B E …, where R is the agent of that other built
 * checkout, run exactly as A (a before/after comparison in one run). Each traced run's ratio is
 * taken against the mean of the two untraced runs around it, so drift in the machine's speed
 * cancels out.
 * Per traced run: events delivered (the agent's /api/events filtered on the storm's binary;
 * execsnoop's output lines), losses by stage (execwatch_events_lost_total), CPU seconds (utime +
 * stime, from just before the storm to 250 ms after it, before any API request), peak RSS
 * (VmHWM), and the kernel time of the tracer's BPF programs (run_time_ns of its program fds).
 */
import { countDelivered, scrape, startAgent } from '../lib/agent.mjs';
import { log, sleep } from '../lib/common.mjs';
import { startExecsnoop } from '../lib/execsnoop.mjs';
import { bpfDelta, bpfProgStats, enableBpfStats, procCpuSeconds, procStatus } from '../lib/proc.mjs';
import { median, sum } from '../lib/stats.mjs';
import { runStorm, runStormAsync } from '../lib/storm.mjs';

async function withAgent(tools, { execs, workers, warmupExecs, tree }) {
  const agent = await startAgent({ tree });
  // A long-running agent has its hot path compiled: warm it up (with a binary the counts below
  // do not match), and let start-up work settle, before measuring.
  await runStormAsync({ ...tools, noop: tools.warm }, 'burst', workers, warmupExecs);
  await sleep(1000);
  const progs0 = bpfProgStats(agent.pid);
  const cpu0 = procCpuSeconds(agent.pid);
  const storm = await runStormAsync(tools, 'burst', workers, execs);
  // Everything is normally visible within milliseconds; the CPU is read before any request
  // reaches the agent, so the figure is the capture path alone.
  await sleep(250);
  const cpu = procCpuSeconds(agent.pid) - cpu0;
  const bpf = bpfDelta(progs0, bpfProgStats(agent.pid));
  let delivered = await countDelivered(agent, tools.noop);
  for (let i = 0; i < 20 && delivered < storm.execs; i++) {
    await sleep(250);
    delivered = await countDelivered(agent, tools.noop);
  }
  const metrics = await scrape(agent);
  const rss = procStatus(agent.pid, 'VmHWM');
  await agent.stop();
  return { storm, cpu, bpf, delivered, seen: metrics.execs, lost: metrics.lost, rss };
}

async function withExecsnoop(tools, execsnoop, { execs, workers }) {
  const snoop = await startExecsnoop(tools, execsnoop, 'execsnoop.out');
  const progs0 = bpfProgStats(snoop.pid);
  const cpu0 = procCpuSeconds(snoop.pid);
  const storm = await runStormAsync(tools, 'burst', workers, execs);
  await sleep(250);
  const cpu = procCpuSeconds(snoop.pid) - cpu0;
  const bpf = bpfDelta(progs0, bpfProgStats(snoop.pid));
  const rss = procStatus(snoop.pid, 'VmHWM');
  const { lines, stderr } = await snoop.stop();
  // PCOMM is the first column; the storm's own exec has the noop path among its arguments.
  const delivered = lines.filter((l) => l.startsWith('noop ') && l.includes(tools.noop)).length;
  // execsnoop reports perf-buffer losses on stderr ("lost N events on CPU #M").
  const lost = sum([...stderr.matchAll(/[Ll]ost (\d+) events/g)].map((m) => Number(m[1])));
  return { storm, cpu, bpf, delivered, seen: delivered, lost: { perf_buffer: lost }, rss };
}

/** One tool's traced runs summed up; ratios are each run's throughput against untraced. */
function summarize(runs, ratios) {
  const events = sum(runs.map((r) => r.delivered));
  const execs = sum(runs.map((r) => r.storm.execs));
  const bpfNs = sum(runs.map((r) => r.bpf.ns));
  const perSyscallNs = sum(runs.map((r) => r.bpf.perSyscallNs));
  const lost = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.lost)) lost[k] = (lost[k] ?? 0) + v;
  return {
    ratios,
    medianRatio: median(ratios),
    execs,
    delivered: events,
    seen: sum(runs.map((r) => r.seen)),
    lost,
    lostTotal: sum(Object.values(lost)),
    cpuSeconds: sum(runs.map((r) => r.cpu)),
    cpuUsPerEvent: (sum(runs.map((r) => r.cpu)) / events) * 1e6,
    cpuSecondsPer1000: (sum(runs.map((r) => r.cpu)) / events) * 1000,
    bpfUsPerExec: bpfNs / execs / 1000,
    /** Of it, the programs that run for every syscall (PER_SYSCALL_PROGRAMS); the rest is the exec path's. */
    bpfPerSyscallUsPerExec: perSyscallNs / execs / 1000,
    peakRssMB: Math.max(...runs.map((r) => r.rss)) / 2 ** 20,
    rates: runs.map((r) => Math.round(r.storm.rate)),
  };
}

/**
 * The rounds: { untraced: rates of every untraced run, agent, baseline (null without
 * `baselineTree`), execsnoop (null without it) }, the last three as summarize() gives them.
 * Leaves kernel.bpf_stats_enabled set until cleanup.
 */
export async function throughput(tools, { rounds, execs, workers, warmupExecs, execsnoop, baselineTree }) {
  enableBpfStats();
  const storm = { execs, workers, warmupExecs };
  const base = [];
  const tracers = [
    { name: 'agent', run: () => withAgent(tools, storm) },
    ...(baselineTree ? [{ name: 'baseline', run: () => withAgent(tools, { ...storm, tree: baselineTree }) }] : []),
    ...(execsnoop ? [{ name: 'execsnoop', run: () => withExecsnoop(tools, execsnoop, storm) }] : []),
  ].map((t) => ({ ...t, runs: [], ratios: [] }));
  let before = runStorm(tools, 'burst', workers, execs);
  base.push(before);
  for (let round = 1; round <= rounds; round++) {
    for (const { name, run, runs, ratios } of tracers) {
      const traced = await run();
      const after = runStorm(tools, 'burst', workers, execs);
      base.push(after);
      const ratio = traced.storm.rate / ((before.rate + after.rate) / 2);
      runs.push(traced);
      ratios.push(ratio);
      log(
        `round ${round} ${name}: ${Math.round(traced.storm.rate)}/s vs ${Math.round(before.rate)}|${Math.round(after.rate)}/s untraced ` +
          `= ${ratio.toFixed(3)}; ${traced.delivered}/${traced.storm.execs} delivered, cpu ${(traced.cpu * 1000).toFixed(0)} ms, ` +
          `bpf ${(traced.bpf.ns / traced.storm.execs / 1000).toFixed(2)} µs/exec (${(traced.bpf.perSyscallNs / traced.storm.execs / 1000).toFixed(2)} of it per syscall)`,
      );
      before = after;
    }
  }
  const summary = (name) => {
    const t = tracers.find((x) => x.name === name);
    return t ? summarize(t.runs, t.ratios) : null;
  };
  return { untraced: base.map((b) => b.rate), agent: summary('agent'), baseline: summary('baseline'), execsnoop: summary('execsnoop') };
}
