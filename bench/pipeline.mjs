#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * The user-space pipeline without the kernel: synthetic ring-buffer batches laid out as
 * bpf/execwatch.h says, through the agent's own wiring from dist/ (src/pipeline.ts
 * createPipeline, which src/agent.ts uses) — Tracer (decode) → redact → enrich (pod index of 100
 * fake pods) → store, metrics, and one SSE subscriber of the hub whose transport accepts every
 * frame (the frame is built; no socket).
 *
 *   node bench/pipeline.mjs [--events=N] [--batch=N] [--json] [--no-default-redaction] [--no-exits]
 *
 * Each successful exec is followed by its process's exit, as on a node (a process that execs also
 * ends); --no-exits sends the execs alone, as before exits were reported.
 *
 * bench/run.mjs runs it pinned to one CPU (taskset -c 0). Prints events/s.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(join(root, 'dist', 'agent.js'))) {
  process.stderr.write('pipeline: dist/ missing: run npm run build:ts\n');
  process.exit(1);
}
const { Tracer } = await import(join(root, 'dist/capture/tracer.js'));
const { HEADER_SIZE: HEADER, RECORD_OFFSETS: O, EXIT_OFFSETS: E, EXIT_SIZE, FLAGS, RECORD_KINDS } = await import(join(root, 'dist/capture/decode.js'));
const { createPipeline } = await import(join(root, 'dist/pipeline.js'));
const { createMetrics } = await import(join(root, 'dist/metrics/index.js'));
const { PodIndex } = await import(join(root, 'dist/kube/podindex.js'));

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    return m ? [m[1], m[2] ?? true] : [a, true];
  }),
);
const EVENTS = Number(args.events ?? 1_000_000);
const BATCH = Number(args.batch ?? 32);
const PODS = 100;

// ------------------------------------------------------------------------------------------
// Deterministic synthetic data

let seed = 42;
const random = () => {
  // xorshift32: the same records on every run.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const pick = (xs) => xs[Math.floor(random() * xs.length)];
const hex = (n) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
const uuid = () => `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;

const pods = Array.from({ length: PODS }, (_, i) => {
  const uid = uuid();
  const deployment = `svc-${i % 25}`;
  const hash = hex(10);
  const containers = [
    { name: 'app', id: hex(64) },
    { name: 'sidecar', id: hex(64) },
  ];
  return {
    uid,
    containers,
    object: {
      metadata: {
        uid,
        namespace: `team-${i % 10}`,
        name: `${deployment}-${hash}-${hex(5)}`,
        labels: { 'pod-template-hash': hash },
        ownerReferences: [{ kind: 'ReplicaSet', name: `${deployment}-${hash}`, controller: true, apiVersion: 'apps/v1', uid: uuid() }],
      },
      status: { containerStatuses: containers.map((c) => ({ name: c.name, containerID: `containerd://${c.id}` })) },
    },
  };
});

const BINARIES = ['/usr/bin/sh', '/usr/bin/bash', '/usr/bin/cat', '/usr/bin/grep', '/usr/bin/curl', '/usr/local/bin/python3', '/usr/bin/java', '/usr/bin/git', '/usr/bin/ls', '/usr/bin/sed'];
const WORDS = ['-c', '--verbose', '-o', '/var/log/app.log', 'http://svc.team-3.svc.cluster.local:8080/healthz', '--config=/etc/app/config.yaml', '-jar', '/opt/app/lib/app-2.14.1.jar', 'status', '--format', 'json', 'origin/main', '-Dlog4j.configurationFile=/etc/app/log4j2.xml', '-XX:+UseG1GC'];

/** Argument lists with the size mix of a busy node: mostly short, a tail of long ones. */
function argvOf(filename) {
  const r = random();
  const count = r < 0.4 ? 1 + Math.floor(random() * 3) : r < 0.75 ? 4 + Math.floor(random() * 9) : r < 0.95 ? 15 + Math.floor(random() * 26) : 150;
  const argv = [filename.slice(filename.lastIndexOf('/') + 1)];
  for (let i = 1; i < count; i++) argv.push(r >= 0.95 ? `--classpath-entry-${i}=/opt/app/lib/dependency-${i}.jar` : pick(WORDS));
  let bytes = Buffer.from(argv.map((a) => `${a}\0`).join(''));
  let flags = 0;
  if (bytes.length > 4096) {
    bytes = bytes.subarray(0, 4096);
    flags |= 1; // EXECWATCH_F_ARGV_TRUNCATED
  }
  return { bytes, argc: count, flags };
}

let bootNs = 10_000_000_000n;

/** One record, as bpf/execwatch.h lays it out (the offsets the decoder declares). */
function record(i) {
  const inContainer = random() < 0.5;
  const filename = Buffer.from(pick(BINARIES));
  const { bytes: argv, argc, flags } = argvOf(filename.toString());
  let cgroupId;
  let leaf;
  let parent;
  if (inContainer) {
    const p = Math.floor(random() * PODS);
    const c = random() < 0.8 ? 0 : 1;
    const pod = pods[p];
    cgroupId = BigInt(100_000 + p * 2 + c);
    leaf = `cri-containerd-${pod.containers[c].id}.scope`;
    parent = `kubepods-burstable-pod${pod.uid.replaceAll('-', '_')}.slice`;
  } else {
    const s = Math.floor(random() * 8);
    cgroupId = BigInt(5000 + s);
    leaf = s < 4 ? `session-${s}.scope` : `service-${s}.service`;
    parent = s < 4 ? 'user-1000.slice' : 'system.slice';
  }
  // Every kind of record has the cgroup names after its fixed part.
  const names = Buffer.from(leaf + parent, 'latin1');
  const len = Math.ceil((HEADER + names.length + filename.length + argv.length) / 8) * 8;
  const buf = Buffer.alloc(len);
  bootNs += 300_000n;
  buf.writeBigUInt64LE(bootNs, O.boot_ns);
  buf.writeBigUInt64LE(cgroupId, O.cgroup_id);
  buf.writeUInt32LE(len, O.record_len);
  buf.writeUInt16LE(flags, O.flags);
  buf.writeUInt32LE(10_000 + i, O.pid);
  buf.writeUInt32LE(10_000 + i, O.tid);
  buf.writeUInt32LE(4_000 + (i % 50), O.ppid);
  // The parent at the fork: the same one (it has not exited).
  buf.writeUInt32LE(4_000 + (i % 50), O.fork_ppid);
  buf.writeUInt32LE(inContainer ? 0 : 1000, O.uid);
  buf.writeUInt32LE(inContainer ? 0 : 1000, O.gid);
  buf.writeInt32LE(random() < 0.02 ? -2 : 0, O.retval);
  buf.writeUInt32LE(argc, O.argc);
  buf.writeUInt16LE(filename.length, O.filename_len);
  buf.writeUInt32LE(argv.length, O.argv_len);
  buf.write(filename.toString().slice(filename.lastIndexOf('/') + 1).slice(0, 15), O.comm, 'latin1');
  buf.write('containerd-shim', O.parent_comm, 'latin1');
  buf.writeUInt16LE(leaf.length, O.cgroup_leaf_len);
  buf.writeUInt16LE(parent.length, O.cgroup_parent_len);
  names.copy(buf, HEADER);
  filename.copy(buf, HEADER + names.length);
  argv.copy(buf, HEADER + names.length + filename.length);
  if (args['no-exits'] || buf.readInt32LE(O.retval) !== 0) return [buf];
  // Its exit, 2 ms later: the same process (pid, start time 0 as in the exec), still in its exec's
  // cgroup, so the kernel sends no names (the decoder takes the exec's).
  const exit = Buffer.alloc(EXIT_SIZE);
  exit.writeBigUInt64LE(bootNs + 2_000_000n, E.boot_ns);
  exit.writeBigUInt64LE(cgroupId, E.cgroup_id);
  exit.writeUInt32LE(exit.length, E.record_len);
  exit.writeUInt16LE(RECORD_KINDS.EXIT, E.kind);
  exit.writeUInt16LE(FLAGS.CGROUP_AS_EXEC, E.flags);
  exit.writeUInt32LE(10_000 + i, E.pid);
  exit.writeUInt32LE(10_000 + i, E.tid);
  exit.writeBigUInt64LE(bootNs, E.exec_ns);
  buf.copy(exit, E.comm, O.comm, O.comm + 16);
  return [buf, exit];
}

const EXECS = 4096;
const records = Array.from({ length: EXECS }, (_, i) => record(i)).flat();
const RECORDS = records.length;
const exits = RECORDS - EXECS;
const batches = [];
for (let i = 0; i < RECORDS; i += BATCH) batches.push(Buffer.concat(records.slice(i, i + BATCH)));
const meanRecordBytes = records.reduce((a, r) => a + r.length, 0) / RECORDS;

// ------------------------------------------------------------------------------------------
// The pipeline, wired by the agent's own createPipeline

let onBatch = null;
const binding = {
  Tracer: class {
    attach = () => ['handle_exec'];
    start = (cb) => {
      onBatch = cb;
    };
    stats = () => ({ counters: { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0 }, attached: ['handle_exec'], unavailable: [] });
    close = () => {};
  },
  bootTimeOffsetNs: () => 1_700_000_000_000_000_000n,
  mountTracefs: () => {},
};

let tracer = null;
const metrics = createMetrics({
  labels: ['namespace', 'workload', 'pod', 'container'],
  maxSeries: 10_000,
  version: 'bench',
  kernel: 'bench',
  captureStats: () => tracer.stats(),
  podCount: () => index.size,
});
const index = new PodIndex({ metrics, gracePeriodMs: 120_000, maxDeleted: 1000 });
for (const pod of pods) index.upsert(pod.object);
const podCache = { byContainerId: (id) => index.byContainerId(id), byPodUid: (uid) => index.byPodUid(uid), synced: true };

const pipeline = createPipeline(
  // The built-in secret rules are on, as in the agent by default.
  { recentEvents: 10_000, redact: [], defaultRedaction: !args['no-default-redaction'], enrichWaitMs: 2000, logEvents: false },
  { metrics, podCache, stdout: process.stdout },
);
const { store, hub } = pipeline;
let streamedBytes = 0;
let streamed = 0;
if (args.subscribers !== '0') hub.subscribe(() => true, {
  write(chunk) {
    streamedBytes += chunk.length;
    streamed += 1;
    return true;
  },
  close() {
    throw new Error('subscriber closed');
  },
});
tracer = new Tracer(binding, { objectPath: 'bench', argvMaxBytes: 4096, ringbufBytes: 1 << 23, cgroupRate: 0, cgroupBurst: 1, node: 'bench-node' }, pipeline.sink, (err) => {
  throw err;
});
tracer.start();

// The addon copies every wake-up's records into one Buffer it reuses (native/delivery.cc).
const delivery = Buffer.alloc(Math.max(...batches.map((b) => b.length)));

function run(events) {
  let sent = 0;
  for (let b = 0; sent < events; b = (b + 1) % batches.length) {
    const length = batches[b].copy(delivery);
    onBatch(delivery, length);
    sent += Math.min(BATCH, RECORDS - b * BATCH);
  }
  return sent;
}

run(100_000); // warm-up: JIT, the metric series, a full store
const before = pipeline.delivered;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const sent = run(EVENTS);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
if (pipeline.delivered - before !== sent || pipeline.pending !== 0) throw new Error(`sent ${sent}, delivered ${pipeline.delivered - before}, pending ${pipeline.pending}`);
await metrics.registry.metrics(); // one scrape, to show the registry is sane (not timed)

const result = {
  events: sent,
  batch: BATCH,
  seconds,
  eventsPerSecond: sent / seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  meanRecordBytes: Math.round(meanRecordBytes),
  exitShare: exits / RECORDS,
  containerShare: 0.5,
  pods: PODS,
  streamedFrames: streamed,
  meanFrameBytes: streamed ? Math.round(streamedBytes / streamed) : 0,
  storeEvents: store.size,
  heapUsedMB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
};
if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    `pipeline: ${sent} events in ${seconds.toFixed(2)} s = ${Math.round(result.eventsPerSecond)} events/s ` +
      `(${Math.round(100 * result.exitShare)}% exits, batches of ${BATCH}, mean record ${result.meanRecordBytes} B, SSE frame ${result.meanFrameBytes} B, ` +
      `${result.cpuSeconds.toFixed(2)} CPU s)\n`,
  );
}
