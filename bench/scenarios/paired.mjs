// SPDX-License-Identifier: Apache-2.0
/**
 * The exec path's BPF time, the agent's next to execsnoop's, with both attached at once: every
 * exec of a storm runs both tools' programs, so the machine's drift, which moves one tool's time
 * per exec by up to 2× between rounds a minute apart on a shared VM, is the same for both. The
 * tool attached first runs first at each tracepoint, and may meet data that both read cold: the
 * order alternates, the agent first in odd rounds.
 * Per round, each tool's run_time_ns over the storm ÷ the storm's execs (the agent's programs that
 * run for every syscall apart, as in the throughput scenario); pooled, the sums of all rounds.
 */
import { startAgent } from '../lib/agent.mjs';
import { log, sleep } from '../lib/common.mjs';
import { startExecsnoop } from '../lib/execsnoop.mjs';
import { bpfDelta, bpfProgStats, enableBpfStats } from '../lib/proc.mjs';
import { sum } from '../lib/stats.mjs';
import { runStormAsync } from '../lib/storm.mjs';

/** Execs through both tools before the measured storm, so that neither meets it just attached. */
const WARMUP_EXECS = 500;

async function round(tools, execsnoop, agentFirst, { execs, workers }) {
  const startSnoop = () => startExecsnoop(tools, execsnoop, 'execsnoop-paired.out');
  let agent;
  let snoop;
  if (agentFirst) {
    agent = await startAgent();
    snoop = await startSnoop();
  } else {
    snoop = await startSnoop();
    agent = await startAgent();
  }
  await runStormAsync({ ...tools, noop: tools.warm }, 'burst', workers, WARMUP_EXECS);
  await sleep(500);
  const agent0 = bpfProgStats(agent.pid);
  const snoop0 = bpfProgStats(snoop.pid);
  const storm = await runStormAsync(tools, 'burst', workers, execs);
  await sleep(250);
  const own = bpfDelta(agent0, bpfProgStats(agent.pid));
  const theirs = bpfDelta(snoop0, bpfProgStats(snoop.pid));
  await agent.stop();
  await snoop.stop();
  return { agentFirst, execs: storm.execs, agentNs: own.ns - own.perSyscallNs, execsnoopNs: theirs.ns };
}

/**
 * { rounds: [{ agentFirst, execs, agentNs, execsnoopNs }], agentUsPerExec, execsnoopUsPerExec,
 * ratio (pooled), ratios (per round) }. Leaves kernel.bpf_stats_enabled set until cleanup.
 */
export async function pairedBpf(tools, { rounds, execs, workers, execsnoop }) {
  enableBpfStats();
  const runs = [];
  for (let i = 1; i <= rounds; i++) {
    const r = await round(tools, execsnoop, i % 2 === 1, { execs, workers });
    runs.push(r);
    log(
      `paired round ${i} (${r.agentFirst ? 'agent' : 'execsnoop'} attached first): exec path ${(r.agentNs / r.execs / 1000).toFixed(2)} µs/exec, ` +
        `execsnoop ${(r.execsnoopNs / r.execs / 1000).toFixed(2)} µs/exec = ${(r.agentNs / r.execsnoopNs).toFixed(3)}`,
    );
  }
  const execsAll = sum(runs.map((r) => r.execs));
  const agentNs = sum(runs.map((r) => r.agentNs));
  const execsnoopNs = sum(runs.map((r) => r.execsnoopNs));
  return {
    rounds: runs,
    agentUsPerExec: agentNs / execsAll / 1000,
    execsnoopUsPerExec: execsnoopNs / execsAll / 1000,
    ratio: agentNs / execsnoopNs,
    ratios: runs.map((r) => r.agentNs / r.execsnoopNs),
  };
}
