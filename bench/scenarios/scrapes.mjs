// SPDX-License-Identifier: Apache-2.0
/**
 * Scrape storm: 64 clients scraping /metrics back to back (each sends its next request as soon as
 * the last one is answered, whatever the answer) while a 2,000-exec burst runs, on a small ring
 * (64 KiB, about 110 short records) so that any time the agent's thread spends away from the
 * ring buffer shows as ringbuf_full. Per round: the burst's execs, events of its binary
 * delivered, the agent's losses by stage during the round, and the scrapes answered 200 and 503.
 */
import { Agent, request } from 'node:http';
import { countDelivered, scrape, startAgent } from '../lib/agent.mjs';
import { log, sleep } from '../lib/common.mjs';
import { runStormAsync } from '../lib/storm.mjs';

/** Runs `clients` scrape loops until stop(); resolves to the count of answers by status. */
function scrapers(metricsUrl, clients) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const statuses = {};
  let stopped = false;
  const once = () =>
    new Promise((resolve) => {
      const req = request(`${metricsUrl}/metrics`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          resolve();
        });
      });
      req.on('error', () => {
        statuses.error = (statuses.error ?? 0) + 1;
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) await once();
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return statuses;
    },
  };
}

const delta = (after, before) => Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));

/** { rounds: [{ execs, delivered, lost, statuses }] } of `rounds` fresh agents from `tree`. */
export async function scrapeStorm(tools, { rounds, execs, clients, ring, workers, tree }) {
  const results = [];
  for (let round = 1; round <= rounds; round++) {
    const agent = await startAgent({ args: ['--ringbuf-bytes', ring], tree });
    await runStormAsync({ ...tools, noop: tools.warm }, 'burst', workers, 500);
    await sleep(500);
    const before = await scrape(agent);
    const storm = scrapers(agent.metricsUrl, clients);
    await sleep(1000);
    const burst = await runStormAsync(tools, 'burst', workers, execs);
    await sleep(500);
    const statuses = await storm.stop();
    const lost = delta((await scrape(agent)).lost, before.lost);
    const delivered = await countDelivered(agent, tools.noop);
    await agent.stop();
    results.push({ execs: burst.execs, delivered, lost, statuses });
    log(`scrapes round ${round}: ${delivered}/${burst.execs} delivered, ringbuf_full ${lost.ringbuf_full}, scrapes ${JSON.stringify(statuses)}`);
  }
  return { clients, ring, execsPerRound: execs, rounds: results };
}
