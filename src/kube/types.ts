/**
 * What the pod cache offers downstream (src/enrich) and what it needs from src/metrics. Types only:
 * the enricher depends on this shape, not on the informer behind it.
 */
import type { Workload } from '../events/schema.js';

/** A container of a pod, from the pod's status. */
export interface ContainerInfo {
  /** The container's name in the pod spec. */
  name: string;
  /** The image as the runtime reports it (`status.image`), null when the status has none yet. */
  image: string | null;
  /** The image's id as the runtime reports it (`status.imageID`, a digest reference), or null. */
  imageId: string | null;
  /** An ephemeral container (`kubectl debug`): its execs' origin is `debug`. */
  ephemeral: boolean;
  /** The `exec.command` of its liveness, readiness and startup probes: an exec with one of these argv is a `probe`. */
  probes: readonly (readonly string[])[];
}

/** A pod as the enricher needs it. */
export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  /** The owning controller (Deployment, StatefulSet, …), or the pod itself when bare. */
  workload: Workload;
  /** Container id (64 hex, runtime prefix stripped) → the container, init and ephemeral included. */
  containers: Map<string, ContainerInfo>;
  /** The pod's labels (--exclude-pods selects on them). */
  labels: Readonly<Record<string, string>>;
}

/** Read side of the pod cache, as the enricher uses it. Never calls the API server. */
export interface PodLookup {
  byContainerId(id: string): PodInfo | undefined;
  /** By the UID in the pod's cgroup name (a static pod's config hash resolves to its mirror pod). */
  byPodUid(uid: string): PodInfo | undefined;
  /** True once the first list of pods has been received. */
  readonly synced: boolean;
  /** Called after every change of the cache, so waiting events can be retried; returns an unsubscribe. */
  onChange?(listener: () => void): () => void;
}

/** The part of src/metrics the pod cache calls. */
export interface PodCacheMetrics {
  /** Counts a restart of the pod informer after an error (execwatch_kube_watch_restarts_total). */
  kubeWatchRestart(): void;
  /** Drops the series of a pod deleted longer than the grace period ago. */
  forgetPod(namespace: string, pod: string): void;
}
