/**
 * Container id and pod UID from the two cgroup directory names the kernel captured with each
 * exec (leaf and parent). Only names are available, never the full path: the patterns below are
 * anchored on a whole directory name so that a look-alike (63 or 65 hex digits, uppercase hex,
 * conmon's scope) never yields an id.
 */
import { LRUCache } from 'lru-cache';

/**
 * What the cgroup names say about a process. `podUid` is null when no `pod<uid>` was seen;
 * `enclosingContainerId` is set only when the parent directory names another container, which no
 * runtime does in Kubernetes: the enricher then checks that both belong to the same pod.
 */
export interface CgroupIds {
  containerId: string;
  podUid: string | null;
  enclosingContainerId: string | null;
}

const HEX64 = '([0-9a-f]{64})';

/**
 * One pattern per runtime layout. Each matches a whole directory name and captures the 64-hex id;
 * CRI-O's and podman's conmon scopes (`crio-conmon-…`, `libpod-conmon-…`) fail because `conmon-`
 * is not hex.
 */
const CONTAINER_NAME_PATTERNS = [
  // containerd (systemd driver; also k3s, kind, minikube inside their node container)
  new RegExp(`^cri-containerd-${HEX64}\\.scope$`),
  // CRI-O: systemd driver (.scope) and cgroupfs driver (bare)
  new RegExp(`^crio-${HEX64}(?:\\.scope)?$`),
  // Docker (systemd driver) and cri-dockerd
  new RegExp(`^docker-${HEX64}\\.scope$`),
  // podman: the scope itself, or the cgroupfs directory
  new RegExp(`^libpod-${HEX64}(?:\\.scope)?$`),
  // nerdctl and other containerd clients with the systemd driver
  new RegExp(`^nerdctl-${HEX64}\\.scope$`),
  // containerd with the cgroupfs driver, Docker's /docker/<id>
  new RegExp(`^${HEX64}$`),
  // kubelet on cgroupfs while containerd uses systemd-style names: "<slice>:cri-containerd:<id>"
  new RegExp(`^[^:]*:(?:cri-containerd|crio|docker):${HEX64}$`),
] as const;

/**
 * `pod<uid>` as the kubelet names a pod's cgroup: `kubepods-<qos>-pod<uid_with_underscores>.slice`
 * (systemd driver; `kubepods-pod<uid>.slice` for guaranteed QoS; prefixed with `kubelet-` in
 * kind), or `pod<uid>` (cgroupfs driver). Static pods use a 32-hex config hash as their UID.
 */
const POD_UID_PATTERN =
  /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?:\.slice)?(?=$|:)/;

function containerIdOf(name: string): string | null {
  for (const pattern of CONTAINER_NAME_PATTERNS) {
    const match = pattern.exec(name);
    if (match) return match[1] as string;
  }
  return null;
}

/** The pod UID a cgroup directory name carries (`kubepods-…-pod<uid>.slice`, `pod<uid>`), or null. */
export function podUidOf(name: string): string | null {
  const match = POD_UID_PATTERN.exec(name);
  return match ? (match[1] as string).replaceAll('_', '-') : null;
}

/**
 * Parses the leaf and parent cgroup names. The innermost match wins: the leaf when it names a
 * container, else the parent (podman's `container` child, a container's own nested cgroups such
 * as `init.scope`). Returns null for host processes.
 */
export function parseCgroup(leaf: string, parent: string): CgroupIds | null {
  const fromLeaf = containerIdOf(leaf);
  const fromParent = containerIdOf(parent);
  if (fromLeaf !== null) {
    return {
      containerId: fromLeaf,
      // The driver-mismatch name carries the pod slice inside the leaf itself.
      podUid: podUidOf(parent) ?? podUidOf(leaf),
      enclosingContainerId: fromParent === fromLeaf ? null : fromParent,
    };
  }
  if (fromParent !== null) return { containerId: fromParent, podUid: null, enclosingContainerId: null };
  return null;
}

/**
 * Per-cgroup memo of {@link parseCgroup}: every exec of a container shares its cgroup id, so the
 * patterns run once per cgroup. Bounded; the least recently used entry goes first. The names are
 * compared on a hit because a cgroup id can be reused, and v1-only hosts report no usable id.
 */
export class CgroupCache {
  readonly #entries: LRUCache<string, { leaf: string; parent: string; ids: CgroupIds | null }>;

  constructor(maxEntries = 8192) {
    this.#entries = new LRUCache({ max: maxEntries });
  }

  /** Container id and pod UID of an event's cgroup, or null for a host process. */
  lookup(cgroupId: string, leaf: string, parent: string): CgroupIds | null {
    const hit = this.#entries.get(cgroupId);
    if (hit && hit.leaf === leaf && hit.parent === parent) return hit.ids;
    const ids = parseCgroup(leaf, parent);
    if (cgroupId !== '0') this.#entries.set(cgroupId, { leaf, parent, ids });
    return ids;
  }

  get size(): number {
    return this.#entries.size;
  }
}
