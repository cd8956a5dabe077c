// SPDX-License-Identifier: Apache-2.0
/**
 * The soak: the agent under an exec storm at the machine's maximum rate (one worker per CPU,
 * back-to-back bursts sized to end at the deadline) for that long, its RSS (VmRSS), execs
 * performed and counters sampled every sampleMs. Memory is bounded when the median of the last
 * third's samples is within SOAK_GROWTH of the first third's, and every sample must be within the
 * RSS target; the peak (VmHWM) is only reported. Prints the series and both verdicts, writes
 * bench/results/soak.json, and sets exit status 1 on a miss.
 */
import { cpus } from 'node:os';
import { scrape, startAgent } from '../lib/agent.mjs';
import { hostInfo, log, sleep, writeResult } from '../lib/common.mjs';
import { procCpuSeconds, procStatus } from '../lib/proc.mjs';
import { lostText, median, sum } from '../lib/stats.mjs';
import { runStormAsync } from '../lib/storm.mjs';
import { SOAK_GROWTH, TARGETS } from '../lib/targets.mjs';

export async function soak(tools, { seconds, sampleMs }) {
  const workers = Math.max(2, cpus().length);
  const agent = await startAgent();
  log(`soak: ${seconds} s of exec storm from ${workers} workers, agent pid ${agent.pid}, RSS every ${sampleMs / 1000} s`);
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const cpu0 = procCpuSeconds(agent.pid);
  let execs = 0;
  let rate = 2000;
  const samples = [];
  const sample = async () => {
    const rss = procStatus(agent.pid, 'VmRSS');
    const m = await scrape(agent);
    const s = { t: Math.round(elapsed()), rssMB: Number((rss / 2 ** 20).toFixed(1)), execs, seen: m.execs, lost: sum(Object.values(m.lost)) };
    samples.push(s);
    log(`soak: t=${String(s.t).padStart(4)} s  RSS ${s.rssMB.toFixed(1).padStart(6)} MB  execs ${s.execs}  seen ${s.seen}  lost ${s.lost}`);
    return m;
  };
  await sample();
  let next = sampleMs;
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    if (elapsed() * 1000 >= next) {
      next += sampleMs;
      sampling = sampling.then(sample);
    }
  }, 100);
  while (elapsed() < seconds) {
    // Bursts of about one sample period at the rate seen so far (the execs count moves between
    // samples), the last one sized to the time left: the storm stops near the deadline.
    const count = Math.max(workers * 100, Math.round(rate * Math.min(sampleMs / 1000, seconds - elapsed())));
    const burst = await runStormAsync(tools, 'burst', workers, count);
    execs += burst.execs;
    rate = burst.rate;
  }
  clearInterval(timer);
  await sampling;
  const stormSeconds = elapsed();
  // Let the last events drain, then the closing sample, whose scrape gives the final counts.
  await sleep(1000);
  const { lost } = await sample();
  const cpu = procCpuSeconds(agent.pid) - cpu0;
  const peak = procStatus(agent.pid, 'VmHWM') / 2 ** 20;
  const final = samples[samples.length - 1];
  await agent.stop();

  // Growth compares the thirds' medians: one sample taken just before a major GC must not decide
  // it (every sample is held to the RSS bound below).
  const third = seconds / 3;
  const medianOf = (xs) => median(xs.map((s) => s.rssMB));
  const firstMedian = medianOf(samples.filter((s) => s.t <= third));
  const lastMedian = medianOf(samples.filter((s) => s.t >= seconds - third));
  const maxMB = Math.max(...samples.map((s) => s.rssMB));
  const bounded = TARGETS.soak.ok(firstMedian, lastMedian);
  const underTarget = TARGETS.rss.ok(maxMB);
  const verdict = {
    firstThirdMedianMB: firstMedian,
    lastThirdMedianMB: lastMedian,
    growth: lastMedian / firstMedian - 1,
    maxSampleMB: maxMB,
    peakRssMB: Number(peak.toFixed(1)),
    under150MB: underTarget,
    bounded,
  };
  const rows = [
    ['storm', `${execs} execs in ${stormSeconds.toFixed(0)} s = ${Math.round(execs / stormSeconds)}/s from ${workers} workers`],
    ['events seen / lost', `${final.seen} / ${lostText(lost)}`],
    ['agent CPU', `${cpu.toFixed(1)} s (${((cpu / stormSeconds) * 100).toFixed(0)}% of one core)`],
    ['RSS first third median', `${firstMedian.toFixed(1)} MB`],
    ['RSS last third median', `${lastMedian.toFixed(1)} MB (${(verdict.growth * 100).toFixed(1)}%)`],
    ['RSS highest sample / VmHWM', `${maxMB.toFixed(1)} MB / ${verdict.peakRssMB.toFixed(1)} MB`],
    ['bounded (no growth)', `${bounded ? 'PASS' : 'FAIL'}: ${TARGETS.soak.text}`],
    ['every sample', `${underTarget ? 'PASS' : 'FAIL'}: ${TARGETS.rss.text}`],
  ];
  const series = samples.map((s) => `${String(s.t).padStart(5)} s  ${s.rssMB.toFixed(1).padStart(6)} MB`).join('\n');
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`RSS over time (VmRSS)\n${series}\n\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);

  writeResult('soak.json', {
    date: new Date().toISOString(),
    host: hostInfo(tools),
    config: { seconds, workers, sampleSeconds: sampleMs / 1000, growthAllowed: SOAK_GROWTH },
    storm: { execs, seconds: stormSeconds, rate: execs / stormSeconds },
    agent: { seen: final.seen, lost, cpuSeconds: cpu },
    samples,
    verdict,
  });
  // A regression must be visible to whatever runs the benchmark, not only in the table.
  if (!bounded || !underTarget) process.exitCode = 1;
}
