/**
 * Throttle episodes: a cgroup over --cgroup-rate from its first throttled exec until none of its
 * execs has been throttled for a second (THROTTLE_QUIET_NS, the kernel's rule for a new start).
 *
 * The kernel reports each episode's start (one record at its first throttled exec, with the
 * cgroup's names, enriched like an exec). Its end cannot come from the kernel: a cgroup whose loop
 * stopped makes no further exec to report it. So the agent finds it in the kernel's counts by
 * cgroup, which it reads every second: an open episode whose last throttled exec is more than a
 * second old has ended, and the execs suppressed in it are what its cgroup's count grew by. A
 * start record lost to a full ring is made up from the counts (pid 0, the pod found from the
 * cgroup id) when none has come two seconds after a reading found its cgroup's count grown.
 */
import type { CgroupGrowth } from '../capture/cgroup-stats.js';
import { THROTTLE_QUIET_NS } from '../capture/cgroup-stats.js';
import type { CgroupPod } from '../enrich/cgroup-pods.js';
import type { ThrottleEvent } from './schema.js';

/**
 * How long a throttled count may wait for its start record before one is made up: two of the
 * agent's one-second readings. A time, not a number of readings: scrapes read the counts too, and
 * three scrapes in a row would otherwise make up the start of a record still being decoded.
 */
const START_WAIT_NS = 2_000_000_000n;
/** How long an ended episode's last exec is remembered: a late start record of it is not a new one. */
const ENDED_MEMORY_NS = 60_000_000_000n;

interface Episode {
  start: ThrottleEvent;
  suppressed: number;
  /** Boot ns of the last throttled exec counted. */
  lastNs: bigint;
}

interface Unclaimed {
  suppressed: number;
  lastNs: bigint;
  /** Boot ns of the reading that found it. */
  foundNs: bigint;
}

/** What a reading needs besides the counts. */
export interface ThrottleContext {
  /** Boot ns now. */
  nowNs: bigint;
  /** An event `time` of a boot-ns timestamp. */
  timeOf(bootNs: bigint): string;
  /** The pod of a cgroup with no start record (src/enrich/cgroup-pods.ts). */
  podOf(cgroupId: string): CgroupPod;
  node: string;
}

export class Throttles {
  /** Open episodes by cgroup id. */
  readonly #open = new Map<string, Episode>();
  /** Counts of cgroups with no open episode yet (its start record still on its way). */
  readonly #unclaimed = new Map<string, Unclaimed>();
  /** Cgroup id → the last throttled exec of its last ended episode (boot ns, and its `time`). */
  readonly #ended = new Map<string, { ns: bigint; time: string }>();

  /** Episodes open now. */
  get open(): number {
    return this.#open.size;
  }

  /**
   * A start the kernel reported, enriched: true when it opens an episode (deliver it), false when
   * its cgroup's episode is open already or ended since (two CPUs may both report one start; a
   * start made up while this one waited for its pod stands). Its exec is counted by cgroup before
   * the record is written, so the episode's counts come from the readings.
   */
  started(event: ThrottleEvent): boolean {
    const id = event.cgroupId;
    const ended = this.#ended.get(id);
    // Times are fixed-width RFC 3339 texts: they compare as the times do.
    if (this.#open.has(id) || (ended !== undefined && event.time <= ended.time)) return false;
    const counted = this.#unclaimed.get(id);
    this.#unclaimed.delete(id);
    this.#open.set(id, { start: event, suppressed: counted?.suppressed ?? 0, lastNs: counted?.lastNs ?? 0n });
    return true;
  }

  /**
   * One reading of the counts: adds them to their episodes, and returns the events it makes, in
   * order: starts made up for counts whose record never came, and stops of the episodes that ended
   * (`final`: every open one, at shutdown).
   */
  read(growth: readonly CgroupGrowth[], ctx: ThrottleContext, final = false): ThrottleEvent[] {
    const made: ThrottleEvent[] = [];
    for (const g of growth) {
      if (g.throttled === 0) continue;
      const episode = this.#open.get(g.cgroupId);
      if (episode !== undefined) {
        episode.suppressed += g.throttled;
        if (g.lastNs > episode.lastNs) episode.lastNs = g.lastNs;
        continue;
      }
      const waiting = this.#unclaimed.get(g.cgroupId) ?? { suppressed: 0, lastNs: g.lastNs, foundNs: ctx.nowNs };
      waiting.suppressed += g.throttled;
      if (g.lastNs > waiting.lastNs) waiting.lastNs = g.lastNs;
      this.#unclaimed.set(g.cgroupId, waiting);
    }
    for (const [id, waiting] of this.#unclaimed) {
      if (ctx.nowNs - waiting.foundNs <= START_WAIT_NS && !final) continue;
      this.#unclaimed.delete(id);
      const start = madeUpStart(id, waiting.lastNs, ctx);
      made.push(start);
      this.#open.set(id, { start, suppressed: waiting.suppressed, lastNs: waiting.lastNs });
    }
    for (const [id, episode] of this.#open) {
      if (!final && ctx.nowNs - episode.lastNs <= THROTTLE_QUIET_NS) continue;
      this.#open.delete(id);
      const time = ctx.timeOf(episode.lastNs);
      this.#ended.set(id, { ns: episode.lastNs, time });
      made.push({ ...episode.start, seq: 0, phase: 'stop', time, suppressed: episode.suppressed });
    }
    for (const [id, ended] of this.#ended) if (ctx.nowNs - ended.ns > ENDED_MEMORY_NS) this.#ended.delete(id);
    return made;
  }
}

/** The start of an episode whose record was lost: what the counts and the cgroup tree tell. */
function madeUpStart(cgroupId: string, lastNs: bigint, ctx: ThrottleContext): ThrottleEvent {
  const time = ctx.timeOf(lastNs);
  const pod = ctx.podOf(cgroupId);
  return {
    seq: 0,
    kind: 'throttle',
    phase: 'start',
    time,
    node: ctx.node,
    since: time,
    suppressed: 0,
    pid: 0,
    comm: '',
    cgroupId,
    cgroup: '',
    cgroupParent: '',
    cgroupTruncated: false,
    containerId: pod.containerId,
    namespace: pod.namespace,
    pod: pod.pod,
    podUid: pod.podUid,
    container: pod.container,
    image: null,
    imageId: null,
    workload: pod.workload,
    attribution: pod.attribution,
  };
}
