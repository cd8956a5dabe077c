/**
 * The kernel's scope table (struct execwatch_scope_table in bpf/execwatch.h), built here as bytes
 * the addon copies into the copy the programs are not reading. An open-addressing hash of cgroup
 * ids: an entry sits at most SCOPE_PROBES slots past its home slot, and an empty slot ends the
 * kernel's search, so the table is always rebuilt whole (no deletion, no tombstones): pods change
 * seldom, and 2,048 slots are 32 KiB.
 */

/** EXECWATCH_SCOPE_SLOTS, _SLOT_BITS, _PROBES, _SUBTREE and _HASH_MUL; the tests check them against the header. */
export const SCOPE_SLOTS = 2048;
export const SCOPE_SLOT_BITS = 11;
export const SCOPE_PROBES = 8;
export const SCOPE_SUBTREE = 0x100;
export const SCOPE_HASH_MUL = 0x9e3779b97f4a7c15n;
/** sizeof(struct execwatch_scope_slot). */
export const SCOPE_SLOT_BYTES = 16;

/** enum execwatch_scope: why a cgroup is out of scope (the reason label of execwatch_events_excluded_total). */
export const SCOPE_REASONS = { host: 1, namespace: 2, pod: 3 } as const;
export type ScopeReason = keyof typeof SCOPE_REASONS;

/** One cgroup the kernel drops execs of: itself only, or with every cgroup below it. */
export interface ScopeEntry {
  reason: ScopeReason;
  subtree: boolean;
}

const MASK64 = (1n << 64n) - 1n;

/** The home slot of a cgroup id: the top SCOPE_SLOT_BITS bits of id × the golden-ratio constant, as the BPF program computes it. */
export function scopeHome(cgroupId: bigint): number {
  return Number(((cgroupId * SCOPE_HASH_MUL) & MASK64) >> BigInt(64 - SCOPE_SLOT_BITS));
}

/** What {@link buildScopeSlots} made: the slots, and the entries that found no slot within reach of their home. */
export interface ScopeSlots {
  slots: Buffer;
  entries: number;
  /** The entries placed, by reason. */
  byReason: Record<ScopeReason, number>;
  /** Cgroups left out (their execs then reach user space, which judges them). */
  dropped: number;
}

/**
 * Lays `entries` out as the kernel reads them. Most entries are placed first (a pod's subtree
 * before a single cgroup), so that when the table is too full it is the least useful that stay
 * out. Never fails: what does not fit is counted in `dropped`.
 */
export function buildScopeSlots(entries: ReadonlyMap<bigint, ScopeEntry>): ScopeSlots {
  const slots = Buffer.alloc(SCOPE_SLOTS * SCOPE_SLOT_BYTES);
  const taken = new Uint8Array(SCOPE_SLOTS);
  const ordered = [...entries].sort(([, a], [, b]) => Number(b.subtree) - Number(a.subtree));
  let placed = 0;
  let dropped = 0;
  const byReason: Record<ScopeReason, number> = { host: 0, namespace: 0, pod: 0 };
  for (const [id, entry] of ordered) {
    if (id <= 0n || id > MASK64) {
      dropped += 1;
      continue;
    }
    const home = scopeHome(id);
    let slot = -1;
    for (let i = 0; i < SCOPE_PROBES; i++) {
      const at = (home + i) & (SCOPE_SLOTS - 1);
      if (!taken[at]) {
        slot = at;
        break;
      }
    }
    if (slot < 0) {
      dropped += 1;
      continue;
    }
    taken[slot] = 1;
    const at = slot * SCOPE_SLOT_BYTES;
    slots.writeBigUInt64LE(id, at);
    slots.writeUInt32LE(SCOPE_REASONS[entry.reason] | (entry.subtree ? SCOPE_SUBTREE : 0), at + 8);
    placed += 1;
    byReason[entry.reason] += 1;
  }
  return { slots, entries: placed, byReason, dropped };
}
