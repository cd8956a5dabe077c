/**
 * The pod cache's indexes: live pods by name, UID and container id; recently deleted pods in a
 * bounded LRU so late events still resolve; and the grace timers that forget a deleted pod's
 * metric series. Fed by the informer in podcache.ts, read by the enricher through PodLookup.
 */
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ContainerInfo, PodCacheMetrics, PodInfo } from './types.js';
import { workloadOf } from './workload.js';

/** Runtime prefixes of `containerID` in pod status (`containerd://<id>`). */
const RUNTIME_PREFIX = /^[a-z0-9-]+:\/\//;
/** Set by the kubelet on a static pod's mirror: the UID its cgroup is named after. */
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** The exec probes' commands of each container of a spec list, by container name. */
function probesByName(specs: readonly Pick<V1Container, 'name' | 'livenessProbe' | 'readinessProbe' | 'startupProbe'>[] | undefined): Map<string, string[][]> {
  const found = new Map<string, string[][]>();
  for (const spec of specs ?? []) {
    const commands = [spec.livenessProbe, spec.readinessProbe, spec.startupProbe].flatMap((probe) => (probe?.exec?.command ? [probe.exec.command] : []));
    if (commands.length > 0) found.set(spec.name, commands);
  }
  return found;
}

const NO_PROBES: readonly (readonly string[])[] = [];

function statusIds(statuses: V1ContainerStatus[] | undefined, into: Map<string, ContainerInfo>, probes: Map<string, string[][]>, ephemeral = false): void {
  for (const status of statuses ?? []) {
    // An empty string (a container still waiting for its image) is no image.
    const container = {
      name: status.name,
      image: status.image || null,
      imageId: status.imageID || null,
      ephemeral,
      probes: probes.get(status.name) ?? NO_PROBES,
    };
    // The previous instance's id too: its last processes can exec after a restart is reported.
    for (const raw of [status.lastState?.terminated?.containerID, status.containerID]) {
      if (raw) into.set(raw.replace(RUNTIME_PREFIX, ''), container);
    }
  }
}

/** Builds the enricher's view of a pod object from the API server. */
export function podInfoOf(pod: V1Pod): PodInfo {
  const containers = new Map<string, ContainerInfo>();
  // Ephemeral containers take no probes; init containers do when they are sidecars (restartPolicy Always).
  statusIds(pod.status?.initContainerStatuses, containers, probesByName(pod.spec?.initContainers));
  statusIds(pod.status?.containerStatuses, containers, probesByName(pod.spec?.containers));
  statusIds(pod.status?.ephemeralContainerStatuses, containers, new Map(), true);
  return {
    uid: pod.metadata?.uid ?? '',
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    workload: workloadOf(pod),
    containers,
    labels: pod.metadata?.labels ?? {},
  };
}

interface Entry {
  info: PodInfo;
  /** UIDs this pod is found under: its own, plus a static pod's config hash. */
  uids: string[];
}

/** Options of {@link PodIndex}. */
export interface PodIndexOptions {
  metrics: PodCacheMetrics;
  /** Delay between a pod's deletion and forgetting its metric series. */
  gracePeriodMs: number;
  /** Deleted pods kept resolvable. */
  maxDeleted: number;
}

/** Live and recently deleted pods, indexed for per-event lookups (Map gets only). */
export class PodIndex {
  readonly #live = new Map<string, Entry>();
  readonly #byUid = new Map<string, Entry>();
  readonly #byContainer = new Map<string, Entry>();
  /** Deleted pods by UID, insertion-ordered: the first is the least recently deleted. */
  readonly #deleted = new Map<string, Entry>();
  readonly #deletedByUid = new Map<string, Entry>();
  readonly #deletedByContainer = new Map<string, Entry>();
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly opts: PodIndexOptions) {}

  /** Adds or replaces a pod (ADDED, MODIFIED, or seen again in a relist). */
  upsert(pod: V1Pod): void {
    const info = podInfoOf(pod);
    const key = `${info.namespace}/${info.name}`;
    const old = this.#live.get(key);
    if (old) {
      this.#unindex(old, this.#byUid, this.#byContainer);
      // Replaced under the same name (missed while disconnected): late events of the old one.
      if (old.info.uid !== info.uid) this.#retire(old);
    }
    const timer = this.#graceTimers.get(key);
    if (timer) {
      // Back under the same name: its series are live again.
      clearTimeout(timer);
      this.#graceTimers.delete(key);
    }
    const mirror = pod.metadata?.annotations?.[MIRROR_ANNOTATION];
    const entry: Entry = { info, uids: mirror ? [info.uid, mirror] : [info.uid] };
    this.#live.set(key, entry);
    this.#index(entry, this.#byUid, this.#byContainer);
  }

  /** Moves a deleted pod to the LRU and schedules forgetting its series. */
  delete(pod: V1Pod): void {
    const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    const entry = this.#live.get(key);
    if (!entry) return;
    this.#live.delete(key);
    this.#unindex(entry, this.#byUid, this.#byContainer);
    this.#retire(entry);
    const { namespace, name } = entry.info;
    const timer = setTimeout(() => {
      this.#graceTimers.delete(key);
      this.opts.metrics.forgetPod(namespace, name);
    }, this.opts.gracePeriodMs);
    timer.unref();
    this.#graceTimers.set(key, timer);
  }

  byContainerId(id: string): PodInfo | undefined {
    return (this.#byContainer.get(id) ?? this.#deletedByContainer.get(id))?.info;
  }

  byPodUid(uid: string): PodInfo | undefined {
    return (this.#byUid.get(uid) ?? this.#deletedByUid.get(uid))?.info;
  }

  /** Live pods (execwatch_pods). */
  get size(): number {
    return this.#live.size;
  }

  /** Deleted pods still resolvable. */
  get deletedSize(): number {
    return this.#deleted.size;
  }

  /** Cancels pending grace timers (shutdown). */
  close(): void {
    for (const timer of this.#graceTimers.values()) clearTimeout(timer);
    this.#graceTimers.clear();
  }

  #retire(entry: Entry): void {
    this.#deleted.set(entry.info.uid, entry);
    this.#index(entry, this.#deletedByUid, this.#deletedByContainer);
    if (this.#deleted.size > this.opts.maxDeleted) {
      const oldest = this.#deleted.values().next().value as Entry;
      this.#deleted.delete(oldest.info.uid);
      this.#unindex(oldest, this.#deletedByUid, this.#deletedByContainer);
    }
  }

  #index(entry: Entry, byUid: Map<string, Entry>, byContainer: Map<string, Entry>): void {
    for (const uid of entry.uids) byUid.set(uid, entry);
    for (const id of entry.info.containers.keys()) byContainer.set(id, entry);
  }

  /** Removes only what still points at this entry: a newer pod may own a key now. */
  #unindex(entry: Entry, byUid: Map<string, Entry>, byContainer: Map<string, Entry>): void {
    for (const uid of entry.uids) if (byUid.get(uid) === entry) byUid.delete(uid);
    for (const id of entry.info.containers.keys()) {
      if (byContainer.get(id) === entry) byContainer.delete(id);
    }
  }
}
