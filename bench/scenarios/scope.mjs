// SPDX-License-Identifier: Apache-2.0
/**
 * What scope saves in the kernel (issue 19): BPF time per exec of the agent with the storm in
 * scope, of the agent with it out of scope (--exclude-host: the storm runs on the host), and of
 * execsnoop, in one run, program by program (named by bpftool when it is installed), so that the
 * programs that run on every syscall (the raw syscall tracepoints of the ia32 fallback, on kernels
 * that give BPF no trampolines) show apart from the exec path. Every figure is a program's run
 * time over the storm divided by the storm's execs; the programs count the host's other execs
 * meanwhile too.
 */
import { startAgent } from '../lib/agent.mjs';
import { sleep } from '../lib/common.mjs';
import { startExecsnoop } from '../lib/execsnoop.mjs';
import { bpfProgStats, enableBpfStats, progName } from '../lib/proc.mjs';
import { runStormAsync } from '../lib/storm.mjs';

/** ns per exec of each of a process's programs over one storm, and their sum. */
async function measure(tools, pid, { execs, workers, argv }) {
  const before = bpfProgStats(pid);
  const storm = await runStormAsync(tools, 'burst', workers, execs, argv);
  await sleep(250);
  const after = bpfProgStats(pid);
  const programs = {};
  let total = 0;
  for (const [id, a] of after) {
    const ns = (a.runTimeNs - (before.get(id)?.runTimeNs ?? 0)) / storm.execs;
    programs[progName(id)] = Math.round(ns);
    total += ns;
  }
  return { execs: storm.execs, rate: Math.round(storm.rate), nsPerExec: Math.round(total), programs };
}

async function withAgent(tools, args, opts) {
  const agent = await startAgent({ args });
  await runStormAsync({ ...tools, noop: tools.warm }, 'burst', opts.workers, 500, opts.argv);
  await sleep(500);
  const result = await measure(tools, agent.pid, opts);
  await agent.stop();
  return result;
}

async function withExecsnoop(tools, execsnoop, opts) {
  const snoop = await startExecsnoop(tools, execsnoop, 'execsnoop-scope.out');
  const result = await measure(tools, snoop.pid, opts);
  await snoop.stop();
  return result;
}

/** { included, excluded, execsnoop (null without it) }: each { execs, rate, nsPerExec, programs }. */
export async function scopeCost(tools, { execs, workers, argvBytes, execsnoop }) {
  enableBpfStats();
  const opts = { execs, workers, argv: ['x'.repeat(argvBytes)] };
  // No rate limit: a storm on a CI machine's root cgroup is exempt anyway, but not on every host.
  const included = await withAgent(tools, ['--cgroup-rate', '0'], opts);
  const excluded = await withAgent(tools, ['--cgroup-rate', '0', '--exclude-host'], opts);
  const snoop = execsnoop ? await withExecsnoop(tools, execsnoop, opts) : null;
  return { included, excluded, execsnoop: snoop };
}
