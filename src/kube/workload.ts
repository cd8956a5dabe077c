/**
 * The workload a pod belongs to, from its owner references alone: the agent may only list pods,
 * so a ReplicaSet's Deployment and a Job's CronJob are inferred from the names their controllers
 * generate rather than fetched.
 */
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { Workload } from '../events/schema.js';

/**
 * A CronJob names its Jobs `<cronjob>-<scheduled time in minutes since the epoch>`, eight digits
 * until the year 2160. Requiring eight keeps a hand-made Job such as `migrate-2` a Job.
 */
const CRONJOB_JOB_NAME = /^(.+)-\d{8,}$/;

function controllerOf(refs: V1OwnerReference[] | undefined): V1OwnerReference | undefined {
  if (!refs || refs.length === 0) return undefined;
  return refs.find((ref) => ref.controller === true) ?? refs[0];
}

/**
 * Resolves a pod's workload: ReplicaSet → Deployment (name minus the `pod-template-hash` suffix,
 * when the pod carries that label and the name ends with it), Job → CronJob (when named like a
 * scheduled run), StatefulSet/DaemonSet/others as they are. A bare pod, and a static pod (owned
 * by its Node), is its own workload.
 */
export function workloadOf(pod: V1Pod): Workload {
  const name = pod.metadata?.name ?? '';
  const owner = controllerOf(pod.metadata?.ownerReferences);
  if (!owner || owner.kind === 'Node') return { kind: 'Pod', name };
  if (owner.kind === 'ReplicaSet') {
    const hash = pod.metadata?.labels?.['pod-template-hash'];
    if (hash && owner.name.endsWith(`-${hash}`)) {
      return { kind: 'Deployment', name: owner.name.slice(0, -(hash.length + 1)) };
    }
  } else if (owner.kind === 'Job') {
    const match = CRONJOB_JOB_NAME.exec(owner.name);
    if (match) return { kind: 'CronJob', name: match[1] as string };
  }
  return { kind: owner.kind, name: owner.name };
}
