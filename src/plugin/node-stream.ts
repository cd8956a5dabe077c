/**
 * One node's live stream (GET /api/events/stream through a port-forward), resumed after every
 * drop with `Last-Event-ID` (the agent replays what its ring still holds after it) until stopped.
 * `follow` prints what its streams deliver; `ui` passes it on to its page.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from './cluster.js';
import { failureOf, formatMs } from './collect.js';
import { authHeaders, errorOf, type AgentClient } from './forward.js';
import { mergedOf, type MergedEvent } from './merge.js';
import { SseParser } from './sse.js';

/** Reconnection delay until the agent says (its `retry:`). */
export const RETRY_MS = 3000;

/**
 * The agent writes a heartbeat comment every 15 s (HEARTBEAT_MS): a connection that brings nothing
 * for three of them is taken for dead (half-open: an API server or kubelet gone without closing
 * it), dropped and resumed.
 */
export const IDLE_MS = 45_000;

/** What a node's stream asks for and where it delivers. */
export interface StreamOptions {
  /** The stream's query (filters, and `after` for where the first connection starts). */
  query: Record<string, string>;
  token: string | null;
  timeoutMs: number;
  /** How long an open stream may bring nothing before it is dropped and resumed (default IDLE_MS). */
  idleMs?: number;
  onEvent: (event: MergedEvent) => void;
  notice: (line: string) => void;
}

/** One node's live stream, resumed after every drop until stopped. */
export class NodeStream {
  readonly #stop = new AbortController();
  #lastId: string | undefined;
  readonly done: Promise<void>;

  constructor(
    readonly agent: Agent,
    client: AgentClient,
    opts: StreamOptions,
  ) {
    this.done = this.#run(client, opts);
  }

  stop(): void {
    this.#stop.abort();
  }

  async #run(client: AgentClient, opts: StreamOptions): Promise<void> {
    const { agent } = this;
    let retryMs = RETRY_MS;
    const idleMs = opts.idleMs ?? IDLE_MS;
    const path = `/api/events/stream?${new URLSearchParams(opts.query)}`;
    let dropped = false;
    while (!this.#stop.signal.aborted) {
      const connecting = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(opts.timeoutMs)]);
      let problem: string;
      let silent = false;
      try {
        const headers = { ...authHeaders(opts.token), accept: 'text/event-stream', ...(this.#lastId === undefined ? {} : { 'last-event-id': this.#lastId }) };
        // Only connecting is bounded by --timeout: a quiet stream is no failure.
        const res = await client.get(agent, path, headers, this.#stop.signal, connecting);
        if (res.statusCode !== 200) {
          problem = `the agent answered ${await errorOf(res)}`;
        } else {
          if (dropped) opts.notice(`node ${agent.node}: stream resumed${this.#lastId === undefined ? '' : ` after event ${this.#lastId}`}`);
          res.setEncoding('utf8');
          // One parser per connection: a frame cut off by a drop is not glued to the next
          // connection's first bytes (its event is replayed, after the last id received whole).
          const parser = new SseParser();
          let timer: NodeJS.Timeout | undefined;
          const expect = () => {
            clearTimeout(timer);
            timer = setTimeout(() => {
              silent = true;
              res.destroy();
            }, idleMs);
          };
          expect();
          try {
            for await (const chunk of res) {
              expect();
              for (const frame of parser.push(chunk as string)) {
                // Received whole: a frame that cannot be read would only be replayed again.
                if (frame.id !== undefined) this.#lastId = frame.id;
                opts.onEvent(mergedOf(frame.data, agent.node));
              }
            }
          } finally {
            clearTimeout(timer);
            if (parser.retryMs !== undefined) retryMs = parser.retryMs;
          }
          problem = 'the stream ended';
        }
      } catch (err) {
        problem = silent
          ? `nothing, not even a heartbeat, for ${formatMs(idleMs)}`
          : failureOf(err, connecting.aborted && !this.#stop.signal.aborted, opts.timeoutMs);
      }
      if (this.#stop.signal.aborted) return;
      dropped = true;
      opts.notice(`node ${agent.node} (pod ${agent.pod}): ${problem}; reconnecting in ${formatMs(retryMs)}`);
      // Ends early when stopped; leaves no listener on the stop signal behind.
      await sleep(retryMs, undefined, { signal: this.#stop.signal }).catch(() => {});
    }
  }
}
