// SPDX-License-Identifier: Apache-2.0
/**
 * Memory: the agent with a full ring of execs with 2 KiB of argv each (a long compiler or java
 * command line) and one live SSE subscriber; peak RSS after a query of all of them. 2 KiB rather
 * than the 4 KiB budget: 10,000 events of 4 KiB exceed the store's 64 MiB byte bound, which then
 * keeps fewer events instead of growing.
 */
import { countDelivered, scrape, startAgent, subscribe } from '../lib/agent.mjs';
import { sleep } from '../lib/common.mjs';
import { procStatus } from '../lib/proc.mjs';
import { runStormAsync } from '../lib/storm.mjs';

/** { execs, streamed, held, lost, rss }: held is what the ring keeps of `ringEvents` + 2,000 execs. */
export async function memory(tools, { ringEvents, workers }) {
  const agent = await startAgent();
  let streamed = 0;
  const stream = await subscribe(agent, `filename=${encodeURIComponent(tools.noop)}`, () => (streamed += 1));
  // 50 arguments of 40 bytes.
  const argv = Array.from({ length: 50 }, (_, i) => `--option-${String(i).padStart(3, '0')}=${'x'.repeat(25)}`);
  const storm = await runStormAsync(tools, 'burst', workers, ringEvents + 2000, argv);
  for (let i = 0; i < 40 && streamed < storm.execs; i++) await sleep(250);
  // The ring is full whoever's execs fill it (other processes on the host may have some).
  const held = await countDelivered(agent, null);
  const metrics = await scrape(agent);
  const rss = procStatus(agent.pid, 'VmHWM');
  stream.close();
  await agent.stop();
  return { execs: storm.execs, streamed, held, lost: metrics.lost, rss };
}
