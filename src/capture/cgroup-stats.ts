/**
 * The kernel's throttled and lost counts by cgroup (struct execwatch_cgroup_stats in
 * bpf/execwatch.h: one table per CPU, each written by its CPU's programs only), read as what grew
 * since the last reading. A slot's counts only grow while it keeps its cgroup; one given to
 * another cgroup (its `claimed_ns` changes) starts again from zero, so each slot is remembered
 * with the claim its counts belong to.
 */

/** sizeof(struct execwatch_cgroup_stat). */
export const CGROUP_STAT_SIZE = 40;
/** EXECWATCH_CGROUP_STATS_SLOTS: slots per CPU, besides `other`. */
export const CGROUP_STATS_SLOTS = 256;
/** sizeof(struct execwatch_cgroup_stats): one CPU's table. */
export const CGROUP_STATS_SIZE = CGROUP_STAT_SIZE * (CGROUP_STATS_SLOTS + 1);
/** EXECWATCH_THROTTLE_QUIET_NS: an episode ends once no exec of its cgroup was throttled for this long. */
export const THROTTLE_QUIET_NS = 1_000_000_000n;

/** Byte offsets of struct execwatch_cgroup_stat's fields; the tests derive them from the C header. */
export const CGROUP_STAT_OFFSETS = {
  cgroup_id: 0,
  claimed_ns: 8,
  throttled: 16,
  lost: 24,
  last_ns: 32,
} as const;

/** What one cgroup's counts grew by since the last reading, over every CPU. */
export interface CgroupGrowth {
  /** Decimal cgroup v2 id, as events carry it; '0' for the cgroups the tables had no room for. */
  cgroupId: string;
  throttled: number;
  lost: number;
  /** The latest count's time (boot ns): the last throttled exec or lost event. */
  lastNs: bigint;
}

interface Seen {
  cgroupId: bigint;
  claimedNs: bigint;
  throttled: bigint;
  lost: bigint;
}

const S = CGROUP_STAT_OFFSETS;

/** Follows the tables from one reading to the next; one instance per consumer of the counts. */
export class CgroupStatsReader {
  /** By the slot's place in the copy (CPU and index). */
  readonly #seen = new Map<number, Seen>();

  /**
   * What grew since the last call, by cgroup, from `tables` (NativeTracer.cgroupStats(): every
   * CPU's table, one after the other). Cgroups that did not grow are left out.
   */
  read(tables: Buffer): CgroupGrowth[] {
    const grown = new Map<bigint, CgroupGrowth>();
    for (let at = 0; at + CGROUP_STAT_SIZE <= tables.length; at += CGROUP_STAT_SIZE) {
      const cgroupId = tables.readBigUInt64LE(at + S.cgroup_id);
      const throttled = tables.readBigUInt64LE(at + S.throttled);
      const lost = tables.readBigUInt64LE(at + S.lost);
      // Empty (the `other` slot of a CPU that never needed it reads the same: nothing to count).
      if (throttled === 0n && lost === 0n) continue;
      const claimedNs = tables.readBigUInt64LE(at + S.claimed_ns);
      const before = this.#seen.get(at);
      const same = before !== undefined && before.cgroupId === cgroupId && before.claimedNs === claimedNs;
      // A slot read while its CPU was writing it may show a count behind the last reading's:
      // nothing grew then, and the next reading catches up.
      const dThrottled = same ? throttled - before.throttled : throttled;
      const dLost = same ? lost - before.lost : lost;
      if (dThrottled < 0n || dLost < 0n) continue;
      this.#seen.set(at, { cgroupId, claimedNs, throttled, lost });
      if (dThrottled === 0n && dLost === 0n) continue;
      const lastNs = tables.readBigUInt64LE(at + S.last_ns);
      const entry = grown.get(cgroupId);
      if (entry === undefined) {
        grown.set(cgroupId, { cgroupId: cgroupId.toString(), throttled: Number(dThrottled), lost: Number(dLost), lastNs });
      } else {
        entry.throttled += Number(dThrottled);
        entry.lost += Number(dLost);
        if (lastNs > entry.lastNs) entry.lastNs = lastNs;
      }
    }
    return [...grown.values()];
  }
}
