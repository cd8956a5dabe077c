/**
 * The pod of a cgroup known by its id alone: the kernel's throttled and lost counts by cgroup carry
 * no names (a lost event's record never reached user space). The node's cgroup v2 tree maps ids to
 * pod UIDs (the pod's cgroup and the cgroups below it: its containers), and the pod cache UIDs to
 * pods. The tree is scanned again only when asked about an id the last scan did not see, at most
 * once a second: counts by cgroup are read every second.
 */
import { scanCgroupTree } from '../scope/cgroups.js';
import type { PodLookup } from '../kube/types.js';
import type { Attribution, Workload } from '../events/schema.js';

/** What is known of a cgroup's pod. */
export interface CgroupPod {
  containerId: string | null;
  namespace: string | null;
  pod: string | null;
  podUid: string | null;
  container: string | null;
  workload: Workload | null;
  attribution: Attribution;
}

/** A cgroup the tree does not place in a pod: a host cgroup, or one whose pod is not known. */
const NO_POD: CgroupPod = { containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved' };

/** Least time between two scans, in ms. */
const RESCAN_MS = 1000;

export class CgroupPods {
  /** Cgroup id (decimal) → pod UID, from the last scan. */
  #uids = new Map<string, string>();
  #scannedAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** The cgroup v2 mount point; null: no cgroup v2, no pod is found. */
    private readonly root: string | null,
    /** Null in standalone mode: no pod is found. */
    private readonly pods: PodLookup | null,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The pod of cgroup `id` (decimal). */
  podOf(id: string): CgroupPod {
    if (this.root === null || this.pods === null) return NO_POD;
    if (!this.#uids.has(id) && this.now() - this.#scannedAt >= RESCAN_MS) this.#scan(this.root);
    const uid = this.#uids.get(id);
    const pod = uid === undefined ? undefined : this.pods.byPodUid(uid);
    if (pod === undefined) return NO_POD;
    return { containerId: null, namespace: pod.namespace, pod: pod.name, podUid: pod.uid, container: null, workload: pod.workload, attribution: 'pod' };
  }

  #scan(root: string): void {
    this.#scannedAt = this.now();
    const uids = new Map<string, string>();
    for (const [uid, ids] of scanCgroupTree(root).pods) for (const id of ids) uids.set(id.toString(), uid);
    this.#uids = uids;
  }
}
