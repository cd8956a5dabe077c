// SPDX-License-Identifier: Apache-2.0
/**
 * Latency: one exec every 1/rate s whose argv[1] is its spawn time; the time each event arrives
 * on an SSE subscriber minus that spawn time, p50 and p99.
 */
import { scrape, startAgent, subscribe } from '../lib/agent.mjs';
import { sleep } from '../lib/common.mjs';
import { percentile } from '../lib/stats.mjs';
import { runStormAsync } from '../lib/storm.mjs';

export async function latency(tools, { rate, execs }) {
  const agent = await startAgent();
  const latencies = [];
  const stream = await subscribe(agent, `filename=${encodeURIComponent(tools.noop)}`, (event, receivedAt) => {
    const spawnedNs = event.argv[1];
    if (spawnedNs) latencies.push(receivedAt - Number(spawnedNs) / 1e6);
  });
  const storm = await runStormAsync(tools, 'rate', rate, execs);
  for (let i = 0; i < 40 && latencies.length < storm.execs; i++) await sleep(250);
  const metrics = await scrape(agent);
  stream.close();
  await agent.stop();
  return {
    execs: storm.execs,
    achievedRate: storm.rate,
    received: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    lost: metrics.lost,
  };
}
