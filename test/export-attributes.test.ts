// The OTLP mapping, field by field: the attribute names a user's queries in Loki, Elasticsearch or
// a SIEM will name, written out here rather than read back from the table they check.
import t from 'tap';
import { attributesOf, exitAttributesOf, hrTimeParser, OTLP_EXIT_MAPPING, OTLP_GAP_MAPPING, OTLP_MAPPING, OTLP_THROTTLE_MAPPING, recordOf } from '../src/export/attributes.js';
import { ExecEventSchema, ExitEventSchema, GapEventSchema, ThrottleEventSchema } from '../src/events/schema.js';
import { makeEvent, makeExit, makeGap, makeHostEvent, makeThrottle } from './helpers/events.js';

t.test('every field of the event schema has exactly one row, in schema order', async (t) => {
  t.same(OTLP_MAPPING.map((row) => row.field), Object.keys(ExecEventSchema.properties), 'one row per schema property');
});

t.test('a pod exec: each field under its semantic-convention name', async (t) => {
  const event = makeEvent({
    seq: 7, pid: 4242, tid: 4243, ppid: 4200, uid: 1000, gid: 1001, comm: 'curl', parentComm: 'sh',
    filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'], argc: 3, retval: -13,
    execId: 'e1', parentExecId: 'p1', origin: 'exec', sessionExecId: 'e1', euid: 0, egid: 1002, euidDiffers: true, loginuid: 1000, sessionid: 3,
    ancestors: [{ execId: 'p1', pid: 4200, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c'] }],
    exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'ok', code: 0, signal: null, coreDumped: false, duration: 2 },
    argvTruncated: true, filenameTruncated: false, fileless: true, drift: true, execveat: true, readError: false,
    argvBase64: 'Y3VybAA=', filenameBase64: 'L3Vzcg==',
  });
  const expected: Record<string, unknown> = {
    'execwatch.seq': 7,
    'process.pid': 4242,
    'thread.id': 4243,
    'process.parent_pid': 4200,
    'execwatch.exec_id': 'e1',
    'execwatch.parent_exec_id': 'p1',
    'user.id': '1000',
    'execwatch.gid': 1001,
    'process.user.id': 0,
    'execwatch.egid': 1002,
    'execwatch.euid_differs': true,
    'execwatch.loginuid': 1000,
    'execwatch.audit_session_id': 3,
    'execwatch.comm': 'curl',
    'execwatch.parent_comm': 'sh',
    'execwatch.ancestors': [{ execId: 'p1', pid: 4200, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c'] }],
    'process.executable.path': '/usr/bin/curl',
    'process.command_args': ['curl', '-s', 'http://example'],
    'process.args_count': 3,
    'execwatch.argv_truncated': true,
    'execwatch.retval': -13,
    'execwatch.fileless': true,
    'execwatch.drift': true,
    'execwatch.execveat': true,
    'execwatch.cgroup_id': '4711',
    'execwatch.cgroup': 'cri-containerd-3f1c.scope',
    'execwatch.cgroup_parent': 'kubepods-pod1234.slice',
    'container.id': '3f1c'.padEnd(64, '0'),
    'k8s.namespace.name': 'shop',
    'k8s.pod.name': 'web-1',
    'k8s.pod.uid': '1234',
    'k8s.container.name': 'app',
    'container.image.name': 'registry.example/shop/web',
    'container.image.tags': ['1.4'],
    'container.image.repo_digests': [`registry.example/shop/web@sha256:${'ab'.repeat(32)}`],
    'k8s.deployment.name': 'web',
    'execwatch.attribution': 'pod',
    'execwatch.origin': 'exec',
    'execwatch.session_exec_id': 'e1',
    'execwatch.argv_base64': 'Y3VybAA=',
    'execwatch.filename_base64': 'L3Vzcg==',
  };
  const got = attributesOf(event);
  for (const [name, value] of Object.entries(expected)) t.same(got[name], value, name);
  t.same(Object.keys(got).sort(), Object.keys(expected).sort(), 'no other attribute');
});

t.test('a host exec: the pod attributes and the optional fields are absent, not null', async (t) => {
  const got = attributesOf(makeHostEvent());
  for (const name of ['container.id', 'container.image.name', 'container.image.tags', 'container.image.repo_digests', 'k8s.namespace.name', 'k8s.pod.name', 'k8s.pod.uid', 'k8s.container.name', 'execwatch.argv_base64', 'execwatch.filename_base64', 'execwatch.loginuid', 'execwatch.audit_session_id']) {
    t.notOk(name in got, `${name} absent`);
  }
  t.notOk(Object.keys(got).some((k) => /^k8s\.|workload/.test(k)), 'no workload attribute');
  t.equal(got['execwatch.attribution'], 'host', 'attribution host');
});

t.test('a flag is an attribute only when it is true: absent means false', async (t) => {
  const flags = {
    argvTruncated: 'execwatch.argv_truncated', filenameTruncated: 'execwatch.filename_truncated', fileless: 'execwatch.fileless',
    execveat: 'execwatch.execveat', readError: 'execwatch.read_error', cgroupTruncated: 'execwatch.cgroup_truncated',
  } as const;
  const set = attributesOf(makeEvent(Object.fromEntries(Object.keys(flags).map((f) => [f, true]))));
  const unset = attributesOf(makeEvent(Object.fromEntries(Object.keys(flags).map((f) => [f, false]))));
  for (const name of Object.values(flags)) {
    t.equal(set[name], true, `${name}: true when set`);
    t.notOk(name in unset, `${name}: absent when false`);
  }
});

t.test('an image reference: its repository as the name, its tag apart, none for a digest-only reference', async (t) => {
  const image = (ref: string) => {
    const got = attributesOf(makeEvent({ image: ref }));
    return { name: got['container.image.name'], tags: got['container.image.tags'] };
  };
  t.same(image('registry:5000/app:2'), { name: 'registry:5000/app', tags: ['2'] }, 'a registry port is not a tag');
  t.same(image('nginx:1.27@sha256:abc'), { name: 'nginx', tags: ['1.27'] }, 'tag and digest');
  t.same(image('nginx@sha256:abc'), { name: 'nginx', tags: undefined }, 'digest only: no tag');
  t.same(image('nginx'), { name: 'nginx', tags: undefined }, 'a bare name');
});

t.test('each workload kind under its own k8s.<kind>.name; other kinds under execwatch.workload.*', async (t) => {
  const cases = [
    ['Deployment', { 'k8s.deployment.name': 'w' }],
    ['ReplicaSet', { 'k8s.replicaset.name': 'w' }],
    ['StatefulSet', { 'k8s.statefulset.name': 'w' }],
    ['DaemonSet', { 'k8s.daemonset.name': 'w' }],
    ['Job', { 'k8s.job.name': 'w' }],
    ['CronJob', { 'k8s.cronjob.name': 'w' }],
    ['Pod', {}],
    ['Rollout', { 'execwatch.workload.kind': 'Rollout', 'execwatch.workload.name': 'w' }],
    ['constructor', { 'execwatch.workload.kind': 'constructor', 'execwatch.workload.name': 'w' }],
  ] as const;
  for (const [kind, want] of cases) {
    const got = attributesOf(makeEvent({ workload: { kind, name: 'w' } }));
    const workloadAttrs = Object.fromEntries(Object.entries(got).filter(([k]) => /^k8s\.(?!namespace|pod|container)|^execwatch\.workload/.test(k)));
    t.same(workloadAttrs, want, kind);
  }
});

t.test('the timestamp is the exec time to the nanosecond', async (t) => {
  const hrTimeOf = hrTimeParser();
  t.same(hrTimeOf('2026-11-24T16:02:03.123456789Z'), [Date.UTC(2026, 10, 24, 16, 2, 3) / 1000, 123456789], 'seconds and nanoseconds');
  t.same(hrTimeOf('2026-11-24T16:02:03.000000007Z'), [Date.UTC(2026, 10, 24, 16, 2, 3) / 1000, 7], 'another time in the same second');
  t.same(hrTimeOf('2026-11-24T16:02:04.500000000Z'), [Date.UTC(2026, 10, 24, 16, 2, 4) / 1000, 500000000], 'the next second');
  t.same(hrTimeOf('1970-01-01T00:00:00.000000001Z'), [0, 1], 'the epoch plus one');
  t.same(hrTimeParser()('2026-11-24T16:02:04.000000000Z'), [Date.UTC(2026, 10, 24, 16, 2, 4) / 1000, 0], 'a parser of its own remembers nothing of another');
});

t.test('exit records: one row per field of the exit schema, and each field under its name', async (t) => {
  t.same(OTLP_EXIT_MAPPING.map((row) => row.field), Object.keys(ExitEventSchema.properties), 'one row per schema property, in order');
  const exit = makeExit({ pid: 4242, tid: 4243, comm: 'sh', status: 'signal', code: null, signal: 11, coreDumped: true, duration: 2.5, orphans: 2 });
  const expected: Record<string, unknown> = {
    'execwatch.seq': 0,
    'execwatch.exec_id': exit.execId,
    'process.pid': 4242,
    'thread.id': 4243,
    'execwatch.comm': 'sh',
    'execwatch.exit.status': 'signal',
    'execwatch.exit.signal': 11,
    'execwatch.exit.core_dumped': true,
    'execwatch.exit.duration': 2.5,
    'process.creation.time': '2026-11-24T16:02:03.500000000Z',
    'execwatch.exit.orphans': 2,
    'execwatch.cgroup_id': '4711',
    'execwatch.cgroup': 'cri-containerd-3f1c.scope',
    'execwatch.cgroup_parent': 'kubepods-pod1234.slice',
    'container.id': '3f1c'.padEnd(64, '0'),
    'k8s.namespace.name': 'shop',
    'k8s.pod.name': 'web-1',
    'k8s.pod.uid': '1234',
    'k8s.container.name': 'app',
    'container.image.name': 'registry.example/shop/web',
    'container.image.tags': ['1.4'],
    'container.image.repo_digests': [`registry.example/shop/web@sha256:${'ab'.repeat(32)}`],
    'k8s.deployment.name': 'web',
    'execwatch.attribution': 'pod',
    'execwatch.origin': 'workload',
  };
  const got = exitAttributesOf(exit);
  for (const [name, value] of Object.entries(expected)) t.same(got[name], value, name);
  t.same(Object.keys(got).sort(), Object.keys(expected).sort(), 'no other attribute: a null code and a false flag are left out');
  const ok = exitAttributesOf(makeExit({ status: 'ok', code: 0 }));
  t.same([ok['process.exit.code'], 'execwatch.exit.signal' in ok, 'execwatch.exit.core_dumped' in ok], [0, false, false], 'an exit code: process.exit.code, no signal');
});

t.test('throttle and gap records: one row per field of their schemas, their event names, their attributes', async (t) => {
  t.same(OTLP_THROTTLE_MAPPING.map((row) => row.field), Object.keys(ThrottleEventSchema.properties), 'throttle: one row per schema property, in order');
  t.same(OTLP_GAP_MAPPING.map((row) => row.field), Object.keys(GapEventSchema.properties), 'gap: likewise');
  const throttle = recordOf(makeThrottle({ seq: 5 }));
  t.equal(throttle.eventName, 'execwatch.throttle', 'a throttle\'s event name');
  t.match(throttle.attributes, {
    'execwatch.seq': 5, 'execwatch.throttle.phase': 'stop', 'execwatch.throttle.since': '2026-11-24T16:02:04.000000000Z', 'execwatch.throttle.suppressed': 1200,
    'process.pid': 4001, 'execwatch.comm': 'sh', 'execwatch.cgroup_id': '4711', 'k8s.namespace.name': 'shop', 'k8s.pod.name': 'web-1', 'k8s.container.name': 'app',
    'container.image.name': 'registry.example/shop/web', 'k8s.deployment.name': 'web', 'execwatch.attribution': 'pod',
  }, 'its fields under their names, the pod\'s as an exec\'s');
  const gap = recordOf(makeGap({ seq: 6 }));
  t.same(gap, {
    eventName: 'execwatch.gap',
    attributes: {
      'execwatch.seq': 6, 'execwatch.gap.lost': 12, 'execwatch.gap.from': '2026-11-24T16:02:08.000000000Z', 'execwatch.gap.to': '2026-11-24T16:02:09.500000000Z',
      'execwatch.gap.pods': [{ namespace: 'shop', pod: 'web-1', lost: 10 }, { lost: 2 }],
    },
  }, 'a gap: how many, when, whose (a host\'s entry without names)');
  t.equal(recordOf(makeEvent()).eventName, 'process.exec', 'an exec\'s');
  t.equal(recordOf(makeExit()).eventName, 'process.exit', 'an exit\'s');
});
