/**
 * `events`' fan-out: every agent asked for at most `limit` of its newest matching events, at most
 * `--max-parallel` at a time, each within `--timeout`; their answers read as they arrive into one
 * newest-`limit` set (merge.ts). A node that does not answer in time, refuses, or breaks off is a
 * failure with its reason; the others' events still count.
 */
import type { Agent, NodeFailure } from './cluster.js';
import { authHeaders, errorOf, type AgentClient } from './forward.js';
import { EventArraySplitter, mergedOf, NewestEvents, type MergedEvent } from './merge.js';

export interface CollectOptions {
  /** The query of GET /api/events (filters and `limit`), as validated text. */
  query: Record<string, string>;
  tokens: ReadonlyMap<Agent, string | null>;
  timeoutMs: number;
  maxParallel: number;
}

export interface Collected {
  /** The newest `limit` events of the nodes that answered, newest first. */
  events: MergedEvent[];
  failures: NodeFailure[];
}

/** Runs `work` over `items`, at most `parallel` at a time. */
export async function eachLimited<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/** A duration as written in messages. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Reads one agent's answer into `newest`; resolves to a failure reason or null. */
async function readAgent(client: AgentClient, agent: Agent, opts: CollectOptions, newest: NewestEvents): Promise<string | null> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const path = `/api/events?${new URLSearchParams(opts.query)}`;
  try {
    const res = await client.get(agent, path, authHeaders(opts.tokens.get(agent) ?? null), signal);
    if (res.statusCode !== 200) return `the agent answered ${await errorOf(res)}`;
    res.setEncoding('utf8');
    const splitter = new EventArraySplitter();
    for await (const chunk of res) {
      for (const json of splitter.push(chunk as string)) {
        // Newest first: once one is too old to keep, so is the rest of this node's answer.
        if (!newest.offer(mergedOf(json, agent.node))) {
          res.destroy();
          return null;
        }
      }
    }
    return null;
  } catch (err) {
    if (signal.aborted) return `no answer within ${formatMs(opts.timeoutMs)} (--timeout)`;
    return (err as Error).message;
  }
}

/** Asks every agent and merges what they answer. */
export async function collectEvents(client: AgentClient, agents: readonly Agent[], opts: CollectOptions): Promise<Collected> {
  const newest = new NewestEvents(Number(opts.query.limit));
  const failures: NodeFailure[] = [];
  await eachLimited(agents, opts.maxParallel, async (agent) => {
    const reason = await readAgent(client, agent, opts, newest);
    if (reason !== null) failures.push({ node: agent.node, pod: agent.pod, reason });
  });
  return { events: newest.sorted(), failures };
}
