import t from 'tap';
import { createHash } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Backoff } from '../src/kube/backoff.js';
import { createPodCache, loadKubeConfig } from '../src/kube/kubeconfig.js';
import { describeError, type PodCache, type PodCacheOptions } from '../src/kube/podcache.js';
import { PodIndex, podInfoOf } from '../src/kube/podindex.js';
import { makePod, startApiServer, type ApiServerDouble, type ApiServerOptions } from './helpers/apiserver.js';
import { pollUntil, type Test } from './helpers/poll.js';

const hex = (c: string) => c.repeat(64);


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Setup {
  api: ApiServerDouble;
  cache: PodCache;
  restarts: number[];
  /** Before the first sync: the delay each restart waited, from the readiness reason. */
  delays: number[];
  forgotten: string[];
  lists: () => number;
  watches: () => { resourceVersion?: string; allowWatchBookmarks?: string; timeoutSeconds?: string; fieldSelector?: string }[];
}

/** A double with the given pods, and a pod cache for node-1 pointed at it (not started). */
async function setup(t: Test, tuning: Partial<PodCacheOptions> & { gracePeriodMs?: number } = {}, apiOptions: ApiServerOptions = {}): Promise<Setup> {
  const api = await startApiServer(apiOptions);
  const restarts: number[] = [];
  const delays: number[] = [];
  const forgotten: string[] = [];
  const metrics = {
    kubeWatchRestart: () => {
      restarts.push(Date.now());
      const waited = /\(retrying in (\d+)ms\)$/.exec(cache.readiness().reasons[0] ?? '');
      if (waited) delays.push(Number(waited[1]));
    },
    forgetPod: (namespace: string, pod: string) => forgotten.push(`${namespace}/${pod}`),
  };
  const config = { nodeName: 'node-1', podGracePeriodMs: tuning.gracePeriodMs ?? 60_000, kubeUnreadyAfterMs: 0 };
  const kubeConfig = await loadKubeConfig(api.kubeconfigPath(t.testdir()));
  const cache = (await createPodCache(kubeConfig, config, metrics, { backoffBaseMs: 20, backoffMaxMs: 200, ...tuning })) as PodCache;
  t.teardown(async () => {
    await cache.stop();
    await api.close();
  });
  return {
    api,
    cache,
    restarts,
    delays,
    forgotten,
    lists: () => api.requests.filter((r) => r.query.watch !== 'true').length,
    watches: () => api.requests.filter((r) => r.query.watch === 'true').map((r) => r.query),
  };
}

async function started(t: Test, s: Setup): Promise<void> {
  await s.cache.start();
  await pollUntil(t, () => s.cache.synced && s.api.watchers === 1, 'synced and watching');
}

t.test('first sync: chunked list of this node only, then a watch with bookmarks', async (t) => {
  const s = await setup(t, { pageSize: 2 });
  for (const name of ['a', 'b', 'c', 'd', 'e']) s.api.addPod(makePod({ name, containers: [{ name: 'app', id: hex(name) }] }));
  s.api.addPod(makePod({ name: 'elsewhere', nodeName: 'node-2', containers: [{ name: 'app', id: hex('f') }] }));
  t.same(s.cache.readiness(), { ready: false, reasons: ['pod watch: waiting for the first list of pods on node node-1'] }, 'not ready before start');
  await started(t, s);
  t.same(s.cache.readiness(), { ready: true, reasons: [] }, 'ready after the first sync');
  t.equal(s.cache.size, 5, 'five pods of node-1');
  t.equal(s.cache.byContainerId(hex('c'))?.name, 'c', 'found by container id');
  t.equal(s.cache.byContainerId(hex('f')), undefined, 'a pod of another node is not cached');
  t.equal(s.lists(), 3, 'listed in pages of two');
  t.ok(s.api.requests.every((r) => r.query.fieldSelector === 'spec.nodeName=node-1'), 'every request selects node-1');
  t.ok(s.api.requests.every((r) => r.authorization === 'Bearer double-token'), 'with the kubeconfig token');
  const [watch] = s.watches();
  t.equal(watch?.resourceVersion, '106', 'the watch starts at the list resource version');
  t.equal(watch?.allowWatchBookmarks, 'true', 'asks for bookmarks');
  t.ok(Number(watch?.timeoutSeconds) >= 300 && Number(watch?.timeoutSeconds) < 600, 'with a server-side timeout');
});

t.test('add, modify (the container id appears), delete', async (t) => {
  const s = await setup(t, { gracePeriodMs: 50 });
  let changes = 0;
  const unsubscribe = s.cache.onChange(() => changes++);
  await started(t, s);
  const uid = '0b6d2c3e-1f2a-4b5c-8d9e-0a1b2c3d4e5f';
  const spec = { name: 'web-7d9f8-abcde', namespace: 'shop', uid, owner: { kind: 'ReplicaSet', name: 'web-7d9f8' }, labels: { 'pod-template-hash': '7d9f8' } };
  s.api.addPod(makePod({ ...spec, containers: [{ name: 'app', id: null }] }));
  await pollUntil(t, () => s.cache.byPodUid(uid) !== undefined, 'the new pod is known by UID');
  t.same(s.cache.byPodUid(uid)?.workload, { kind: 'Deployment', name: 'web' }, 'with its workload');
  t.equal(s.cache.byPodUid(uid)?.containers.size, 0, 'no container id yet');
  t.ok(changes > 0, 'listeners told');
  s.api.updatePod(makePod({
    ...spec,
    containers: [
      { name: 'app', id: hex('1'), runtime: 'cri-o', lastId: hex('0'), livenessProbe: ['cat', '/tmp/healthy'], readinessProbe: ['sh', '-c', 'test -e /ready'] },
      { name: 'sidecar', id: hex('2'), runtime: 'docker' },
    ],
    initContainers: [{ name: 'init', id: hex('3') }],
    ephemeralContainers: [{ name: 'debugger', id: hex('4') }],
  }));
  await pollUntil(t, () => s.cache.byContainerId(hex('1')) !== undefined, 'the container id is known once it appears');
  const names = ['0', '1', '2', '3', '4'].map((c) => s.cache.byContainerId(hex(c))?.containers.get(hex(c))?.name);
  t.same(names, ['app', 'app', 'sidecar', 'init', 'debugger'], 'every kind of container, previous instance included, prefixes stripped');
  const digest = (name: string) => `registry.example/${name}@sha256:${createHash('sha256').update(name).digest('hex')}`;
  t.same(
    s.cache.byContainerId(hex('2'))?.containers.get(hex('2')),
    { name: 'sidecar', image: 'registry.example/sidecar:1', imageId: digest('sidecar'), ephemeral: false, probes: [] },
    'the image and its digest reference from the container\'s status',
  );
  t.same(
    s.cache.byContainerId(hex('1'))?.containers.get(hex('1'))?.probes,
    [['cat', '/tmp/healthy'], ['sh', '-c', 'test -e /ready']],
    'the exec probes\' commands from the container\'s spec (liveness, then readiness)',
  );
  t.same(
    ['1', '3', '4'].map((c) => s.cache.byContainerId(hex(c))?.containers.get(hex(c))?.ephemeral),
    [false, false, true],
    'the ephemeral container is marked so (its execs are debug)',
  );
  s.api.deletePod('shop', 'web-7d9f8-abcde');
  await pollUntil(t, () => s.cache.size === 0, 'the deleted pod is no longer counted');
  t.equal(s.cache.byContainerId(hex('1'))?.name, 'web-7d9f8-abcde', 'still resolvable for late events');
  t.equal(s.cache.byPodUid(uid)?.name, 'web-7d9f8-abcde', 'by UID too');
  t.same(s.forgotten, [], 'series kept during the grace period');
  await pollUntil(t, () => s.forgotten.length === 1, 'series forgotten after the grace period');
  t.same(s.forgotten, ['shop/web-7d9f8-abcde'], 'by namespace and name');
  unsubscribe();
  const seen = changes;
  s.api.addPod(makePod({ name: 'late' }));
  await pollUntil(t, () => s.cache.size === 1, 'another pod arrives');
  await sleep(10);
  t.equal(changes, seen, 'an unsubscribed listener is not told');
});

t.test('a pod back under the same name keeps its series', async (t) => {
  const s = await setup(t, { gracePeriodMs: 100 });
  s.api.addPod(makePod({ name: 'db-0', uid: '11111111-1111-4111-8111-111111111111', containers: [{ name: 'db', id: hex('a') }] }));
  await started(t, s);
  s.api.deletePod('default', 'db-0');
  await pollUntil(t, () => s.cache.size === 0, 'deleted');
  s.api.addPod(makePod({ name: 'db-0', uid: '22222222-2222-4222-8222-222222222222', containers: [{ name: 'db', id: hex('b') }] }));
  await pollUntil(t, () => s.cache.size === 1, 'recreated');
  await sleep(250);
  t.same(s.forgotten, [], 'no forgetPod: the grace timer was cancelled');
  t.equal(s.cache.byContainerId(hex('a'))?.uid, '11111111-1111-4111-8111-111111111111', 'the old instance still resolves');
  t.equal(s.cache.byContainerId(hex('b'))?.uid, '22222222-2222-4222-8222-222222222222', 'the new one too');
});

t.test('a watch closed by the server resumes without losing or duplicating pods', async (t) => {
  const s = await setup(t);
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await started(t, s);
  s.api.closeWatches();
  s.api.addPod(makePod({ name: 'b', containers: [{ name: 'app', id: hex('b') }] }));
  s.api.updatePod(makePod({ name: 'a', uid: s.cache.byContainerId(hex('a'))!.uid, containers: [{ name: 'app', id: hex('c') }] }));
  await pollUntil(t, () => s.api.watchers === 1 && s.cache.byContainerId(hex('c')) !== undefined, 'changes made meanwhile arrive');
  t.equal(s.cache.size, 2, 'two pods, no duplicate');
  t.ok(s.cache.byContainerId(hex('b')), 'the pod added meanwhile is there');
  t.equal(s.lists(), 1, 'resumed from the resource version: no relist');
  t.equal(s.watches()[1]?.resourceVersion, s.watches()[0]?.resourceVersion, 'the second watch resumes where the first started');
  t.equal(s.cache.restarts, 0, 'a normal end is not a restart');
});

t.test('410 Gone in the watch stream relists', async (t) => {
  const s = await setup(t);
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  s.api.addPod(makePod({ name: 'b', containers: [{ name: 'app', id: hex('b') }] }));
  await started(t, s);
  s.api.hold(true);
  s.api.deletePod('default', 'a');
  s.api.addPod(makePod({ name: 'c', containers: [{ name: 'app', id: hex('c') }] }));
  s.api.compact();
  s.api.closeWatches();
  s.api.hold(false);
  await pollUntil(t, () => s.lists() === 2 && s.api.watchers === 1, 'relisted and watching again');
  await pollUntil(t, () => s.cache.size === 2 && s.cache.byContainerId(hex('c')) !== undefined, 'the relist brought the missed pod');
  t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'the pod deleted meanwhile moved to the deleted pods');
  t.equal(s.cache.restarts, 0, 'the library handles 410 itself');
});

t.test('410 Gone answering the watch request relists', async (t) => {
  const s = await setup(t);
  await started(t, s);
  s.api.failNext(410);
  s.api.closeWatches();
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await pollUntil(t, () => s.lists() === 2 && s.cache.size === 1, 'relisted');
  t.equal(s.cache.restarts, 0, 'not a restart');
});

t.test('a 500 restarts the informer with backoff, serving the last cache meanwhile', async (t) => {
  const s = await setup(t, { backoffBaseMs: 50 });
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await started(t, s);
  s.api.failNext(500, 2);
  s.api.closeWatches();
  await pollUntil(t, () => s.api.requests.length === 3, 'the failing watch request');
  t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'the cache still answers while failing');
  t.same(s.cache.readiness(), { ready: true, reasons: [] }, 'still ready: it synced once');
  await pollUntil(t, () => s.cache.restarts === 2 && s.api.watchers === 1, 'two restarts, then watching again');
  t.equal(s.restarts.length, 2, 'each restart counted in the metrics');
  t.ok((s.restarts[1] as number) - (s.restarts[0] as number) >= 45, 'the second restart waited longer (backoff)');
  t.equal(s.lists(), 1, 'resumed from the last resource version: no relist needed');
});

t.test('errors before the first sync show in readiness', async (t) => {
  await t.test('a 500 on the list', async (t) => {
    const s = await setup(t, { backoffBaseMs: 400, backoffMaxMs: 400, random: () => 1 });
    s.api.failNext(500);
    await s.cache.start();
    await pollUntil(t, () => /HTTP 500/.test(s.cache.readiness().reasons.join()), 'the failed list is reported');
    t.same(s.cache.readiness(), { ready: false, reasons: ['pod watch: HTTP 500: injected failure 500 (retrying in 400ms)'] }, 'the error and the delay');
    await pollUntil(t, () => s.cache.synced, 'synced after the restart');
    t.equal(s.cache.restarts, 1, 'one restart');
  });
  await t.test('a refused connection', async (t) => {
    const s = await setup(t, { backoffBaseMs: 1000, backoffMaxMs: 4000, random: () => 1 });
    await s.api.stopListening();
    await s.cache.start();
    const port = new URL(s.api.url).port;
    await pollUntil(t, () => /ECONNREFUSED/.test(s.cache.readiness().reasons.join()), 'the refusal is reported');
    t.same(s.cache.readiness(), { ready: false, reasons: [`pod watch: connect ECONNREFUSED 127.0.0.1:${port} (retrying in 1s)`] }, 'in one line with the delay');
    await s.api.listen();
    await pollUntil(t, () => s.cache.synced, 'synced once the server is back');
  });
});

t.test('a refused connection after sync: restarts until the server is back', async (t) => {
  const s = await setup(t, { backoffBaseMs: 10, backoffMaxMs: 40 });
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await started(t, s);
  await s.api.stopListening();
  await pollUntil(t, () => s.cache.restarts >= 3, 'keeps restarting while refused');
  t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'serving the last cache');
  t.ok(s.cache.readiness().ready, 'still ready');
  await s.api.listen();
  s.api.addPod(makePod({ name: 'b', containers: [{ name: 'app', id: hex('b') }] }));
  await pollUntil(t, () => s.cache.byContainerId(hex('b')) !== undefined && s.api.watchers === 1, 'back in sync');
  t.equal(s.restarts.length, s.cache.restarts, 'every restart counted in the metrics');
});

t.test('an API server gone for longer than unreadyAfterMs: not ready, saying so; ready again once it answers', async (t) => {
  const s = await setup(t, { backoffBaseMs: 10, backoffMaxMs: 40, unreadyAfterMs: 1500 });
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await started(t, s);
  await s.api.stopListening();
  const gone = Date.now();
  await pollUntil(t, () => s.cache.restarts >= 1, 'the outage noticed');
  t.same(s.cache.readiness(), { ready: true, reasons: [] }, 'ready at first: the cached pods serve');
  await pollUntil(t, () => !s.cache.readiness().ready, 'not ready after the grace', 10_000);
  const after = Date.now() - gone;
  t.ok(after >= 1500, `not before unreadyAfterMs (${after} ms after the server went away)`);
  t.match(s.cache.readiness().reasons, [
    /^pod watch: failing for [\d.]+s, the cached pods may be out of date: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(retrying in \d+ms\)$/,
  ], 'saying for how long and why');
  t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'the cached pods still resolve');
  await s.api.listen();
  await pollUntil(t, () => s.cache.readiness().ready, 'ready once the server answers again', 10_000);
  t.pass('ready again');
});

t.test('a bookmark moves the resume point past changes of other nodes', async (t) => {
  const s = await setup(t);
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await started(t, s);
  s.api.addPod(makePod({ name: 'other', nodeName: 'node-2' }));
  s.api.bookmark();
  s.api.compact();
  s.api.closeWatches();
  await pollUntil(t, () => s.watches().length === 2 && s.api.watchers === 1, 'watching again');
  t.equal(s.watches()[1]?.resourceVersion, '102', 'resumed from the bookmark');
  t.equal(s.lists(), 1, 'no 410, no relist');
});

t.test('API server unreachable at start: not ready with the reason, retries growing to a cap', async (t) => {
  const s = await setup(t, { backoffBaseMs: 20, backoffMaxMs: 80, random: () => 1 });
  await s.api.stopListening();
  await s.cache.start();
  await pollUntil(t, () => s.delays.length >= 5, 'five restarts while refused');
  t.same(s.delays.slice(0, 5), [20, 40, 80, 80, 80], 'each delay doubles, then stays at the cap');
  t.equal(s.restarts.length, s.cache.restarts, 'every restart counted in execwatch_kube_watch_restarts_total');
  t.match(s.cache.readiness(), { ready: false, reasons: [/^pod watch: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(retrying in 80ms\)$/] }, 'not ready, saying why');
  t.equal(s.cache.byContainerId(hex('a')), undefined, 'lookups answer (nothing) instead of waiting or throwing');
  s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
  await s.api.listen();
  await pollUntil(t, () => s.cache.synced && s.cache.byContainerId(hex('a')) !== undefined, 'synced once the server answers');
  t.same(s.cache.readiness(), { ready: true, reasons: [] }, 'ready');
});

t.test('jittered delays stay between half the ceiling and the ceiling', async (t) => {
  const draws = [0, 0.5, 1, 0, 0.5, 1];
  const s = await setup(t, { backoffBaseMs: 20, backoffMaxMs: 80, random: () => draws.shift() ?? 1 });
  await s.api.stopListening();
  await s.cache.start();
  await pollUntil(t, () => s.delays.length >= 6, 'six restarts while refused');
  // Ceilings 20, 40, 80, 80, 80, 80: the upper half of each, as drawn.
  t.same(s.delays.slice(0, 6), [10, 30, 80, 40, 60, 80], 'spread by the random draw, never above the cap');
});

/** The names of the pods the cache resolves these containers to. */
function names(s: Setup, ids: string[]): (string | undefined)[] {
  return ids.map((id) => s.cache.byContainerId(hex(id))?.name);
}

t.test('API server gone mid-run and back', async (t) => {
  for (const compacted of [false, true]) {
    await t.test(compacted ? 'its history compacted meanwhile: 410, one relist' : 'resuming where the watch was', async (t) => {
      const s = await setup(t, { backoffBaseMs: 10, backoffMaxMs: 40 });
      for (const name of ['a', 'b', 'c']) s.api.addPod(makePod({ name, containers: [{ name: 'app', id: hex(name) }] }));
      await started(t, s);
      const uidOfB = s.cache.byContainerId(hex('b'))?.uid;
      await s.api.stopListening();
      s.api.addPod(makePod({ name: 'd', containers: [{ name: 'app', id: hex('d') }] }));
      s.api.deletePod('default', 'a');
      s.api.updatePod(makePod({ name: 'b', uid: uidOfB, containers: [{ name: 'app', id: hex('e') }] }));
      if (compacted) s.api.compact();
      await pollUntil(t, () => s.cache.restarts >= 2, 'restarting while the server is gone');
      t.same(names(s, ['a', 'b', 'c', 'd']), ['a', 'b', 'c', undefined], 'the last known pods still resolve meanwhile');
      t.same(s.cache.readiness(), { ready: true, reasons: [] }, 'still ready: it keeps serving');
      await s.api.listen();
      await pollUntil(t, () => s.cache.byContainerId(hex('d')) !== undefined && s.api.watchers === 1, 'watching again, the new pod known');
      await pollUntil(t, () => s.cache.size === 3, 'the pod deleted meanwhile is no longer counted');
      t.same(names(s, ['b', 'c', 'd', 'e']), [undefined, 'c', 'd', 'b'], 'every change made meanwhile applied (b runs e now)');
      t.equal(s.cache.byPodUid(uidOfB as string)?.containers.size, 1, 'the modified pod once, with its new container only');
      t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'the deleted pod kept resolvable for late events');
      t.equal(s.lists(), compacted ? 2 : 1, compacted ? 'one relist after 410 Gone' : 'no relist');
      t.equal(s.restarts.length, s.cache.restarts, 'every restart counted');
    });
  }
});

t.test('410 Gone on a continue token starts the list over', async (t) => {
  const s = await setup(t, { pageSize: 2 });
  for (const name of ['a', 'b', 'c', 'd', 'e']) s.api.addPod(makePod({ name, containers: [{ name: 'app', id: hex(name) }] }));
  const first = s.api.stall();
  await s.cache.start();
  await pollUntil(t, () => s.lists() === 1, 'the first page is asked for');
  const second = s.api.stall();
  first();
  await pollUntil(t, () => s.lists() === 2, 'the second page is asked for');
  s.api.addPod(makePod({ name: 'f', containers: [{ name: 'app', id: hex('f') }] }));
  s.api.compact();
  second();
  await pollUntil(t, () => s.cache.synced && s.api.watchers === 1, 'synced after listing again');
  t.equal(s.lists(), 5, 'two pages, the expired one, then three pages from the start');
  t.equal(s.cache.size, 6, 'every pod once, the one added meanwhile included');
  t.equal(s.cache.restarts, 1, 'the library does not handle a 410 on a list: one restart');
});

t.test('a watch that stalls without closing', async (t) => {
  await t.test('silent after answering: ended after the idle timeout, resumed, counted', async (t) => {
    const s = await setup(t, { watchIdleMs: 300, backoffBaseMs: 10, backoffMaxMs: 10 });
    s.api.addPod(makePod({ name: 'a', containers: [{ name: 'app', id: hex('a') }] }));
    await started(t, s);
    s.api.stallWatches();
    const stalledAt = Date.now();
    s.api.addPod(makePod({ name: 'b', containers: [{ name: 'app', id: hex('b') }] }));
    await sleep(150);
    t.equal(s.cache.byContainerId(hex('b')), undefined, 'the stalled watch delivers nothing');
    t.equal(s.cache.byContainerId(hex('a'))?.name, 'a', 'the cache still answers');
    await pollUntil(t, () => s.cache.byContainerId(hex('b')) !== undefined, 'the pod added during the stall arrives');
    // The silence began when the watch was answered, which can be a poll (and, on a loaded
    // machine, a late timer) before stalledAt: the lower bound counts from the request's arrival.
    const watchedAt = s.api.requests.filter((r) => r.query.watch === 'true')[0]?.at ?? Infinity;
    const silent = Date.now() - watchedAt;
    const took = Date.now() - stalledAt;
    t.ok(silent >= 300 && took < 2000, `restarted after the idle timeout, not before nor much later (${silent} ms after the watch began, ${took} ms after the stall)`);
    t.equal(s.api.watchers, 1, 'the stalled connection was closed: one watch open');
    t.equal(s.cache.restarts, 1, 'one restart');
    t.equal(s.restarts.length, 1, 'counted in execwatch_kube_watch_restarts_total');
    t.equal(s.lists(), 1, 'resumed from the resource version: no relist');
    t.equal(s.cache.size, 2, 'no duplicate');
  });
  await t.test('a watch request never answered: given up after the idle timeout', async (t) => {
    const s = await setup(t, { watchIdleMs: 300, backoffBaseMs: 10, backoffMaxMs: 10 });
    await started(t, s);
    const release = s.api.stall();
    s.api.closeWatches();
    await pollUntil(t, () => s.watches().length === 3 && s.api.watchers === 1, 'a new watch after the unanswered one');
    t.equal(s.cache.restarts, 1, 'one restart');
    release();
    await sleep(50);
    t.equal(s.api.watchers, 1, 'the abandoned request, answered late, opens no second watch');
  });
  await t.test('a quiet watch kept alive by bookmarks is left alone', async (t) => {
    const s = await setup(t, { watchIdleMs: 300 }, { bookmarkEveryMs: 100 });
    await started(t, s);
    await sleep(1000);
    t.equal(s.cache.restarts, 0, 'no restart');
    t.equal(s.watches().length, 1, 'the same watch all along');
  });
});

t.test('stop', async (t) => {
  await t.test('during the backoff: no restart', async (t) => {
    const s = await setup(t, { backoffBaseMs: 200, random: () => 1 });
    await s.api.stopListening();
    await s.cache.start();
    await pollUntil(t, () => /ECONNREFUSED/.test(s.cache.readiness().reasons.join()), 'refused, waiting to restart');
    await s.cache.stop();
    await s.api.listen();
    await sleep(300);
    t.equal(s.api.requests.length, 0, 'no request after stop');
    t.equal(s.cache.restarts, 0, 'the pending restart was cancelled');
  });
  await t.test('with a watch request in flight: nothing stays open', async (t) => {
    const s = await setup(t);
    await started(t, s);
    const release = s.api.stall();
    s.api.closeWatches();
    await pollUntil(t, () => s.watches().length === 2, 'the new watch request is in flight');
    await s.cache.stop();
    release();
    await sleep(100);
    t.equal(s.api.watchers, 0, 'the watch that answered after stop was aborted');
  });
  await t.test('with the list in flight: no watch opens', async (t) => {
    const s = await setup(t);
    const release = s.api.stall();
    await s.cache.start();
    await pollUntil(t, () => s.lists() === 1, 'the list is in flight');
    await s.cache.stop();
    release();
    await sleep(100);
    t.equal(s.watches().length, 0, 'no watch request after stop');
  });
});

t.test('a credential plugin failing at watch time is retried, not fatal', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const dir = t.testdir();
  const plugin = join(dir, 'credential.sh');
  // Succeeds, then fails once (the watch), then succeeds: an expired credential forces each call.
  writeFileSync(plugin, `#!/bin/sh
n=$(cat "${dir}/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${dir}/count"
if [ $n -eq 2 ]; then echo "token service down" >&2; exit 1; fi
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t'$n'","expirationTimestamp":"2000-01-01T00:00:00Z"}}'
`);
  chmodSync(plugin, 0o755);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin } } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
  }));
  let restarts = 0;
  const cache = (await createPodCache(await loadKubeConfig(kubeconfig), { nodeName: 'node-1', podGracePeriodMs: 1000, kubeUnreadyAfterMs: 0 },
    { kubeWatchRestart: () => restarts++, forgetPod: () => {} }, { backoffBaseMs: 10 })) as PodCache;
  t.teardown(() => cache.stop());
  await cache.start();
  await pollUntil(t, () => api.watchers === 1, 'watching after the failure');
  t.equal(restarts, 1, 'one restart');
  t.ok(api.requests.every((r) => /^Bearer t\d$/.test(r.authorization ?? '')), 'with the plugin tokens');
});

/** [what, error, one-line description]. */
const errors = [
  ['undici system error', new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) }), 'connect ECONNREFUSED 127.0.0.1:6443'],
  ['undici error without a cause', new TypeError('fetch failed'), 'fetch failed'],
  ['watch status', Object.assign(new Error('Internal Server Error'), { statusCode: 500 }), 'HTTP 500: Internal Server Error'],
  ['API exception with a Status body', Object.assign(new Error('HTTP-Code: 403\nMessage: x\nBody: {}'), { code: 403, body: { message: 'pods is forbidden' } }), 'HTTP 403: pods is forbidden'],
  ['API exception with a Status as text', Object.assign(new Error('HTTP-Code: 500\nMessage: x'), { code: 500, body: '{"kind":"Status","message":"etcdserver: timeout"}' }), 'HTTP 500: etcdserver: timeout'],
  ['API exception with a body that is not JSON', Object.assign(new Error('HTTP-Code: 502\nMessage: Bad Gateway'), { code: 502, body: '<html>' }), 'HTTP 502: Bad Gateway'],
  ['API exception without a body (401)', Object.assign(new Error('HTTP-Code: 401\nMessage: Unauthorized\nBody: undefined\nHeaders: {}'), { code: 401 }), 'HTTP 401: Unauthorized'],
  ['API exception with a JSON body without message', Object.assign(new Error('HTTP-Code: 502'), { code: 502, body: null }), 'HTTP 502: HTTP-Code: 502'],
  ['plain error', new Error('boom'), 'boom'],
  ['not an error', 'weird', 'weird'],
] as const;

t.test('errors are described in one line', async (t) => {
  for (const [what, err, expected] of errors) t.equal(describeError(err), expected, what);
});

t.test('backoff doubles up to its cap, with jitter in the upper half', async (t) => {
  const high = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 1 });
  t.same([1, 2, 3, 4, 5, 6].map(() => high.next()), [100, 200, 400, 800, 1000, 1000], 'doubling, capped');
  high.reset();
  t.equal(high.next(), 100, 'back to the base after a success');
  const low = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
  t.same([low.next(), low.next()], [50, 100], 'at least half of the ceiling');
  const real = new Backoff({ baseMs: 100, maxMs: 1000 });
  for (let i = 0; i < 50; i++) real.next();
  const delay = real.next();
  t.ok(delay >= 500 && delay <= 1000, 'Math.random by default, capped after many attempts');
});

t.test('the pod index', async (t) => {
  const forgotten: string[] = [];
  const metrics = { kubeWatchRestart: () => {}, forgetPod: (ns: string, pod: string) => forgotten.push(`${ns}/${pod}`) };
  await t.test('a static pod resolves through its mirror annotation', async (t) => {
    const index = new PodIndex({ metrics, gracePeriodMs: 10_000, maxDeleted: 2 });
    t.teardown(() => index.close());
    const hash = '5b8e2c3ea2a2fa0d0df7c1f3aabc6d55';
    index.upsert(makePod({ name: 'etcd-node-1', namespace: 'kube-system', uid: 'mirror-1', owner: { kind: 'Node', name: 'node-1' }, annotations: { 'kubernetes.io/config.mirror': hash } }));
    t.equal(index.byPodUid(hash)?.name, 'etcd-node-1', 'by the config hash in its cgroup name');
    t.same(index.byPodUid(hash)?.workload, { kind: 'Pod', name: 'etcd-node-1' }, 'a static pod is its own workload');
    index.delete(makePod({ name: 'etcd-node-1', namespace: 'kube-system' }));
    index.upsert(makePod({ name: 'etcd-node-1', namespace: 'kube-system', uid: 'mirror-2', annotations: { 'kubernetes.io/config.mirror': hash } }));
    t.equal(index.byPodUid(hash)?.uid, 'mirror-2', 'the live mirror wins over the deleted one');
    index.delete(makePod({ name: 'etcd-node-1', namespace: 'kube-system' }));
    t.equal(index.byPodUid(hash)?.uid, 'mirror-2', 'the latest deleted mirror');
    index.upsert(makePod({ name: 'x', uid: 'x' }));
    index.delete(makePod({ name: 'x' }));
    t.equal(index.deletedSize, 2, 'bounded: the oldest deleted pod was evicted');
    t.equal(index.byPodUid('mirror-1'), undefined, 'the evicted pod no longer resolves');
    t.equal(index.byPodUid(hash)?.uid, 'mirror-2', 'its hash still points at the newer mirror');
  });
  await t.test('deleting an unknown pod and closing with grace timers', async (t) => {
    const index = new PodIndex({ metrics, gracePeriodMs: 20, maxDeleted: 2 });
    index.delete(makePod({ name: 'never-seen' }));
    index.delete({});
    t.equal(index.deletedSize, 0, 'nothing to delete');
    index.upsert(makePod({ name: 'a', uid: 'a' }));
    index.delete(makePod({ name: 'a' }));
    index.close();
    await sleep(60);
    t.same(forgotten, [], 'closed: no forgetPod after shutdown');
  });
  await t.test('an update replacing a container id drops the old id', async (t) => {
    const index = new PodIndex({ metrics, gracePeriodMs: 20, maxDeleted: 2 });
    index.upsert(makePod({ name: 'a', uid: 'a', containers: [{ name: 'app', id: hex('1') }] }));
    index.upsert(makePod({ name: 'a', uid: 'a', containers: [{ name: 'app', id: hex('2') }] }));
    t.equal(index.byContainerId(hex('1')), undefined, 'the old id is gone (not in lastState)');
    t.equal(index.byContainerId(hex('2'))?.name, 'a', 'the new id resolves');
    t.equal(index.size, 1, 'one pod');
  });
  await t.test('a pod replaced under the same name (missed deletion) stays resolvable', async (t) => {
    const index = new PodIndex({ metrics, gracePeriodMs: 20, maxDeleted: 2 });
    index.upsert(makePod({ name: 'web-0', uid: 'old', containers: [{ name: 'app', id: hex('1') }] }));
    index.upsert(makePod({ name: 'web-0', uid: 'new', containers: [{ name: 'app', id: hex('2') }] }));
    t.equal(index.size, 1, 'one live pod');
    t.equal(index.byContainerId(hex('1'))?.uid, 'old', 'late events of the old pod resolve');
    t.equal(index.byPodUid('new')?.containers.get(hex('2'))?.name, 'app', 'the new pod resolves');
    t.equal(index.deletedSize, 1, 'the old one counts as deleted');
  });
  await t.test('a pod object without metadata or status', async (t) => {
    t.same(podInfoOf({}), { uid: '', namespace: '', name: '', workload: { kind: 'Pod', name: '' }, containers: new Map(), labels: {} }, 'empty fields, no throw');
  });
  await t.test('a container whose status names no image yet', async (t) => {
    const info = podInfoOf({ status: { containerStatuses: [{ name: 'app', containerID: `containerd://${hex('9')}`, image: '', imageID: '', ready: false, restartCount: 0 }] } });
    t.same(info.containers.get(hex('9')), { name: 'app', image: null, imageId: null, ephemeral: false, probes: [] }, 'null, not an empty string');
  });
});
