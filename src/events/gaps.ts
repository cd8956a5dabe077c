/**
 * Gaps in the feed: events the kernel could not put in the full ring buffer. The node's count
 * (ringbuf_full) says how many, the kernel's counts by cgroup whose; read every second, each
 * reading that finds the count grown makes one gap event: so many events lost between the last
 * reading that found none lost and the last loss, and the pods they were of. The kernel adds to
 * the node's count just before the cgroup's: a loss counted between the two reads is the node's in
 * one reading and its cgroup's in the next, so a cgroup's losses wait for the next gap to name them.
 */
import type { CgroupGrowth } from '../capture/cgroup-stats.js';
import type { CgroupPod } from '../enrich/cgroup-pods.js';
import { OTHER } from '../metrics/execs.js';
import type { GapEvent, GapPod } from './schema.js';

/** Pods a gap names; the rest are summed under pod "_other". */
export const GAP_PODS = 10;

/** What a reading needs besides the counts. */
export interface GapContext {
  /** Boot ns now. */
  nowNs: bigint;
  timeOf(bootNs: bigint): string;
  podOf(cgroupId: string): CgroupPod;
  node: string;
}

export class Gaps {
  /** ringbuf_full at the last reading. */
  #lost: number;
  /** Boot ns of the last reading that found nothing new lost. */
  #completeNs: bigint;
  /** Losses by pod not named in a gap yet, and the last of them (boot ns). */
  readonly #pods = new Map<string, GapPod>();
  #lastNs = 0n;

  constructor(lost: number, nowNs: bigint) {
    this.#lost = lost;
    this.#completeNs = nowNs;
  }

  /** A gap when the node's `lost` count (ringbuf_full) grew since the last reading, else null. */
  read(lost: number, growth: readonly CgroupGrowth[], ctx: GapContext): GapEvent | null {
    for (const g of growth) {
      if (g.lost === 0) continue;
      if (g.lastNs > this.#lastNs) this.#lastNs = g.lastNs;
      // Cgroup 0 holds the counts of the cgroups the kernel's tables had no room for.
      const pod = g.cgroupId === '0' ? { namespace: OTHER, pod: OTHER } : ctx.podOf(g.cgroupId);
      const key = `${pod.namespace}\u0000${pod.pod}`;
      const entry = this.#pods.get(key) ?? { namespace: pod.namespace, pod: pod.pod, lost: 0 };
      entry.lost += g.lost;
      this.#pods.set(key, entry);
    }
    const grown = lost - this.#lost;
    this.#lost = lost;
    if (grown <= 0) {
      this.#completeNs = ctx.nowNs;
      return null;
    }
    const from = this.#completeNs;
    this.#completeNs = ctx.nowNs;
    const lastNs = this.#lastNs > from ? this.#lastNs : from;
    this.#lastNs = 0n;
    const pods = [...this.#pods.values()].sort((a, b) => b.lost - a.lost);
    this.#pods.clear();
    if (pods.length > GAP_PODS) {
      const rest = pods.splice(GAP_PODS - 1).reduce((n, p) => n + p.lost, 0);
      pods.push({ namespace: OTHER, pod: OTHER, lost: rest });
    }
    return {
      seq: 0,
      kind: 'gap',
      time: ctx.timeOf(ctx.nowNs),
      node: ctx.node,
      lost: grown,
      from: ctx.timeOf(from),
      to: ctx.timeOf(lastNs > ctx.nowNs ? ctx.nowNs : lastNs),
      pods,
    };
  }
}
