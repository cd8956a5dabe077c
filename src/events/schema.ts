/**
 * The event's shape, once. The ExecEvent type, the response schemas of GET /api/events and of the
 * stream, the README's field table and the OTLP mapping all derive from it. Field names never
 * change; fields are added, here, with the place their value comes from (src/capture/decode.ts
 * for the kernel's, src/enrich for the pod's).
 *
 * The one serializer is JSON.stringify: V8's own is the fastest writer of a plain object and gives
 * one flat string. It writes keys in the object's order, so events are made in one place
 * (src/capture/decode.ts, one function per kind), every key present from the start in schema
 * order (null, 0 or false until known; the optional ones last, in order):
 * test/schema.test.ts holds that, and TypeScript holds the types.
 */
import { Type, type Static } from '@sinclair/typebox';

/** A string or null. `type: [..., 'null']` rather than a union: the serializer writes it without validating. */
const NullableString = (description: string) => Type.Unsafe<string | null>({ type: ['string', 'null'], description });

const U32 = (description: string) => Type.Integer({ minimum: 0, maximum: 4_294_967_295, description });

/** The controller that owns a pod, resolved through owner references. */
const WorkloadSchema = Type.Object(
  { kind: Type.String(), name: Type.String() },
  { additionalProperties: false },
);
export type Workload = Static<typeof WorkloadSchema>;

/**
 * How the pod fields were found, as `execwatch_enrichment_total{result}` counts it: `pod` (the
 * container id or the pod UID in the cgroup names is a known pod's), `host` (no container in the
 * cgroup names), `unresolved` (a container no known pod names, or standalone mode), `conflict`
 * (the cgroup names claim a container of one pod from inside another: no pod is named).
 */
export const ATTRIBUTIONS = ['pod', 'host', 'unresolved', 'conflict'] as const;
export type Attribution = (typeof ATTRIBUTIONS)[number];

/**
 * Where an exec came from (README, "Where an exec came from"): `host` (not in a container), `init`
 * (the container's first process), `workload` (a descendant of it), `exec` (started into the running
 * container from outside its pid namespace: `kubectl exec`), `probe` (such an exec whose argv is an
 * exec probe of the container), `debug` (in an ephemeral container: `kubectl debug`).
 */
export const ORIGINS = ['host', 'init', 'workload', 'exec', 'probe', 'debug'] as const;
export type Origin = (typeof ORIGINS)[number];

/** How a process ended, as execwatch_exits_total{status} counts it. */
export const EXIT_STATUSES = ['ok', 'error', 'signal'] as const;
export type ExitStatus = (typeof EXIT_STATUSES)[number];

const NullableU32 = (description: string) => Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 0, maximum: 4_294_967_295, description });

/** The end of a process, shared by the exit event and the exec event's `exit`. */
const exitFields = {
  status: Type.Unsafe<ExitStatus>({
    type: 'string',
    enum: EXIT_STATUSES,
    description: '`ok` (exit code 0), `error` (another exit code) or `signal` (killed by a signal).',
  }),
  code: Type.Unsafe<number | null>({ type: ['integer', 'null'], description: 'The exit code (0-255), as `$?` shows it; null when a signal ended the process.' }),
  signal: Type.Unsafe<number | null>({ type: ['integer', 'null'], description: 'The signal that ended the process (9 SIGKILL, 11 SIGSEGV); null after an exit.' }),
  coreDumped: Type.Boolean({ description: 'The signal wrote a core dump.' }),
  duration: Type.Number({ description: 'Seconds from the exec to the end of the last thread, to the nanosecond (both kernel timestamps).' }),
};

/** `exit` of an exec event: how the image it started ended. */
const ExecExitSchema = Type.Object(
  { time: Type.String({ description: 'Wall-clock time of the exit.' }), ...exitFields },
  { additionalProperties: false },
);
export type ExecExit = Static<typeof ExecExitSchema>;

/** One entry of `ancestors`. */
const ORIGIN_DESCRIPTION =
  'Where the exec came from: `host` (not in a container), `init` (the container\'s first process: pid 1 of its pid namespace), `workload` (a descendant of the init), `exec` (started into the running container from outside its pid namespace, as `kubectl exec` does, and its descendants), `probe` (such an exec whose argv is exactly an exec probe\'s `command` of that container, and its descendants) or `debug` (in an ephemeral container: `kubectl debug`). A failed exec has its caller\'s. See "Where an exec came from" in the README.';
const SESSION_DESCRIPTION =
  'The `execId` of the process that started this one\'s `exec` or `debug` session: the process that entered the container (its own for that one), inherited by everything started from it; null for other origins. `?sessionExecId=` lists one `kubectl exec` session.';

export const AncestorSchema = Type.Object(
  {
    execId: Type.String(),
    pid: Type.Integer({ minimum: 0 }),
    comm: Type.String(),
    filename: Type.String(),
    argv: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

/** One exec seen by the kernel, successful or failed, enriched with pod metadata when known. */
export const ExecEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'Increases by one per delivered event within one agent run, in delivery order; the SSE `id`.' }),
    kind: Type.Literal('exec', { description: 'What the record is: `exec` for an exec event. Other kinds (a process\'s exit, a throttle, a gap) carry their own fields; a reader of `--log-events` or the stream tells them apart by this.' }),
    time: Type.String({ description: 'Wall-clock time of the exec, RFC 3339 with nanoseconds, UTC.' }),
    node: Type.String({ description: '`--node-name`.' }),
    pid: U32('The process (thread-group id).'),
    tid: U32('The thread that called exec (after exec the process runs as its thread-group leader).'),
    ppid: U32('The parent process at the exec (`real_parent`): pid 1 or a subreaper when the process that forked it has exited since (see `parentExecId`).'),
    execId: Type.String({
      description:
        'The process\'s id across the cluster: the same in the API, the stream, the log and the exit event, and for every exec the process makes (as its pid). Opaque, URL-safe; made of the node, the boot id, the process\'s start time (/proc/PID/stat field 22) and its pid, so it never names another process.',
    }),
    parentExecId: Type.String({
      description:
        'The `execId` of the process that forked this one, as its parent then: `ppid`\'s, unless that parent exited before this exec (the kernel then gave the process to pid 1 or a subreaper, which `ppid` names); `ancestors` follow it too. A parent that only forked and never exec\'d (a subshell, a pre-fork server\'s worker) runs its own parent\'s image: the process names that one instead, while it lives. For a process forked before the agent started, `ppid`\'s at its first exec seen.',
    }),
    uid: U32('Real user id.'),
    gid: U32('Real group id.'),
    euid: U32('Effective user id of the new image (a setuid binary\'s owner); of the caller for a failed exec.'),
    egid: U32('Effective group id, likewise.'),
    euidDiffers: Type.Boolean({ description: 'The effective user id is not the real one (`sudo id`: uid 1000, euid 0).' }),
    loginuid: NullableU32('Audit login uid (/proc/PID/loginuid); null when unset (no login session) or the kernel has no audit.'),
    sessionid: NullableU32('Audit session id (/proc/PID/sessionid); null likewise.'),
    comm: Type.String({ description: 'Process name of the new image (15 bytes, as the kernel keeps it).' }),
    parentComm: Type.String({ description: 'Process name of the parent (`ppid`).' }),
    ancestors: Type.Array(AncestorSchema, {
      description:
        'The parent, its parent, … nearest first, up to `--ancestors` (default 4; 0: always `[]`): `{"execId", "pid", "comm", "filename", "argv"}` (argv: the first 256 bytes of arguments). Stops at pid 1, at a process the agent never knew, and, in a container, at the container\'s first process. Known from the agent\'s process table: processes running at start (read from /proc) and every exec since.',
    }),
    filename: Type.String({
      description:
        'The path as passed to exec. For `execveat`, what the kernel reports: `/dev/fd/N/relative` with a directory fd, `/dev/fd/N` with `AT_EMPTY_PATH`.',
    }),
    argv: Type.Array(Type.String(), {
      description:
        'Read from the new process image, so it matches `/proc/PID/cmdline`; cut at `--argv-max-bytes`. Bytes that are not UTF-8 show as U+FFFD. For an exec with `argv == NULL` it is `[]`, or `[""]` on kernels that insert an empty argument (5.18 and later).',
    }),
    argc: U32('Arguments the kernel counted (more than `argv` holds when truncated).'),
    argvTruncated: Type.Boolean({ description: 'argv was cut at the byte budget.' }),
    filenameTruncated: Type.Boolean({ description: 'The filename was cut at 4096 bytes.' }),
    retval: Type.Integer({ description: '0 for a successful exec, the negative errno of a failed one (`-2` ENOENT, `-13` EACCES).' }),
    fileless: Type.Boolean({ description: 'The executed file has no link in any directory (memfd, deleted file).' }),
    drift: Type.Boolean({
      description:
        'The executed file is on the upper (writable) layer of an overlay filesystem, as a container\'s root is: written or changed (even only chmod) after the container started, so not from its image. Read from the file being executed: a file deleted right after is still caught. Always false outside overlayfs, and where overlayfs is a kernel module that was not loaded yet when the agent started.',
    }),
    execveat: Type.Boolean({ description: 'The exec came through `execveat(2)`.' }),
    readError: Type.Boolean({ description: 'argv or the filename could not be read completely; what was read is kept.' }),
    cgroupId: Type.String({ description: 'cgroup v2 id (the cgroup directory\'s inode number), decimal.' }),
    cgroup: Type.String({ description: 'Name of the process\'s cgroup directory at exec time (up to 255 bytes).' }),
    cgroupParent: Type.String({ description: 'Name of that directory\'s parent (up to 127 bytes).' }),
    cgroupTruncated: Type.Boolean({ description: 'A cgroup name was longer than that.' }),
    containerId: NullableString('From the cgroup names (all 64 hex digits), for every runtime layout in use; null for host processes.'),
    namespace: NullableString('The pod\'s namespace, from the API server; null for host processes and for containers whose pod is not known.'),
    pod: NullableString('The pod\'s name; null likewise.'),
    podUid: NullableString('The pod\'s UID; null likewise.'),
    container: NullableString('The container\'s name in the pod spec; null likewise.'),
    image: NullableString('The container\'s image as its runtime reports it in the pod\'s status (`docker.io/library/nginx:1.27`); null without a container, or before the status names it.'),
    imageId: NullableString('The image\'s id from the pod\'s status (`imageID`: a digest reference, `docker.io/library/nginx@sha256:…`), which names the exact bytes a tag may since have moved from; null likewise.'),
    workload: Type.Unsafe<Workload | null>({
      ...WorkloadSchema,
      type: ['object', 'null'],
      description:
        '`{"kind", "name"}` of the pod\'s controller (a ReplicaSet resolves to its Deployment, a Job to its CronJob; a bare pod is `Pod`); null without a pod.',
    }),
    attribution: Type.Unsafe<Attribution>({
      type: 'string',
      enum: ATTRIBUTIONS,
      description:
        'How the pod fields were found: `pod`, `host` (no container), `unresolved` (no known pod names the container; always so in standalone mode) or `conflict`: the cgroup names claim a container of one pod from inside another pod\'s cgroup (a pod that can write cgroupfs borrowing another\'s identity), so no pod is named; `cgroup` and `cgroupParent` show both claims.',
    }),
    origin: Type.Unsafe<Origin>({ type: 'string', enum: ORIGINS, description: ORIGIN_DESCRIPTION }),
    sessionExecId: NullableString(SESSION_DESCRIPTION),
    argvBase64: Type.Optional(
      Type.String({ description: 'Only when some argument is not UTF-8: the exact argv bytes, NUL-separated, so nothing is replaced silently.' }),
    ),
    filenameBase64: Type.Optional(Type.String({ description: 'Only when the filename is not UTF-8: its exact bytes.' })),
    exit: Type.Optional(
      Type.Unsafe<ExecExit>({
        ...ExecExitSchema,
        description:
          'Only once the process has ended (API, page and stream replay; never on the exec\'s own stream frame or log line): `{"time", "status", "code", "signal", "coreDumped", "duration"}`, as its exit event says.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** One exec seen by the kernel: what /api/events, the stream, the page and --log-events carry. */
export type ExecEvent = Static<typeof ExecEventSchema>;

/**
 * Where a process ran (its cgroup, then its pod), the fields exit and throttle events share with
 * the exec event and describe by reference to it: the first two descriptions are given.
 */
const whereFields = (cgroupId: string, cgroup: string) => ({
  cgroupId: Type.String({ description: cgroupId }),
  cgroup: Type.String({ description: cgroup }),
  cgroupParent: Type.String({ description: 'Likewise.' }),
  cgroupTruncated: Type.Boolean({ description: 'Likewise.' }),
  containerId: NullableString('Likewise.'),
  namespace: NullableString('Likewise.'),
  pod: NullableString('Likewise.'),
  podUid: NullableString('Likewise.'),
  container: NullableString('Likewise.'),
  image: NullableString('Likewise.'),
  imageId: NullableString('Likewise.'),
  workload: Type.Unsafe<Workload | null>({ ...WorkloadSchema, type: ['object', 'null'], description: 'Likewise.' }),
  attribution: Type.Unsafe<Attribution>({ type: 'string', enum: ATTRIBUTIONS, description: 'Likewise.' }),
});

/**
 * The end of a process whose exec was reported (the kernel keeps no other): sent once, by the
 * last thread to leave, with the exec's `execId`.
 */
export const ExitEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'As for an exec: one sequence for every event delivered.' }),
    kind: Type.Literal('exit', { description: '`exit`.' }),
    time: Type.String({ description: 'Wall-clock time of the exit (the last thread\'s), RFC 3339 with nanoseconds, UTC.' }),
    node: Type.String({ description: '`--node-name`.' }),
    execId: Type.String({ description: 'The `execId` of the exec event of the image that ended.' }),
    pid: U32('The process (thread-group id).'),
    tid: U32('The last thread to leave.'),
    comm: Type.String({ description: 'Process name at the exit.' }),
    ...exitFields,
    execTime: Type.String({ description: 'Wall-clock time of the exec, as its event\'s `time`.' }),
    orphans: U32(
      'Processes it forked (since the agent started) still running when it ended, with those its forks that never exec\'d forked while it lived: the kernel gave them to pid 1 or a subreaper, which their `ppid` names; their exec events still name this process in `parentExecId` and `ancestors`.',
    ),
    ...whereFields('As in the exec event, at the exit.', 'Likewise.'),
    origin: Type.Unsafe<Origin>({ type: 'string', enum: ORIGINS, description: 'As its exec event\'s (`workload` for a process the agent did not see exec).' }),
    sessionExecId: NullableString('As its exec event\'s.'),
  },
  { additionalProperties: false },
);

/** The end of a process: what the stream (`event: exit`) and --log-events carry. */
export type ExitEvent = Static<typeof ExitEventSchema>;


/** `start` or `stop` of a throttle episode. */
export const THROTTLE_PHASES = ['start', 'stop'] as const;
export type ThrottlePhase = (typeof THROTTLE_PHASES)[number];

/**
 * A cgroup went over --cgroup-rate (`start`, from the kernel at its first throttled exec), or its
 * rate fell again (`stop`, from the agent once no exec of it was throttled for a second), with the
 * execs suppressed in between.
 */
export const ThrottleEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'As for an exec: one sequence for every event delivered.' }),
    kind: Type.Literal('throttle', { description: '`throttle`.' }),
    phase: Type.Unsafe<ThrottlePhase>({
      type: 'string',
      enum: THROTTLE_PHASES,
      description: '`start`: the cgroup\'s first exec above its rate; `stop`: none of its execs was throttled for a second.',
    }),
    time: Type.String({ description: 'Wall-clock time of the first throttled exec (`start`) or of the last one (`stop`), RFC 3339 with nanoseconds, UTC.' }),
    node: Type.String({ description: '`--node-name`.' }),
    since: Type.String({ description: 'When the episode began: the `time` of its `start`.' }),
    suppressed: Type.Integer({ minimum: 0, description: 'Execs of the cgroup not delivered in the episode (counted in `execwatch_events_throttled_total`); 0 on `start`.' }),
    pid: U32('The process whose exec was the first throttled (0 when the start record itself was lost to a full ring).'),
    comm: Type.String({ description: 'Its process name (empty likewise).' }),
    ...whereFields('cgroup v2 id of the throttled cgroup, decimal, as in the exec event.', 'As in the exec event (of the first throttled exec).'),
  },
  { additionalProperties: false },
);

/** A throttle episode's start or stop: what the stream (`event: throttle`), the API and --log-events carry. */
export type ThrottleEvent = Static<typeof ThrottleEventSchema>;

/** Pods that lost events in a gap, the most first. */
const GapPodSchema = Type.Object(
  {
    namespace: Type.Unsafe<string | null>({ type: ['string', 'null'] }),
    pod: Type.Unsafe<string | null>({ type: ['string', 'null'] }),
    lost: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type GapPod = Static<typeof GapPodSchema>;

/** Events the ring buffer had no room for: the feed is incomplete between `from` and `to`. */
export const GapEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'As for an exec: one sequence for every event delivered.' }),
    kind: Type.Literal('gap', { description: '`gap`.' }),
    time: Type.String({ description: 'When the agent found the loss (it looks every second), RFC 3339 with nanoseconds, UTC.' }),
    node: Type.String({ description: '`--node-name`.' }),
    lost: Type.Integer({ minimum: 1, description: 'Events (execs and exits) the kernel could not put in the ring buffer (`execwatch_events_lost_total{stage="ringbuf_full"}`).' }),
    from: Type.String({ description: 'The feed is complete up to here: when the agent last found nothing lost.' }),
    to: Type.String({ description: 'The last loss.' }),
    pods: Type.Array(GapPodSchema, {
      description:
        'Whose events were lost: `{"namespace", "pod", "lost"}`, the most first, up to 10 (the rest as pod `_other`); null names for host processes and for cgroups whose pod is not known.',
    }),
  },
  { additionalProperties: false },
);

/** A gap in the feed: what the stream (`event: gap`), the API and --log-events carry. */
export type GapEvent = Static<typeof GapEventSchema>;

/** The kinds the kernel's records decode to: each names its cgroup, and is enriched with its pod. */
export type KernelEvent = ExecEvent | ExitEvent | ThrottleEvent;

/** Every kind of event the pipeline delivers. */
export type AgentEvent = KernelEvent | GapEvent;

/** The kinds of event, as `kind` and the SSE `event:` name them. */
export const EVENT_KINDS = ['exec', 'exit', 'throttle', 'gap'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** The event's JSON text: keys in its kind's schema order (see the top of this file), optional fields only when set. */
export const serializeEvent = (event: AgentEvent): string => JSON.stringify(event);

const NS_PER_S = 1_000_000_000n;

/**
 * `time` of an event at `ns` nanoseconds since the epoch: RFC 3339, UTC, always nine fraction
 * digits (POSIX time: no leap seconds). Fixed width, so two such texts compare as their times do.
 */
export function formatTime(ns: bigint): string {
  let second = ns / NS_PER_S;
  let nanos = ns % NS_PER_S;
  // BigInt division truncates toward zero; before 1970 the fraction must still count forward.
  if (nanos < 0n) {
    nanos += NS_PER_S;
    second -= 1n;
  }
  return `${new Date(Number(second) * 1000).toISOString().slice(0, 20)}${String(nanos).padStart(9, '0')}Z`;
}

/** The body of GET /api/events: exec events, and throttle and gap events when `kind` asks for them. */
export const EventsBody = Type.Object({
  events: Type.Array(Type.Union([ExecEventSchema, ThrottleEventSchema, GapEventSchema])),
  lastSeq: Type.Integer({
    minimum: 0,
    description:
      'The `seq` of the last event delivered when this answer was made, of any kind and matching or not (0 before any): the stream asked with `after` it (or `Last-Event-ID`) replays what was delivered since and the ring still holds, then goes on live, also when `events` is empty.',
  }),
});

/** The body of GET /api/processes/:execId. */
export const ProcessBody = Type.Object({
  exec: ExecEventSchema,
  ancestors: Type.Array(AncestorSchema),
  children: Type.Array(ExecEventSchema),
  /** The exec events of the session this process started (its own `exec` or `debug` one), newest first. */
  session: Type.Array(ExecEventSchema),
  /**
   * The process's own exec attempts that failed (same execId, retval not 0), newest first: what it
   * tried before or besides the image it runs (a PATH search's misses, a denied binary).
   */
  failed: Type.Array(ExecEventSchema),
});
