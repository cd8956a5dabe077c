/**
 * How an event becomes an OpenTelemetry log record: ONE table from each field of the event schema
 * to where it goes (the record's timestamp, a resource attribute, or a record attribute named as
 * the semantic conventions name it; execwatch's own fields under `execwatch.`). The README's
 * mapping table is generated from it and test/export-attributes.test.ts checks it field by field.
 * Names the conventions have made stable come from @opentelemetry/semantic-conventions; the
 * process.*, thread.* and user.* names are still incubating there, and the package asks users to
 * copy incubating names rather than import its /incubating entry, so they are written out.
 */
import type { AnyValue, AnyValueMap } from '@opentelemetry/api-logs';
import {
  ATTR_CONTAINER_ID,
  ATTR_CONTAINER_IMAGE_NAME,
  ATTR_CONTAINER_IMAGE_REPO_DIGESTS,
  ATTR_CONTAINER_IMAGE_TAGS,
  ATTR_K8S_CONTAINER_NAME,
  ATTR_K8S_CRONJOB_NAME,
  ATTR_K8S_DAEMONSET_NAME,
  ATTR_K8S_DEPLOYMENT_NAME,
  ATTR_K8S_JOB_NAME,
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_K8S_POD_UID,
  ATTR_K8S_REPLICASET_NAME,
  ATTR_K8S_STATEFULSET_NAME,
} from '@opentelemetry/semantic-conventions';
import { repositoryOf } from '../events/filter.js';
import type { AgentEvent, ExecEvent, ExitEvent, GapEvent, ThrottleEvent, Workload } from '../events/schema.js';

/** The event name of every record of an exec. */
export const EXEC_EVENT_NAME = 'process.exec';

/**
 * The `k8s.<kind>.name` attribute of each workload kind the semantic conventions name; any other
 * controller kind (a custom resource) goes to `execwatch.workload.kind` and `.name`. A bare pod's
 * workload is the pod itself, already in `k8s.pod.name`.
 */
export const WORKLOAD_ATTRIBUTES: ReadonlyMap<string, string | null> = new Map([
  ['Deployment', ATTR_K8S_DEPLOYMENT_NAME],
  ['ReplicaSet', ATTR_K8S_REPLICASET_NAME],
  ['StatefulSet', ATTR_K8S_STATEFULSET_NAME],
  ['DaemonSet', ATTR_K8S_DAEMONSET_NAME],
  ['Job', ATTR_K8S_JOB_NAME],
  ['CronJob', ATTR_K8S_CRONJOB_NAME],
  ['Pod', null],
]);

/** One row: where a field of an event of type E goes and, for attributes, its name. */
export interface FieldMapping<E = ExecEvent> {
  readonly field: keyof E;
  /**
   * `eventName`: the record's event name; `timestamp`: its time; `resource`: an attribute of the
   * agent's resource; `attribute`: of the record; `none`: never on an exported record (`name` says why).
   */
  readonly to: 'eventName' | 'timestamp' | 'resource' | 'attribute' | 'none';
  /** The attribute name (for `workload`, the pattern the README shows). */
  readonly name: string;
  /** The attribute's value when it is not the field's value as it is. */
  readonly value?: (event: E) => AnyValue;
  /**
   * A flag that is nearly always false: the attribute is there only when it is true. Six such
   * attributes were a quarter of every record's attributes and bytes, and the SDK's per-attribute
   * work (validation, copy, two serializer passes) is most of what export costs per event.
   */
  readonly onlyWhenTrue?: true;
  /** What `value` makes of the field, in the README's words. */
  readonly valueNote?: string;
}

/**
 * Where a process ran, the same fields in the same order at the end of both kinds of event (from
 * the kernel's cgroup names, then the pod cache).
 */
const WHERE_ROWS = [
  { field: 'cgroupId', to: 'attribute', name: 'execwatch.cgroup_id' },
  { field: 'cgroup', to: 'attribute', name: 'execwatch.cgroup' },
  { field: 'cgroupParent', to: 'attribute', name: 'execwatch.cgroup_parent' },
  { field: 'cgroupTruncated', to: 'attribute', name: 'execwatch.cgroup_truncated', onlyWhenTrue: true },
  { field: 'containerId', to: 'attribute', name: ATTR_CONTAINER_ID },
  { field: 'namespace', to: 'attribute', name: ATTR_K8S_NAMESPACE_NAME },
  { field: 'pod', to: 'attribute', name: ATTR_K8S_POD_NAME },
  { field: 'podUid', to: 'attribute', name: ATTR_K8S_POD_UID },
  { field: 'container', to: 'attribute', name: ATTR_K8S_CONTAINER_NAME },
  // The repository, and the tag apart (imageAttributes), as the conventions split a reference.
  { field: 'image', to: 'attribute', name: ATTR_CONTAINER_IMAGE_NAME },
  { field: 'imageId', to: 'attribute', name: ATTR_CONTAINER_IMAGE_REPO_DIGESTS, value: (e: { imageId: string | null }) => [e.imageId as string], valueNote: 'an array of the one reference' },
  { field: 'workload', to: 'attribute', name: 'k8s.<kind>.name' },
  { field: 'attribution', to: 'attribute', name: 'execwatch.attribution' },
] as const;

/** Where an exec came from (issue 18): an exec's, and its exit's (a throttle names no process). */
const ORIGIN_ROWS = [
  { field: 'origin', to: 'attribute', name: 'execwatch.origin' },
  { field: 'sessionExecId', to: 'attribute', name: 'execwatch.session_exec_id' },
] as const;

/** Every field of the event schema, in schema order. */
export const OTLP_MAPPING = [
  { field: 'seq', to: 'attribute', name: 'execwatch.seq' },
  { field: 'kind', to: 'eventName', name: EXEC_EVENT_NAME },
  { field: 'time', to: 'timestamp', name: 'the record\'s timestamp' },
  { field: 'node', to: 'resource', name: ATTR_K8S_NODE_NAME },
  { field: 'pid', to: 'attribute', name: 'process.pid' },
  { field: 'tid', to: 'attribute', name: 'thread.id' },
  { field: 'ppid', to: 'attribute', name: 'process.parent_pid' },
  { field: 'execId', to: 'attribute', name: 'execwatch.exec_id' },
  { field: 'parentExecId', to: 'attribute', name: 'execwatch.parent_exec_id' },
  // The semantic conventions' user.id is a string (it also holds Windows SIDs).
  { field: 'uid', to: 'attribute', name: 'user.id', value: (e) => String(e.uid), valueNote: 'a string' },
  { field: 'gid', to: 'attribute', name: 'execwatch.gid' },
  // process.user.id is the effective uid in the conventions (process.real_user.id the real one).
  { field: 'euid', to: 'attribute', name: 'process.user.id' },
  { field: 'egid', to: 'attribute', name: 'execwatch.egid' },
  { field: 'euidDiffers', to: 'attribute', name: 'execwatch.euid_differs', onlyWhenTrue: true },
  { field: 'loginuid', to: 'attribute', name: 'execwatch.loginuid' },
  { field: 'sessionid', to: 'attribute', name: 'execwatch.audit_session_id' },
  { field: 'comm', to: 'attribute', name: 'execwatch.comm' },
  { field: 'parentComm', to: 'attribute', name: 'execwatch.parent_comm' },
  { field: 'ancestors', to: 'attribute', name: 'execwatch.ancestors', value: (e) => e.ancestors.map((a) => ({ ...a })) },
  { field: 'filename', to: 'attribute', name: 'process.executable.path' },
  { field: 'argv', to: 'attribute', name: 'process.command_args' },
  { field: 'argc', to: 'attribute', name: 'process.args_count' },
  { field: 'argvTruncated', to: 'attribute', name: 'execwatch.argv_truncated', onlyWhenTrue: true },
  { field: 'filenameTruncated', to: 'attribute', name: 'execwatch.filename_truncated', onlyWhenTrue: true },
  { field: 'retval', to: 'attribute', name: 'execwatch.retval' },
  { field: 'fileless', to: 'attribute', name: 'execwatch.fileless', onlyWhenTrue: true },
  { field: 'drift', to: 'attribute', name: 'execwatch.drift', onlyWhenTrue: true },
  { field: 'execveat', to: 'attribute', name: 'execwatch.execveat', onlyWhenTrue: true },
  { field: 'readError', to: 'attribute', name: 'execwatch.read_error', onlyWhenTrue: true },
  ...WHERE_ROWS,
  ...ORIGIN_ROWS,
  { field: 'argvBase64', to: 'attribute', name: 'execwatch.argv_base64' },
  { field: 'filenameBase64', to: 'attribute', name: 'execwatch.filename_base64' },
  { field: 'exit', to: 'none', name: 'an exec is exported when it happens, before it can have an exit; the exit is a `process.exit` record of its own (next table)' },
] as const satisfies readonly FieldMapping[];

/** The event name of every record of a process's end. */
export const EXIT_EVENT_NAME = 'process.exit';

/** Every field of the exit event's schema, in schema order: the exec's names where the field is the same. */
export const OTLP_EXIT_MAPPING = [
  { field: 'seq', to: 'attribute', name: 'execwatch.seq' },
  { field: 'kind', to: 'eventName', name: EXIT_EVENT_NAME },
  { field: 'time', to: 'timestamp', name: 'the record\'s timestamp' },
  { field: 'node', to: 'resource', name: ATTR_K8S_NODE_NAME },
  { field: 'execId', to: 'attribute', name: 'execwatch.exec_id' },
  { field: 'pid', to: 'attribute', name: 'process.pid' },
  { field: 'tid', to: 'attribute', name: 'thread.id' },
  { field: 'comm', to: 'attribute', name: 'execwatch.comm' },
  { field: 'status', to: 'attribute', name: 'execwatch.exit.status' },
  { field: 'code', to: 'attribute', name: 'process.exit.code' },
  { field: 'signal', to: 'attribute', name: 'execwatch.exit.signal' },
  { field: 'coreDumped', to: 'attribute', name: 'execwatch.exit.core_dumped', onlyWhenTrue: true },
  { field: 'duration', to: 'attribute', name: 'execwatch.exit.duration' },
  { field: 'execTime', to: 'attribute', name: 'process.creation.time' },
  { field: 'orphans', to: 'attribute', name: 'execwatch.exit.orphans' },
  ...WHERE_ROWS,
  ...ORIGIN_ROWS,
] as const satisfies readonly FieldMapping<ExitEvent>[];

/** The event name of a throttle episode's start and stop records. */
export const THROTTLE_EVENT_NAME = 'execwatch.throttle';

/** Every field of the throttle event's schema, in schema order. */
export const OTLP_THROTTLE_MAPPING = [
  { field: 'seq', to: 'attribute', name: 'execwatch.seq' },
  { field: 'kind', to: 'eventName', name: THROTTLE_EVENT_NAME },
  { field: 'phase', to: 'attribute', name: 'execwatch.throttle.phase' },
  { field: 'time', to: 'timestamp', name: 'the record\'s timestamp' },
  { field: 'node', to: 'resource', name: ATTR_K8S_NODE_NAME },
  { field: 'since', to: 'attribute', name: 'execwatch.throttle.since' },
  { field: 'suppressed', to: 'attribute', name: 'execwatch.throttle.suppressed' },
  { field: 'pid', to: 'attribute', name: 'process.pid' },
  { field: 'comm', to: 'attribute', name: 'execwatch.comm' },
  ...WHERE_ROWS,
] as const satisfies readonly FieldMapping<ThrottleEvent>[];

/** The event name of a gap's record. */
export const GAP_EVENT_NAME = 'execwatch.gap';

/** Every field of the gap event's schema, in schema order. */
export const OTLP_GAP_MAPPING = [
  { field: 'seq', to: 'attribute', name: 'execwatch.seq' },
  { field: 'kind', to: 'eventName', name: GAP_EVENT_NAME },
  { field: 'time', to: 'timestamp', name: 'the record\'s timestamp' },
  { field: 'node', to: 'resource', name: ATTR_K8S_NODE_NAME },
  { field: 'lost', to: 'attribute', name: 'execwatch.gap.lost' },
  { field: 'from', to: 'attribute', name: 'execwatch.gap.from' },
  { field: 'to', to: 'attribute', name: 'execwatch.gap.to' },
  {
    field: 'pods',
    to: 'attribute',
    name: 'execwatch.gap.pods',
    // A map per pod; a null name (host processes) is left out of its map, as null attributes are.
    value: (e) => e.pods.map((p) => ({ ...(p.namespace === null ? {} : { namespace: p.namespace }), ...(p.pod === null ? {} : { pod: p.pod }), lost: p.lost })),
    valueNote: 'an array of `{namespace, pod, lost}` maps',
  },
] as const satisfies readonly FieldMapping<GapEvent>[];

/** The rows that become record attributes, looked up once rather than per event (image and workload have their own). */
const attributeRows = <E>(mapping: readonly FieldMapping<E>[]): readonly FieldMapping<E>[] =>
  mapping.filter((row) => row.to === 'attribute' && row.field !== 'workload' && row.field !== 'image');
const ATTRIBUTE_ROWS: readonly FieldMapping<ExecEvent>[] = attributeRows<ExecEvent>(OTLP_MAPPING);
const EXIT_ATTRIBUTE_ROWS: readonly FieldMapping<ExitEvent>[] = attributeRows<ExitEvent>(OTLP_EXIT_MAPPING);
const THROTTLE_ATTRIBUTE_ROWS: readonly FieldMapping<ThrottleEvent>[] = attributeRows<ThrottleEvent>(OTLP_THROTTLE_MAPPING);
const GAP_ATTRIBUTE_ROWS: readonly FieldMapping<GapEvent>[] = attributeRows<GapEvent>(OTLP_GAP_MAPPING);

/** `container.image.name` (the repository) and `container.image.tags` (when the reference has a tag). */
function imageAttributes(image: string | null, out: AnyValueMap): void {
  if (image === null) return;
  const repository = repositoryOf(image);
  out[ATTR_CONTAINER_IMAGE_NAME] = repository;
  const tag = image.slice(repository.length).split('@')[0] as string;
  if (tag.startsWith(':')) out[ATTR_CONTAINER_IMAGE_TAGS] = [tag.slice(1)];
}

/** The workload's attributes: `k8s.<kind>.name` for the kinds that have one, else execwatch's pair. */
function workloadAttributes(workload: Workload | null, out: AnyValueMap): void {
  if (workload === null) return;
  const name = WORKLOAD_ATTRIBUTES.get(workload.kind);
  if (name === null) return;
  if (name === undefined) {
    out['execwatch.workload.kind'] = workload.kind;
    out['execwatch.workload.name'] = workload.name;
  } else {
    out[name] = workload.name;
  }
}

/**
 * A record's attributes: absent fields (null, or optional and unset) are left out, as OpenTelemetry
 * does, and so are the flags that are false.
 */
function attributesWith<E>(rows: readonly FieldMapping<E>[], event: E): AnyValueMap {
  const out: AnyValueMap = {};
  for (const row of rows) {
    const value = event[row.field];
    if (value === null || value === undefined || (value === false && row.onlyWhenTrue)) continue;
    out[row.name] = row.value ? row.value(event) : (value as AnyValue);
  }
  return out;
}

/** Likewise, plus the image's and the workload's attributes, of an event that names a pod. */
function podAttributesWith<E extends { image: string | null; workload: Workload | null }>(rows: readonly FieldMapping<E>[], event: E): AnyValueMap {
  const out = attributesWith(rows, event);
  imageAttributes(event.image, out);
  workloadAttributes(event.workload, out);
  return out;
}

/** An exec record's attributes (see attributesWith). */
export const attributesOf = (event: ExecEvent): AnyValueMap => podAttributesWith(ATTRIBUTE_ROWS, event);

/** An exit record's attributes, likewise. */
export const exitAttributesOf = (event: ExitEvent): AnyValueMap => podAttributesWith(EXIT_ATTRIBUTE_ROWS, event);

/** A throttle record's attributes, likewise. */
export const throttleAttributesOf = (event: ThrottleEvent): AnyValueMap => podAttributesWith(THROTTLE_ATTRIBUTE_ROWS, event);

/** A gap record's attributes, likewise. */
export const gapAttributesOf = (event: GapEvent): AnyValueMap => attributesWith(GAP_ATTRIBUTE_ROWS, event);

/** The event name and attributes of any event's record. */
export function recordOf(event: AgentEvent): { eventName: string; attributes: AnyValueMap } {
  switch (event.kind) {
    case 'exec':
      return { eventName: EXEC_EVENT_NAME, attributes: attributesOf(event) };
    case 'exit':
      return { eventName: EXIT_EVENT_NAME, attributes: exitAttributesOf(event) };
    case 'throttle':
      return { eventName: THROTTLE_EVENT_NAME, attributes: throttleAttributesOf(event) };
    case 'gap':
      return { eventName: GAP_EVENT_NAME, attributes: gapAttributesOf(event) };
  }
}

/**
 * A parser of `time` (RFC 3339 UTC, nine fraction digits, as formatTime writes it) into
 * [seconds, nanoseconds] that keeps the last second it parsed: the records of one second share
 * it, and a Date.parse per record was 3% of export's CPU in a profile of the agent under a storm.
 */
export function hrTimeParser(): (time: string) => [number, number] {
  let second = '';
  let seconds = 0;
  return (time) => {
    const prefix = time.slice(0, 19);
    if (prefix !== second) {
      second = prefix;
      seconds = Date.parse(`${prefix}Z`) / 1000;
    }
    return [seconds, Number(time.slice(20, 29))];
  };
}
