// The pod of a cgroup known only by its id: from a scan of the cgroup v2 tree (pod UID in the
// pod's cgroup name, its containers below) and the pod cache; rescanned for an unknown id, at
// most once a second.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CgroupPods } from '../src/enrich/cgroup-pods.js';
import type { PodInfo, PodLookup } from '../src/kube/types.js';

const UID = '0b8e8d7c-1111-4222-8333-944445555666';
const podInfo: PodInfo = { uid: UID, namespace: 'shop', name: 'web-1', workload: { kind: 'Deployment', name: 'web' }, containers: new Map(), labels: {} };
const lookup: PodLookup = { byContainerId: () => undefined, byPodUid: (uid) => (uid === UID ? podInfo : undefined), synced: true };

t.test('cgroup id → pod, through the tree and the pod cache', async (t) => {
  const root = t.testdir({});
  const podDir = join(root, 'kubepods.slice', `kubepods-pod${UID.replaceAll('-', '_')}.slice`);
  const container = join(podDir, 'cri-containerd-abc.scope');
  mkdirSync(container, { recursive: true });
  mkdirSync(join(root, 'system.slice'));
  const id = (path: string) => String(statSync(path).ino);
  let now = 0;
  const pods = new CgroupPods(root, lookup, () => now);
  const want = { containerId: null, namespace: 'shop', pod: 'web-1', podUid: UID, container: null, workload: { kind: 'Deployment', name: 'web' }, attribution: 'pod' };
  t.same(pods.podOf(id(container)), want, 'a container\'s cgroup: its pod');
  t.same(pods.podOf(id(podDir)), want, 'the pod\'s own cgroup: the pod');
  t.match(pods.podOf(id(join(root, 'system.slice'))), { pod: null, attribution: 'unresolved' }, 'a host cgroup: no pod');
  const later = join(podDir, 'cri-containerd-def.scope');
  mkdirSync(later);
  t.match(pods.podOf(id(later)), { pod: null }, 'a cgroup made since the last scan, asked within the second: not rescanned');
  now = 1000;
  t.same(pods.podOf(id(later)), want, 'a second later: rescanned, found');
  t.match(new CgroupPods(null, lookup).podOf(id(container)), { pod: null }, 'without cgroup v2: none');
  t.match(new CgroupPods(root, null).podOf(id(container)), { pod: null }, 'standalone: none');
  t.match(new CgroupPods(root, { ...lookup, byPodUid: () => undefined }).podOf(id(container)), { pod: null }, 'a pod the cache does not know: none');
  t.ok(new CgroupPods(root, lookup).podOf('1') !== undefined, 'the default clock');
});
