// The agent on the real kernel with OTLP export on: a real exec reaches a local OTLP receiver
// (decoding the real encodings) as one log record whose every attribute matches the event the
// events API serves, over http/protobuf, grpc and http/json, redacted, with the configured headers.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { OTLP_PROTOCOLS } from '../src/config.js';
import type { ExecEvent } from '../src/events/schema.js';
import { ensureTracefs, kernelTest, marker, waitFor } from './helpers/kernel.js';
import { configOf } from './helpers/kube.js';
import { startGrpcReceiver, startHttpReceiver, type ReceivedRecord } from './helpers/otlp.js';

const LISTEN_ANYWHERE = ['--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', '--log-level', 'warn'];

/** Runs a command to its end. */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
}

/** What the events API holds of execs whose argv carries `m`. */
async function apiEvents(apiUrl: string, m: string): Promise<ExecEvent[]> {
  const res = await fetch(`${apiUrl}/api/events?q=${encodeURIComponent(m)}&limit=10000`);
  return ((await res.json()) as { events: ExecEvent[] }).events;
}

/** The event's RFC 3339 time as nanoseconds since the epoch, in decimal. */
function nanos(time: string): string {
  return `${BigInt(Date.parse(`${time.slice(0, 19)}Z`)) * 1_000_000n + BigInt(time.slice(20, 29))}`;
}

/**
 * The record attributes an event must become, written out field by field (the names a user's
 * queries use), independent of the mapping table under test. Null fields are absent.
 */
function expectedAttributes(e: ExecEvent): Record<string, unknown> {
  const all: Record<string, unknown> = {
    'execwatch.seq': e.seq, 'process.pid': e.pid, 'thread.id': e.tid, 'process.parent_pid': e.ppid,
    'user.id': String(e.uid), 'execwatch.gid': e.gid, 'execwatch.comm': e.comm, 'execwatch.parent_comm': e.parentComm,
    'process.executable.path': e.filename, 'process.command_args': e.argv, 'process.args_count': e.argc,
    'execwatch.argv_truncated': e.argvTruncated, 'execwatch.filename_truncated': e.filenameTruncated,
    'execwatch.retval': e.retval, 'execwatch.fileless': e.fileless, 'execwatch.execveat': e.execveat,
    'execwatch.read_error': e.readError, 'execwatch.cgroup_id': e.cgroupId, 'execwatch.cgroup': e.cgroup,
    'execwatch.cgroup_parent': e.cgroupParent, 'execwatch.cgroup_truncated': e.cgroupTruncated,
    'container.id': e.containerId, 'k8s.namespace.name': e.namespace, 'k8s.pod.name': e.pod, 'k8s.pod.uid': e.podUid,
    'k8s.container.name': e.container, 'execwatch.attribution': e.attribution,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null));
}

t.test('OTLP export on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const binding = loadNativeBinding();
  const dir = t.testdir({});
  // A copy of true under a name no one else runs: its comm picks out this test's execs.
  const comm = `eo${Math.random().toString(36).slice(2, 9)}`;
  const bin = join(dir, comm);
  copyFileSync('/usr/bin/true', bin);
  chmodSync(bin, 0o755);

  for (const protocol of OTLP_PROTOCOLS) {
    t.test(protocol, async (t) => {
      const headersBefore = process.env.OTEL_EXPORTER_OTLP_HEADERS;
      process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-scope-orgid=execwatch-test';
      t.teardown(() => {
        if (headersBefore === undefined) delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
        else process.env.OTEL_EXPORTER_OTLP_HEADERS = headersBefore;
      });
      const receiver = protocol === 'grpc' ? await startGrpcReceiver() : await startHttpReceiver();
      t.teardown(() => receiver.close());
      const agent = await startAgent(
        configOf([...LISTEN_ANYWHERE, '--node-name', 'otlp-node', '--otlp-endpoint', receiver.url, '--otlp-protocol', protocol, '--redact', 'pw=\\S+']),
        { binding, stdout: new Writable({ write: (_c, _e, done) => done() }), version: '9.9.9' },
      );
      t.teardown(() => agent.close());

      const m = marker(`otlp-${protocol.replace('/', '-')}`);
      await run(bin, [m, 'pw=hunter2', 'two words']);
      const ours = (r: ReceivedRecord) => r.attributes['execwatch.comm'] === comm && (r.attributes['process.command_args'] as string[]).includes(m);
      await waitFor(() => receiver.records.some(ours), `the exec reaches the ${protocol} receiver`, 15_000);
      const [event] = (await apiEvents(agent.apiUrl, m)).filter((e) => e.comm === comm);
      const records = receiver.records.filter(ours);
      t.equal(records.length, 1, 'one record for the one exec');
      const record = records[0] as ReceivedRecord;
      if (!event) throw new Error('the events API does not have the exec');

      t.equal(record.encoding, protocol, `received as ${protocol}`);
      t.equal(record.eventName, 'process.exec', 'event name');
      t.equal(record.timeUnixNano, nanos(event.time), 'timestamp: the exec time, to the nanosecond');
      t.same(record.resource, { 'service.name': 'execwatch', 'service.version': '9.9.9', 'k8s.node.name': 'otlp-node', 'host.name': 'otlp-node' }, 'resource');
      const expected = expectedAttributes(event);
      for (const [name, value] of Object.entries(expected)) t.same(record.attributes[name], value, `${name} = the event's value`);
      t.same(Object.keys(record.attributes).sort(), Object.keys(expected).sort(), 'no attribute beyond the event\'s fields');
      t.same(record.attributes['process.command_args'], [bin, m, '***', 'two words'], 'argv redacted before export');
      t.equal(record.headers['x-scope-orgid'], 'execwatch-test', 'OTEL_EXPORTER_OTLP_HEADERS carried');
    });
  }
});
