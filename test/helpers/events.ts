/** Synthetic ExecEvents for unit tests: a plausible pod exec, overridable field by field. */
import { eventRecord, type EventRecord } from '../../src/events/record.js';
import type { ExecEvent, ExitEvent, GapEvent, ThrottleEvent } from '../../src/events/schema.js';

/** A synthetic execId: unique per pid, URL-safe like the agent's. */
export const execIdFor = (pid: number): string => `x${pid.toString(36)}`;

let nextSeq = 1;

/** A successful exec of /usr/bin/true in shop/web-1/app; seq increases per call unless given. */
export function makeEvent(overrides: Partial<ExecEvent> = {}): ExecEvent {
  const seq = overrides.seq ?? nextSeq++;
  if (seq >= nextSeq) nextSeq = seq + 1;
  return {
    seq,
    kind: 'exec',
    time: new Date(Date.UTC(2026, 10, 24, 16, 2, 3) + seq).toISOString().replace('Z', '123456Z'),
    node: 'node-1',
    pid: 4000 + seq,
    tid: 4000 + seq,
    ppid: 4000,
    execId: execIdFor(4000 + seq),
    parentExecId: execIdFor(4000),
    uid: 1000,
    gid: 1000,
    euid: 1000,
    egid: 1000,
    euidDiffers: false,
    loginuid: null,
    sessionid: null,
    comm: 'true',
    parentComm: 'sh',
    ancestors: [],
    filename: '/usr/bin/true',
    argv: ['true'],
    argc: 1,
    argvTruncated: false,
    filenameTruncated: false,
    retval: 0,
    fileless: false,
    drift: false,
    execveat: false,
    readError: false,
    cgroupId: '4711',
    cgroup: 'cri-containerd-3f1c.scope',
    cgroupParent: 'kubepods-pod1234.slice',
    cgroupTruncated: false,
    containerId: '3f1c'.padEnd(64, '0'),
    namespace: 'shop',
    pod: 'web-1',
    podUid: '1234',
    container: 'app',
    image: 'registry.example/shop/web:1.4',
    imageId: `registry.example/shop/web@sha256:${'ab'.repeat(32)}`,
    workload: { kind: 'Deployment', name: 'web' },
    attribution: 'pod',
    origin: 'workload',
    sessionExecId: null,
    ...overrides,
  };
}

/** A host process: no container, no pod. */
export function makeHostEvent(overrides: Partial<ExecEvent> = {}): ExecEvent {
  return makeEvent({
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    image: null,
    imageId: null,
    workload: null,
    attribution: 'host',
    origin: 'host',
    cgroup: 'session-1.scope',
    cgroupParent: 'user-1000.slice',
    cgroupTruncated: false,
    ...overrides,
  });
}

/** The exit of makeEvent's process `pid` (code 0 after 1.5 s unless overridden). */
export function makeExit(overrides: Partial<ExitEvent> = {}): ExitEvent {
  const pid = overrides.pid ?? 4001;
  return {
    seq: 0,
    kind: 'exit',
    time: '2026-11-24T16:02:05.000000000Z',
    node: 'node-1',
    execId: execIdFor(pid),
    pid,
    tid: pid,
    comm: 'true',
    status: 'ok',
    code: 0,
    signal: null,
    coreDumped: false,
    duration: 1.5,
    execTime: '2026-11-24T16:02:03.500000000Z',
    orphans: 0,
    cgroupId: '4711',
    cgroup: 'cri-containerd-3f1c.scope',
    cgroupParent: 'kubepods-pod1234.slice',
    cgroupTruncated: false,
    containerId: '3f1c'.padEnd(64, '0'),
    namespace: 'shop',
    pod: 'web-1',
    podUid: '1234',
    container: 'app',
    image: 'registry.example/shop/web:1.4',
    imageId: `registry.example/shop/web@sha256:${'ab'.repeat(32)}`,
    workload: { kind: 'Deployment', name: 'web' },
    attribution: 'pod',
    origin: 'workload',
    sessionExecId: null,
    ...overrides,
  };
}

/** A throttle episode's stop of makeEvent's pod (override `phase` for a start). */
export function makeThrottle(overrides: Partial<ThrottleEvent> = {}): ThrottleEvent {
  return {
    seq: 0,
    kind: 'throttle',
    phase: 'stop',
    time: '2026-11-24T16:02:09.000000000Z',
    node: 'node-1',
    since: '2026-11-24T16:02:04.000000000Z',
    suppressed: 1200,
    pid: 4001,
    comm: 'sh',
    cgroupId: '4711',
    cgroup: 'cri-containerd-3f1c.scope',
    cgroupParent: 'kubepods-pod1234.slice',
    cgroupTruncated: false,
    containerId: '3f1c'.padEnd(64, '0'),
    namespace: 'shop',
    pod: 'web-1',
    podUid: '1234',
    container: 'app',
    image: 'registry.example/shop/web:1.4',
    imageId: `registry.example/shop/web@sha256:${'ab'.repeat(32)}`,
    workload: { kind: 'Deployment', name: 'web' },
    attribution: 'pod',
    ...overrides,
  };
}

/** A gap of 12 events, most of them web-1's. */
export function makeGap(overrides: Partial<GapEvent> = {}): GapEvent {
  return {
    seq: 0,
    kind: 'gap',
    time: '2026-11-24T16:02:10.000000000Z',
    node: 'node-1',
    lost: 12,
    from: '2026-11-24T16:02:08.000000000Z',
    to: '2026-11-24T16:02:09.500000000Z',
    pods: [{ namespace: 'shop', pod: 'web-1', lost: 10 }, { namespace: null, pod: null, lost: 2 }],
    ...overrides,
  };
}

/** makeEvent as the ring and the stream hold it. */
export function makeRecord(overrides: Partial<ExecEvent> = {}): EventRecord {
  return eventRecord(makeEvent(overrides));
}
