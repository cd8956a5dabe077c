// SPDX-License-Identifier: Apache-2.0
/**
 * What OTLP export costs the agent: rounds of OFF ON OFF ON …, each a fresh agent and the same
 * storm, OFF without export and ON with --otlp-endpoint at a receiver in this process (HTTP,
 * http/protobuf; it answers every request at once and counts them, so the agent's side is what is
 * measured). CPU is the agent's utime + stime from just before the storm until the export queue
 * has had time to drain (the batch delay is 1 s), the same wait for both; per event the agent
 * delivered in that window (execwatch_execs_total before and after): every exec on the host, the
 * storm's and any other process's, is decoded, enriched, kept and (ON) exported, so all of them
 * are what the CPU was spent on. Counting only the storm's events in the ring would charge the
 * other execs of a busy machine to the storm, and undercount once they push the storm's out.
 */
import { createServer } from 'node:http';
import { countDelivered, scrape, startAgent } from '../lib/agent.mjs';
import { log, sleep } from '../lib/common.mjs';
import { procCpuSeconds } from '../lib/proc.mjs';
import { sum } from '../lib/stats.mjs';
import { runStormAsync } from '../lib/storm.mjs';

/** After the storm: more than the processor's 1 s batch delay, so the last batch is sent. */
const DRAIN_MS = 1500;

/** A receiver that accepts every OTLP/HTTP request with an empty ExportLogsServiceResponse. */
async function startReceiver() {
  const counts = { requests: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (d) => (counts.bytes += d.length));
    req.on('end', () => {
      counts.requests += 1;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => new Promise((resolve) => server.close(resolve)) };
}

async function run(tools, { execs, workers, warmupExecs, tree }, extraArgs) {
  const agent = await startAgent({ args: extraArgs, tree });
  await runStormAsync({ ...tools, noop: tools.warm }, 'burst', workers, warmupExecs);
  await sleep(DRAIN_MS);
  const before = await scrape(agent);
  const cpu0 = procCpuSeconds(agent.pid);
  const storm = await runStormAsync(tools, 'burst', workers, execs);
  await sleep(DRAIN_MS);
  const cpu = procCpuSeconds(agent.pid) - cpu0;
  const after = await scrape(agent);
  const ours = await countDelivered(agent, tools.noop);
  await agent.stop();
  return { storm, cpu, delivered: after.execs - before.execs, ours, exported: after.exported - before.exported, lost: after.lost };
}

/** { off, on }: CPU µs per event of each (the agent of `tree`, by default this one), with the events, the exported records and the export losses. */
export async function exportCost(tools, { rounds, execs, workers, warmupExecs, tree }) {
  const receiver = await startReceiver();
  const runs = { off: [], on: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const [name, args] of [['off', []], ['on', ['--otlp-endpoint', receiver.url]]]) {
      const r = await run(tools, { execs, workers, warmupExecs, tree }, args);
      runs[name].push(r);
      log(`round ${round} export ${name}: ${r.delivered} delivered (${r.ours}/${r.storm.execs} of the storm in the ring), cpu ${(r.cpu * 1000).toFixed(0)} ms ` +
        `(${((r.cpu / r.delivered) * 1e6).toFixed(1)} µs/event)${name === 'on' ? `, ${r.exported} exported` : ''}`);
    }
  }
  await receiver.close();
  // exported: records sent during the measured windows, the same execs as `events`.
  const summary = (list) => ({
    events: sum(list.map((r) => r.delivered)),
    cpuUsPerEvent: (sum(list.map((r) => r.cpu)) / sum(list.map((r) => r.delivered))) * 1e6,
    exported: sum(list.map((r) => r.exported)),
    exportLost: sum(list.map((r) => (r.lost.export_overflow ?? 0) + (r.lost.export_error ?? 0))),
  });
  return { off: summary(runs.off), on: summary(runs.on), requests: receiver.counts.requests, bytes: receiver.counts.bytes };
}
