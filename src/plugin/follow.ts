/**
 * `kubectl execwatch follow`: the live streams of every node's agent, merged as they arrive. Each
 * stream that drops is resumed with `Last-Event-ID` (the agent replays what its ring still holds
 * after it); agent pods are watched, so the agent of a node that joins later is followed too, and
 * a deleted one let go. Runs until Ctrl-C.
 */
import { CoreV1Api, makeInformer, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { agentOf, apiErrorText, discoverAgents, isAgent, loadKubeConfig, tokensFor, type Agent } from './cluster.js';
import { formatMs } from './collect.js';
import { CLUSTER_HELP, FILTER_HELP, outputOf } from './events.js';
import { AgentClient } from './forward.js';
import type { Command, CommandIo } from './main.js';
import type { MergedEvent } from './merge.js';
import { NodeStream } from './node-stream.js';
import { failureLines, rowOf, tableHeader } from './output.js';
import { CLUSTER_FLAGS, clusterOptions, FILTER_OPTIONS, parseFlags, queryOf, UsageError, type Output } from './options.js';

/** Delay before the watch of the agent pods is tried again after an error. */
const RETRY_MS = 3000;

/** Widths of a streamed table's columns (rows cannot be measured before they arrive). */
const WIDTHS = { table: [24, 14, 44, 8, 16, 60], wide: [24, 14, 44, 8, 8, 6, 16, 32, 60] } as const;

const FLAGS = { ...CLUSTER_FLAGS, ...FILTER_OPTIONS, output: { type: 'string', short: 'o' } } as const;

/** A row of a streamed table, padded to WIDTHS (a longer cell pushes the rest right, as `kubectl get -w`). */
export function streamRow(cells: readonly string[], output: 'table' | 'wide'): string {
  const widths = WIDTHS[output];
  return cells.map((cell, i) => (i < widths.length ? cell.padEnd((widths[i] as number) + 1) : cell)).join('').trimEnd();
}

/** Prints events of any node as they come, in `output`. */
function printer(io: CommandIo, output: Output): (event: MergedEvent) => void {
  if (output === 'json' || output === 'jsonl') return (m) => io.out(`${m.json}\n`);
  const wide = output === 'wide';
  io.out(`${streamRow(tableHeader(wide), output)}\n`);
  return (m) => io.out(`${streamRow(rowOf(m, wide), output)}\n`);
}

/** Follows every agent until `io.signal`; the agents of nodes that join later too. */
async function follow(kc: KubeConfig, args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const output = outputOf(values.output);
  const cluster = clusterOptions(values);
  const query = queryOf(values, 'stream');
  const { agents, failures, joins } = await discoverAgents(kc, cluster);
  const tokens = await tokensFor(kc, agents, cluster.tokenFile);
  for (const line of failureLines(failures)) io.err(line);
  const client = new AgentClient(kc);
  const onEvent = printer(io, output);
  const streams = new Map<string, NodeStream>();
  const start = (agent: Agent, token: string | null) => {
    streams.set(agent.pod, new NodeStream(agent, client, { query, token, timeoutMs: cluster.timeoutMs, onEvent, notice: io.err }));
  };
  for (const agent of agents) start(agent, tokens.get(agent) as string | null);

  // Agent pods that appear (a new node) or go: watched, not polled.
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace, agentSelector } = cluster;
  const informer = makeInformer<V1Pod>(kc, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace, labelSelector: agentSelector }), agentSelector);
  // Agent pods being joined (their node's labels or their token being read): the events of one pod
  // that come meanwhile (it turning Running, then Ready) start no second stream.
  const joining = new Set<string>();
  const seen = async (pod: V1Pod) => {
    const found = agentOf(pod, namespace);
    if (found === null || !isAgent(found) || streams.has(found.pod) || joining.has(found.pod) || io.signal.aborted) return;
    joining.add(found.pod);
    try {
      // A node that joined the cluster since: --node-selector is tried on its labels.
      if (!(await joins(found.node))) return;
      const token = (await tokensFor(kc, [found], cluster.tokenFile)).get(found) as string | null;
      // Deleted meanwhile: gone() has let go of it already.
      if (!joining.has(found.pod)) return;
      io.err(`node ${found.node}: agent pod ${found.pod} joined`);
      start(found, token);
    } catch (err) {
      io.err(`node ${found.node}: agent pod ${found.pod} cannot be followed: ${(err as Error).message}`);
    } finally {
      joining.delete(found.pod);
    }
  };
  const gone = (pod: V1Pod) => {
    const name = pod.metadata?.name as string;
    joining.delete(name);
    streams.get(name)?.stop();
    streams.delete(name);
  };
  informer.on('add', (pod) => void seen(pod));
  informer.on('update', (pod) => void seen(pod));
  informer.on('delete', gone);
  let restart: NodeJS.Timeout | undefined;
  informer.on('error', (err) => {
    // Stopping the informer aborts its watch, which it reports as an error too.
    if (io.signal.aborted) return;
    io.err(`watching the agent pods failed (${apiErrorText(err)}): new nodes are not joined until it is back; retrying in ${formatMs(RETRY_MS)}`);
    restart = setTimeout(() => void informer.start(), RETRY_MS);
  });
  // A failed list or watch is reported through 'error', not thrown.
  await informer.start();

  await new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve())));
  await informer.stop();
  clearTimeout(restart);
  for (const stream of streams.values()) stream.stop();
  await Promise.all([...streams.values()].map((s) => s.done));
  return 0;
}

export const followCommand: Command = {
  summary: 'the live execs of every node as they happen, until Ctrl-C',
  help: `Usage: kubectl execwatch follow [flags]

Every node's new execs matching the filters, as they happen, until Ctrl-C. A node's stream that
drops is resumed where it stopped (Last-Event-ID: what its agent's ring still holds is replayed);
the agents of nodes that join later are followed too. Problems go to stderr, one line each.

  -o, --output FORMAT        table (default), wide, json or jsonl (json: one event a line, as jsonl)
${FILTER_HELP}${CLUSTER_HELP}--timeout bounds each connection attempt; a quiet stream is not a failure, one that brings not even
the agent's heartbeat for 45s is resumed.
`,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    return follow(loadKubeConfig(clusterOptions(values)), args, io);
  },
};
