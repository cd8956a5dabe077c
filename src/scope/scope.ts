/**
 * The one owner of the kernel's scope table: it keeps the table in step with the pod cache and the
 * node's cgroup tree, and judges in user space the events of cgroups the table did not list yet.
 *
 * The table lists pod-level cgroups as subtrees. A pod's cgroup exists before any of its
 * containers, so a container created a moment ago is in the table already: the kernel walks up to
 * its pod's entry. A pod the table does not list yet (created since the last scan, or not in the
 * pod cache yet) is in scope in the kernel; its events reach user space, which judges them here
 * with the same rules, counts the out-of-scope ones as excluded (and as late), and rescans. So no
 * exec is dropped that should have been delivered, and every dropped one is counted once.
 *
 * The scan runs when the pod cache changes (the kubelet creates a pod's cgroup after the pod is
 * bound to the node, and reports its containers after creating them) and after a late exclusion;
 * changes coming together share one scan.
 */
import type { ExecEvent, ExitEvent } from '../events/schema.js';
import type { PodLookup } from '../kube/types.js';
import { scanCgroupTree } from './cgroups.js';
import { narrowsScope, outOfScope, type ScopeRules } from './rules.js';
import { buildScopeSlots, type ScopeEntry, type ScopeReason } from './table.js';

/** The part of src/metrics scope counts into. */
export interface ScopeMetrics {
  /** Counts one event (an exec, or a process's exit) dropped in user space as out of scope (the kernel's are read at scrape). */
  excludedLate(reason: ScopeReason): void;
}

/** Options of {@link Scope}. */
export interface ScopeOptions {
  rules: ScopeRules;
  /** The cgroup v2 mount point, or null (no cgroup v2: the kernel table stays empty). */
  cgroupRoot: string | null;
  /** Null in standalone mode: only the host can be out of scope. */
  pods: PodLookup | null;
  /** Makes `slots` the kernel's table (Tracer.writeScope). */
  write(slots: Buffer, entries: number): void;
  metrics: ScopeMetrics;
  /** How long changes wait to share one scan, in ms (default 50). */
  coalesceMs?: number;
}

export class Scope {
  readonly #opts: ScopeOptions;
  readonly #narrows: boolean;
  #scheduled: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #last: Buffer | null = null;
  #entries: Record<ScopeReason, number> = { host: 0, namespace: 0, pod: 0 };
  #dropped = 0;
  #closed = false;

  constructor(opts: ScopeOptions) {
    this.#opts = opts;
    this.#narrows = narrowsScope(opts.rules);
  }

  /** Writes the first table and follows the pod cache from now on. */
  start(): void {
    if (!this.#narrows) return;
    this.#unsubscribe = this.#opts.pods?.onChange?.(() => this.#schedule()) ?? null;
    this.refresh();
  }

  /** Cgroups in the kernel table now, by reason (execwatch_scope_cgroups). */
  get entries(): Readonly<Record<ScopeReason, number>> {
    return this.#entries;
  }

  /** Cgroups the last table had no room for: their execs are judged in user space. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Why an event that reached user space is out of scope, or null. An out-of-scope one is counted
   * here (the caller drops it) and makes the table be rescanned: an exec's cgroup was not listed.
   * (An exit's may have been, for a process that moved into it after its exec: that scan finds
   * the table unchanged and writes nothing.)
   */
  judge(event: ExecEvent | ExitEvent): ScopeReason | null {
    if (!this.#narrows) return null;
    let reason: ScopeReason | null = null;
    if (event.attribution === 'host') reason = outOfScope(this.#opts.rules, null);
    else if (event.attribution === 'pod' && event.podUid !== null) {
      const pod = this.#opts.pods?.byPodUid(event.podUid);
      if (pod) reason = outOfScope(this.#opts.rules, pod);
    }
    if (reason !== null) {
      this.#opts.metrics.excludedLate(reason);
      this.#schedule();
    }
    return reason;
  }

  /** Scans the cgroup tree and rewrites the kernel table when it changed. */
  refresh(): void {
    if (this.#closed || !this.#narrows || this.#opts.cgroupRoot === null) return;
    const { rules, pods } = this.#opts;
    const tree = scanCgroupTree(this.#opts.cgroupRoot);
    const entries = new Map<bigint, ScopeEntry>();
    if (rules.excludeHost) {
      for (const id of tree.hostSubtrees) entries.set(id, { reason: 'host', subtree: true });
      for (const id of tree.hostOwn) entries.set(id, { reason: 'host', subtree: false });
    }
    for (const [uid, ids] of tree.pods) {
      const pod = pods?.byPodUid(uid);
      const reason = pod ? outOfScope(rules, pod) : null;
      if (reason !== null) for (const id of ids) entries.set(id, { reason, subtree: true });
    }
    const built = buildScopeSlots(entries);
    this.#dropped = built.dropped;
    if (this.#last?.equals(built.slots)) return;
    this.#opts.write(built.slots, built.entries);
    this.#last = built.slots;
    this.#entries = built.byReason;
  }

  #schedule(): void {
    if (this.#scheduled !== null || this.#closed) return;
    this.#scheduled = setTimeout(() => {
      this.#scheduled = null;
      this.refresh();
    }, this.#opts.coalesceMs ?? 50);
    this.#scheduled.unref();
  }

  /** Stops following the pod cache. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#scheduled !== null) clearTimeout(this.#scheduled);
    this.#scheduled = null;
  }
}
