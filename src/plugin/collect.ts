/**
 * `events`' fan-out: the newest `limit` matching events of the cluster, with every agent asked at
 * most `--max-parallel` at a time, each within `--timeout`, answers read as they arrive into one
 * newest-`limit` set (merge.ts). A node that does not answer in time, refuses, or breaks off is a
 * failure with its reason; the others' events still count.
 *
 * Two rounds keep what crosses the API server small on a large cluster. The first asks each node
 * for a fair share (about 2 × limit / nodes of its newest). Once the set is full, its oldest time
 * is a threshold no missing event can be older than; only nodes whose whole share was kept (they
 * may hold more that belong) are asked again, for at most `limit` events at or after that time
 * (`since`). No node is ever asked for more than `limit`.
 */
import { eventTimeOf } from '../events/filter.js';
import type { Agent, NodeFailure } from './cluster.js';
import { authHeaders, errorOf, type AgentClient } from './forward.js';
import { EventArraySplitter, mergedOf, NewestEvents, newerFirst, type MergedEvent } from './merge.js';

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
  /** The nodes that could not be asked, or failed when asked again (those answered before). */
  failures: NodeFailure[];
  /** Nodes that answered the first round. */
  answered: number;
  /**
   * Where each answering node's stream goes on: the `lastSeq` its agent answered, or, from an
   * agent that does not send it or an answer cut short, its newest matching seq read.
   */
  resumeSeqs: Map<string, number>;
}

/**
 * How much older an event can be than one its agent delivered before it: an agent answers newest
 * first by delivery (seq), and holds an event whose pod it does not know yet for at most
 * --enrich-wait (60 s at most) before delivering it.
 */
const HOLD_MS = 60_000;

/** Whether a newest-first answer that has reached `event` can give nothing newer than `oldest`. */
function pastHolding(event: MergedEvent, oldest: MergedEvent | undefined): boolean {
  return oldest !== undefined && Date.parse(event.time) + HOLD_MS < Date.parse(oldest.time);
}

/** Events per node of the first round: a fair share with room for uneven nodes. */
export function firstShare(limit: number, nodes: number): number {
  return Math.min(limit, Math.max(10, Math.ceil((2 * limit) / Math.max(nodes, 1))));
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

/** Why a request to an agent failed: its --timeout when that is what ended it, else the error's message. */
export function failureOf(err: unknown, timedOut: boolean, timeoutMs: number): string {
  return timedOut ? `no answer within ${formatMs(timeoutMs)} (--timeout)` : (err as Error).message;
}

/** What one node's answer gave. */
interface Answer {
  /** Events read (kept or not), until the answer ended or was cut. */
  read: number;
  /** Whether the answer was cut because its events were too old to keep. */
  cut: boolean;
  /** The last (oldest) event read. */
  last: MergedEvent | undefined;
  /** Seqs of the events read, so that a second round does not count one twice. */
  seqs: Set<number>;
  /** The agent's `lastSeq`, when the whole answer was read and carried it. */
  lastSeq: number | undefined;
}

/** Reads one agent's answer to `query` into `newest`; resolves to the answer or a failure reason. */
async function readAgent(
  client: AgentClient,
  agent: Agent,
  query: Record<string, string>,
  opts: CollectOptions,
  newest: NewestEvents,
  skip: ReadonlySet<number>,
): Promise<Answer | string> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const answer: Answer = { read: 0, cut: false, last: undefined, seqs: new Set(), lastSeq: undefined };
  try {
    const res = await client.get(agent, `/api/events?${new URLSearchParams(query)}`, authHeaders(opts.tokens.get(agent) ?? null), signal);
    if (res.statusCode !== 200) return `the agent answered ${await errorOf(res)}`;
    res.setEncoding('utf8');
    const splitter = new EventArraySplitter();
    for await (const chunk of res) {
      for (const json of splitter.push(chunk as string)) {
        const event = mergedOf(json, agent.node);
        answer.read += 1;
        answer.last = event;
        answer.seqs.add(event.seq);
        if (skip.has(event.seq)) continue;
        // One too old to keep may be followed by newer ones that waited less for their pod; past
        // the longest wait, none can be.
        if (!newest.offer(event) && pastHolding(event, newest.oldest())) {
          answer.cut = true;
          res.destroy();
          return answer;
        }
      }
    }
    answer.lastSeq = splitter.lastSeq;
    return answer;
  } catch (err) {
    return failureOf(err, signal.aborted, opts.timeoutMs);
  }
}

/** The later of two `since` values (either may be absent). */
function laterSince(user: string | undefined, threshold: string): string {
  const from = user === undefined ? null : eventTimeOf(user);
  return from !== null && from > threshold ? from : threshold;
}

/** Asks every agent and merges what they answer. */
export async function collectEvents(client: AgentClient, agents: readonly Agent[], opts: CollectOptions): Promise<Collected> {
  const limit = Number(opts.query.limit);
  const newest = new NewestEvents(limit);
  const failures: NodeFailure[] = [];
  const share = firstShare(limit, agents.length);
  const first = new Map<Agent, Answer>();
  const resumeSeqs = new Map<string, number>();
  const none = new Set<number>();
  await eachLimited(agents, opts.maxParallel, async (agent) => {
    const answer = await readAgent(client, agent, { ...opts.query, limit: String(share) }, opts, newest, none);
    if (typeof answer === 'string') failures.push({ node: agent.node, pod: agent.pod, reason: answer });
    else {
      first.set(agent, answer);
      // The agent's last seq covers its events the filter left out, and a node with none that match.
      if (answer.lastSeq !== undefined) resumeSeqs.set(agent.node, answer.lastSeq);
      // Answers come newest first: the largest seq read is the node's newest.
      else if (answer.seqs.size > 0) resumeSeqs.set(agent.node, Math.max(...answer.seqs));
    }
  });
  if (share < limit) {
    const oldest = newest.size === limit ? newest.oldest() : undefined;
    // A node may hold more that belongs when its whole share was read and its last is still kept.
    const again = [...first].filter(
      ([, answer]) => answer.read === share && !answer.cut && (oldest === undefined || newerFirst(answer.last as MergedEvent, oldest) <= 0),
    );
    const threshold = oldest?.time;
    const query = threshold === undefined ? opts.query : { ...opts.query, since: laterSince(opts.query.since, threshold) };
    await eachLimited(again, opts.maxParallel, async ([agent, answer]) => {
      const result = await readAgent(client, agent, query, opts, newest, answer.seqs);
      if (typeof result === 'string') failures.push({ node: agent.node, pod: agent.pod, reason: result });
    });
  }
  return { events: newest.sorted(), failures, answered: first.size, resumeSeqs };
}
