import t from 'tap';
import { Enricher, type EnricherClock, type EnrichmentResult } from '../src/enrich/enricher.js';
import { eventBytes, PendingQueue } from '../src/enrich/pending.js';
import type { ExecEvent } from '../src/events/schema.js';
import { createPodCache, loadKubeConfig } from '../src/kube/kubeconfig.js';
import type { PodCache } from '../src/kube/podcache.js';
import type { PodInfo, PodLookup } from '../src/kube/types.js';
import { makePod, startApiServer } from './helpers/apiserver.js';
import { makeEvent, makeExit } from './helpers/events.js';
import { pollUntil } from './helpers/poll.js';

const X = 'a'.repeat(64);
const Y = 'b'.repeat(64);
const Z = 'c'.repeat(64);
const UID = '0b6d2c3e-1f2a-4b5c-8d9e-0a1b2c3d4e5f';
const VICTIM = { uid: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a', name: 'vault-0' };

/** A manual clock: timers run only when the test advances time. */
class FakeClock implements EnricherClock {
  time = 0;
  armed = new Set<{ at: number; fn: () => void }>();
  maxArmed = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { at: this.time + ms, fn };
    this.armed.add(timer);
    this.maxArmed = Math.max(this.maxArmed, this.armed.size);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.armed.delete(handle as { at: number; fn: () => void });
  }
  advance(ms: number): void {
    this.time += ms;
    for (;;) {
      const due = [...this.armed].filter((timer) => timer.at <= this.time).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.armed.delete(due);
      due.fn();
    }
  }
}

/** A pod cache stand-in: pods are added by the test, which also decides when to notify. */
class FakeLookup implements PodLookup {
  synced = true;
  readonly pods: PodInfo[] = [];
  readonly #listeners: (() => void)[] = [];
  byContainerId(id: string): PodInfo | undefined {
    return this.pods.find((pod) => pod.containers.has(id));
  }
  byPodUid(uid: string): PodInfo | undefined {
    return this.pods.find((pod) => pod.uid === uid);
  }
  onChange(listener: () => void): () => void {
    this.#listeners.push(listener);
    return () => {};
  }
  add(containers: [string, string][], notify = true, pod: { uid: string; name: string } = { uid: UID, name: 'web-7d9f8-abcde' }): void {
    this.pods.push({
      uid: pod.uid,
      namespace: 'shop',
      name: pod.name,
      workload: { kind: 'Deployment', name: 'web' },
      containers: new Map(containers.map(([id, name]) => [id, { name, image: `registry.example/${name}:1`, imageId: `registry.example/${name}@sha256:${'cd'.repeat(32)}`, ephemeral: false, probes: [] }])),
      labels: {},
    });
    if (notify) for (const listener of this.#listeners) listener();
  }
}

/** An event as capture hands it over: cgroup names set, pod fields still empty. */
function captured(seq: number, containerId: string | null, podUid: string | null = UID): ExecEvent {
  const leaf = containerId ? `cri-containerd-${containerId}.scope` : 'sshd.service';
  const parent = podUid ? `kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice` : 'system.slice';
  return makeEvent({
    seq,
    kind: 'exec',
    cgroupId: String(1000 + (containerId ?? 'host').charCodeAt(0)),
    cgroup: leaf,
    cgroupParent: parent,
    containerId: null,
    namespace: null,
    pod: null,
    podUid: null,
    container: null,
    image: null,
    imageId: null,
    workload: null,
  });
}

function setup(opts: { lookup?: FakeLookup | null; waitMs?: number; maxPending?: number; maxPendingBytes?: number } = {}) {
  const clock = new FakeClock();
  const lookup = opts.lookup === undefined ? new FakeLookup() : opts.lookup;
  const emitted: ExecEvent[] = [];
  const results: EnrichmentResult[] = [];
  const enricher = new Enricher({
    podCache: lookup,
    waitMs: opts.waitMs ?? 2000,
    maxPending: opts.maxPending ?? 100,
    maxPendingBytes: opts.maxPendingBytes,
    metrics: { enrichment: (result) => results.push(result) },
    emit: (event) => emitted.push(event as ExecEvent),
    clock,
  });
  const seqs = () => emitted.map((event) => event.seq);
  return { clock, lookup: lookup as FakeLookup, emitted, results, enricher, seqs };
}

t.test('a host process leaves at once with empty pod fields', async (t) => {
  const { enricher, emitted, results } = setup();
  enricher.push(captured(1, null, null));
  t.equal(emitted.length, 1, 'emitted without waiting');
  t.match(emitted[0], { containerId: null, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'host' }, 'no pod fields');
  t.same(results, ['host'], 'counted as host');
});

t.test('a known container is enriched at once', async (t) => {
  const { enricher, lookup, emitted, results } = setup();
  lookup.add([[X, 'app']]);
  enricher.push(captured(1, X));
  t.match(emitted[0], {
    containerId: X, namespace: 'shop', pod: 'web-7d9f8-abcde', podUid: UID, container: 'app',
    image: 'registry.example/app:1', imageId: `registry.example/app@sha256:${'cd'.repeat(32)}`,
    workload: { kind: 'Deployment', name: 'web' }, attribution: 'pod',
  }, 'every pod field filled, the image from the container\'s status');
  t.same(results, ['pod'], 'counted as pod');
});

t.test('standalone: container id only, at once', async (t) => {
  const { enricher, emitted, results } = setup({ lookup: null });
  enricher.push(captured(1, X));
  t.match(emitted[0], { containerId: X, namespace: null, pod: null, container: null, attribution: 'unresolved' }, 'container id kept, no pod');
  t.same(results, ['unresolved'], 'counted as unresolved');
});

t.test('an unknown container waits until the pod cache names it', async (t) => {
  const { enricher, lookup, emitted, results, clock, seqs } = setup();
  enricher.push(captured(1, X));
  enricher.push(captured(2, X));
  t.equal(emitted.length, 0, 'held back');
  t.equal(enricher.pending, 2, 'two waiting');
  clock.advance(1000);
  lookup.add([[X, 'app']]);
  t.same(seqs(), [1, 2], 'released in order when the pod appears, before the deadline');
  t.equal(emitted[1]?.container, 'app', 'with the container name');
  t.same(results, ['pod', 'pod'], 'counted as pod');
  t.equal(enricher.pending, 0, 'nothing left waiting');
  clock.advance(5000);
  t.equal(emitted.length, 2, 'the stale timer emits nothing twice');
});

t.test('an exit waits behind its container\'s exec and is enriched the same; execs alone are counted', async (t) => {
  const { enricher, lookup, emitted, results } = setup();
  const exec = captured(1, X);
  enricher.push(exec);
  enricher.push({ ...makeExit({ seq: 2 }), cgroupId: exec.cgroupId, cgroup: exec.cgroup, cgroupParent: exec.cgroupParent, containerId: null, namespace: null, pod: null, podUid: null, container: null, workload: null, attribution: 'unresolved' });
  t.equal(enricher.pending, 2, 'both wait');
  lookup.add([[X, 'app']]);
  t.same(emitted.map((e) => [e.seq, e.kind, e.pod, e.container]), [[1, 'exec', 'web-7d9f8-abcde', 'app'], [2, 'exit', 'web-7d9f8-abcde', 'app']], 'the exit after its exec, with the same pod');
  t.same(results, ['pod'], 'execwatch_enrichment_total counts the exec only');
});

t.test('an unknown container leaves unenriched at its deadline', async (t) => {
  const { enricher, emitted, results, clock, seqs } = setup();
  enricher.push(captured(1, X, null));
  clock.advance(1000);
  enricher.push(captured(2, Y, null));
  clock.advance(999);
  t.equal(emitted.length, 0, 'still waiting before 2 s');
  clock.advance(1);
  t.same(seqs(), [1], 'the first leaves at its own deadline');
  t.match(emitted[0], { containerId: X, namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null }, 'unenriched, container id kept');
  clock.advance(1000);
  t.same(seqs(), [1, 2], 'the second at its own deadline');
  t.same(results, ['unresolved', 'unresolved'], 'counted as unresolved');
});

t.test('a pod known by UID: waits for the container name, else leaves with the pod', async (t) => {
  const { enricher, lookup, emitted, results, clock } = setup();
  lookup.add([]);
  enricher.push(captured(1, X));
  t.equal(emitted.length, 0, 'waits for the container name');
  clock.advance(2000);
  t.match(emitted[0], { containerId: X, namespace: 'shop', pod: 'web-7d9f8-abcde', podUid: UID, container: null, image: null, imageId: null }, 'pod fields without the container (nor its image)');
  t.same(results, ['pod'], 'counted as pod');
});

t.test('events of one container keep their order', async (t) => {
  const { enricher, lookup, emitted, seqs } = setup();
  enricher.push(captured(1, X));
  enricher.push(captured(2, Y));
  enricher.push(captured(3, X));
  lookup.add([[X, 'app']], false);
  enricher.push(captured(4, X));
  t.same(seqs(), [1, 3, 4], 'waiting events of X leave before the newer, resolved one');
  t.equal(emitted[0]?.container, 'app', 'and are enriched too');
  t.equal(enricher.pending, 1, 'the other container still waits');
});

t.test('one timer for the whole waiting room', async (t) => {
  const { enricher, clock, seqs } = setup();
  for (let seq = 1; seq <= 50; seq++) {
    enricher.push(captured(seq, seq % 2 ? X : Y, null));
    clock.advance(10);
  }
  t.equal(clock.maxArmed, 1, 'never more than one timer armed');
  clock.advance(2000);
  t.same(seqs(), Array.from({ length: 50 }, (_, i) => i + 1), 'all left, in order');
  t.equal(clock.armed.size, 0, 'no timer left');
});

t.test('a full waiting room lets the oldest out early, never drops', async (t) => {
  await t.test('by count', async (t) => {
    const { enricher, emitted, results, seqs } = setup({ maxPending: 3 });
    for (let seq = 1; seq <= 5; seq++) enricher.push(captured(seq, X, null));
    t.same(seqs(), [1, 2], 'the two oldest left at once');
    t.equal(enricher.pending, 3, 'bounded');
    t.equal(enricher.overflowed, 2, 'counted');
    t.same(results, ['unresolved', 'unresolved'], 'as unresolved');
    enricher.flush();
    t.same(seqs(), [1, 2, 3, 4, 5], 'flush lets the rest out in order: nothing lost');
    t.equal(emitted.length, 5, 'each event exactly once');
  });
  await t.test('by bytes', async (t) => {
    const big = captured(2, X, null);
    big.argv = ['x'.repeat(10_000)];
    const limit = eventBytes(big) + 100;
    const { enricher, seqs } = setup({ maxPendingBytes: limit });
    enricher.push(captured(1, X, null));
    enricher.push(big);
    t.same(seqs(), [1], 'the older event made room for the big one');
    enricher.push(captured(3, X, null));
    t.same(seqs(), [1, 2], 'the big one made room in turn');
  });
});

t.test('no wait configured: leaves at once with what is known', async (t) => {
  for (const opts of [{ waitMs: 0 }, { maxPending: 0 }] as const) {
    const { enricher, lookup, emitted, results } = setup(opts);
    lookup.add([]);
    enricher.push(captured(1, X));
    t.equal(emitted[0]?.pod, 'web-7d9f8-abcde', `${JSON.stringify(opts)}: emitted at once with the pod`);
    t.same(results, ['pod'], `${JSON.stringify(opts)}: counted`);
  }
});

t.test('the real clock', async (t) => {
  const emitted: ExecEvent[] = [];
  const enricher = new Enricher({
    podCache: new FakeLookup(),
    waitMs: 20,
    maxPending: 10,
    metrics: { enrichment: () => {} },
    emit: (event) => emitted.push(event as ExecEvent),
  });
  enricher.push(captured(1, X));
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(emitted.length, 1, 'the event left after its wait');
  enricher.push(captured(2, X));
  enricher.flush();
  t.equal(emitted.length, 2, 'flush cancels the timer and emits');
});

/** An exec in a cgroup named after a container, below a parent directory named `parent`. */
function inCgroup(seq: number, containerId: string, parent: string): ExecEvent {
  return { ...captured(seq, containerId), cgroup: `cri-containerd-${containerId}.scope`, cgroupParent: parent };
}

const NO_POD = { namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null } as const;

t.test('a container id claimed from inside another pod is a conflict, not the victim\'s exec', async (t) => {
  const cases = [
    ['below the attacker pod\'s slice', `kubepods-besteffort-pod${UID.replaceAll('-', '_')}.slice`],
    ['below a pod UID no pod has', 'kubepods-besteffort-pod11111111_2222_4333_8444_555555555555.slice'],
    ['inside the attacker\'s container', `cri-containerd-${Z}.scope`],
    ['inside a container no pod names', `cri-containerd-${Y}.scope`],
  ] as const;
  for (const [what, parent] of cases) {
    const { enricher, lookup, emitted, results } = setup();
    lookup.add([[Z, 'shell']]);
    lookup.add([[X, 'vault']], true, VICTIM);
    enricher.push(inCgroup(1, X, parent));
    t.match(emitted, [{ containerId: X, ...NO_POD, attribution: 'conflict' }], `${what}: flagged at once, no pod named`);
    t.same(results, ['conflict'], `${what}: counted as conflict`);
  }
});

t.test('the victim\'s own cgroup, a static pod\'s hash, or a container in its own pod\'s container are no conflict', async (t) => {
  const { enricher, lookup, emitted, results } = setup();
  lookup.add([[X, 'vault'], [Z, 'sidecar']], true, VICTIM);
  enricher.push(inCgroup(1, X, `kubepods-besteffort-pod${VICTIM.uid.replaceAll('-', '_')}.slice`));
  enricher.push(inCgroup(2, X, `cri-containerd-${Z}.scope`));
  t.match(emitted, [
    { pod: VICTIM.name, container: 'vault', attribution: 'pod' },
    { pod: VICTIM.name, container: 'vault', attribution: 'pod' },
  ], 'attributed to the pod');
  t.same(results, ['pod', 'pod'], 'counted as pod');
});

t.test('a waiting event whose container turns out to be another pod\'s leaves as a conflict', async (t) => {
  const { enricher, lookup, emitted, results } = setup();
  lookup.add([[Z, 'shell']]);
  enricher.push(captured(1, X));
  t.equal(emitted.length, 0, 'waits: its pod (by UID) does not name the container yet');
  lookup.add([[X, 'vault']], true, VICTIM);
  t.match(emitted, [{ containerId: X, ...NO_POD, attribution: 'conflict' }], 'let out as soon as the pod cache names the container');
  t.same(results, ['conflict'], 'counted once, as conflict');
});

t.test('the waiting room queue stays FIFO across compactions', async (t) => {
  const queue = new PendingQueue();
  const entry = (seq: number) => {
    const event = captured(seq, seq % 3 ? X : Y);
    return { event, ids: { containerId: seq % 3 ? X : Y, podUid: null, enclosingContainerId: null }, deadline: seq, bytes: 10 };
  };
  for (let seq = 0; seq < 3000; seq++) queue.push(entry(seq));
  const out: number[] = [];
  for (let i = 0; i < 2500; i++) out.push(queue.shift()!.event.seq);
  t.same(out, Array.from({ length: 2500 }, (_, i) => i), 'oldest first');
  t.equal(queue.length, 500, 'the rest kept');
  t.equal(queue.bytes, 5000, 'bytes follow');
  t.equal(queue.peek()?.event.seq, 2500, 'next in line');
  const ys = queue.extract((e) => e.ids.containerId === Y);
  t.same(ys.map((e) => e.event.seq), Array.from({ length: 166 }, (_, i) => 2502 + 3 * i), 'every Y extracted, in order');
  t.equal(queue.length, 334, 'the X entries stay');
  t.notOk(queue.has(Y), 'no Y left');
  t.ok(queue.has(X), 'X still waiting');
  while (queue.shift());
  t.equal(queue.length, 0, 'empty');
  t.equal(queue.shift(), undefined, 'nothing to shift');
});

t.test('the size estimate grows with every string an event holds', async (t) => {
  const event = captured(1, X);
  const base = eventBytes(event);
  t.ok(eventBytes({ ...event, argv: [...event.argv, 'x'.repeat(100)] }) >= base + 200, 'argv (UTF-16)');
  t.equal(eventBytes({ ...event, argvBase64: 'QUJD' }), base + 4, 'raw argv');
  t.equal(eventBytes({ ...event, filenameBase64: 'QUJD' }), base + 4, 'raw filename');
  t.ok(eventBytes({ ...event, filename: `/${'d'.repeat(50)}` }) > base, 'filename');
});

t.test('with the real pod cache: a pod that appears after the first exec', async (t) => {
  const api = await startApiServer();
  const cache = (await createPodCache(
    await loadKubeConfig(api.kubeconfigPath(t.testdir())),
    { nodeName: 'node-1', podGracePeriodMs: 1000, kubeUnreadyAfterMs: 0 },
    { kubeWatchRestart: () => {}, forgetPod: () => {} },
  )) as PodCache;
  t.teardown(async () => {
    await cache.stop();
    await api.close();
  });
  const emitted: ExecEvent[] = [];
  const enricher = new Enricher({
    podCache: cache, waitMs: 2000, maxPending: 100,
    metrics: { enrichment: () => {} },
    emit: (event) => emitted.push(event as ExecEvent),
  });
  await cache.start();
  enricher.push(captured(1, X));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(emitted.length, 0, 'the first exec waits');
  api.addPod(makePod({ name: 'web-7d9f8-abcde', namespace: 'shop', uid: UID, containers: [{ name: 'app', id: X }] }));
  await pollUntil(t, () => emitted.length > 0, 'released when the pod arrived, not at the deadline', 1000);
  t.match(emitted[0], { namespace: 'shop', pod: 'web-7d9f8-abcde', container: 'app', workload: { kind: 'Pod', name: 'web-7d9f8-abcde' } }, 'fully enriched');
});
