/**
 * Where an exec came from (README, "Where an exec came from"): the kernel's view (src/capture/
 * decode.ts: pid 1 of its pid namespace, a parent in another pid namespace, or neither), the
 * container's spec (an ephemeral container, its exec probes) and the lineage (what its parent was,
 * from the process table). A pure function: the pipeline hands it those and keeps the result in
 * the process table for the children to come.
 */
import type { ExecEvent, Origin } from '../events/schema.js';
import type { ContainerInfo } from '../kube/types.js';

/** What the process table knows of a process: its origin (null: running before the agent started) and session. */
export interface Lineage {
  readonly origin: Origin | null;
  readonly sessionExecId: string | null;
}

/** Origins a descendant takes from its parent: those of something that entered the container. */
const INHERITED: ReadonlySet<Origin | null> = new Set<Origin | null>(['exec', 'probe', 'debug']);

/** argv is exactly one of the container's exec probe commands. */
function isProbe(argv: readonly string[], probes: readonly (readonly string[])[]): boolean {
  return probes.some((command) => command.length === argv.length && command.every((arg, i) => arg === argv[i]));
}

/**
 * Sets `event.origin` and `event.sessionExecId`. `event.origin` comes in as the kernel saw it:
 * `init`, `exec` (entered from outside its pid namespace) or `workload` (anything else).
 * `container` is the event's container from the pod spec (undefined when unknown), `parent` the
 * parent's and `self` the process's own entry of the process table (a failed exec leaves the caller
 * as it was: it has the caller's).
 */
export function classifyOrigin(event: ExecEvent, container: ContainerInfo | undefined, parent: Lineage | undefined, self: Lineage | undefined): void {
  if (event.retval !== 0) {
    event.origin = self?.origin ?? (event.containerId === null ? 'host' : 'workload');
    event.sessionExecId = self?.sessionExecId ?? null;
    return;
  }
  const seen = event.origin;
  let origin: Origin;
  let session: string | null = null;
  if (event.containerId === null) {
    origin = 'host';
  } else if (container?.ephemeral === true) {
    // Everything in an ephemeral container is a person's debugging: the process that entered it
    // opens the session, what it starts belongs to it.
    origin = 'debug';
    session = seen === 'workload' ? (parent?.sessionExecId ?? event.execId) : event.execId;
  } else if (seen === 'init') {
    origin = 'init';
  } else if (seen === 'exec') {
    if (container !== undefined && isProbe(event.argv, container.probes)) {
      origin = 'probe';
    } else {
      origin = 'exec';
      session = event.execId;
    }
  } else if (parent !== undefined && INHERITED.has(parent.origin)) {
    origin = parent.origin as Origin;
    session = parent.sessionExecId;
  } else {
    origin = 'workload';
  }
  event.origin = origin;
  event.sessionExecId = session;
}
