import t from 'tap';
import { CgroupCache, parseCgroup } from '../src/enrich/cgroup.js';

const ID = '3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c';
const ID2 = 'a'.repeat(64);
const UID = '0b6d2c3e-1f2a-4b5c-8d9e-0a1b2c3d4e5f';
const UID_ = UID.replaceAll('-', '_');
const STATIC_UID = '5b8e2c3ea2a2fa0d0df7c1f3aabc6d55';

/**
 * [what, leaf, parent, expected container id, pod UID, enclosing container id]; null id = host
 * process.
 */
const cases = [
  // containerd, systemd driver, cgroup v1 and v2 (same names)
  ['containerd systemd besteffort', `cri-containerd-${ID}.scope`, `kubepods-besteffort-pod${UID_}.slice`, ID, UID, null],
  ['containerd systemd burstable', `cri-containerd-${ID}.scope`, `kubepods-burstable-pod${UID_}.slice`, ID, UID, null],
  ['containerd systemd guaranteed', `cri-containerd-${ID}.scope`, `kubepods-pod${UID_}.slice`, ID, UID, null],
  ['static pod config hash', `cri-containerd-${ID}.scope`, `kubepods-burstable-pod${STATIC_UID}.slice`, ID, STATIC_UID, null],
  // containerd, cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>
  ['containerd cgroupfs', ID, `pod${UID}`, ID, UID, null],
  ['containerd cgroupfs static pod', ID, `pod${STATIC_UID}`, ID, STATIC_UID, null],
  // CRI-O
  ['cri-o systemd', `crio-${ID}.scope`, `kubepods-besteffort-pod${UID_}.slice`, ID, UID, null],
  ['cri-o cgroupfs', `crio-${ID}`, `pod${UID}`, ID, UID, null],
  ['cri-o conmon is not the container', `crio-conmon-${ID}.scope`, `kubepods-besteffort-pod${UID_}.slice`, null, null, null],
  // Docker
  ['docker systemd', `docker-${ID}.scope`, 'system.slice', ID, null, null],
  ['docker cgroupfs', ID, 'docker', ID, null, null],
  ['cri-dockerd in a pod', `docker-${ID}.scope`, `kubepods-burstable-pod${UID_}.slice`, ID, UID, null],
  // podman
  ['podman scope', `libpod-${ID}.scope`, 'machine.slice', ID, null, null],
  ['podman container child', 'container', `libpod-${ID}.scope`, ID, null, null],
  ['podman cgroupfs', `libpod-${ID}`, 'libpod_parent', ID, null, null],
  ['podman conmon', `libpod-conmon-${ID}.scope`, 'machine.slice', null, null, null],
  ['nerdctl', `nerdctl-${ID}.scope`, 'system.slice', ID, null, null],
  // kubelet cgroupfs while containerd names systemd-style
  ['driver mismatch', `kubepods-besteffort-pod${UID_}.slice:cri-containerd:${ID}`, 'besteffort', ID, UID, null],
  ['driver mismatch cri-o', `kubepods-pod${UID_}.slice:crio:${ID}`, 'kubepods', ID, UID, null],
  // nested: kind/k3d/minikube node containers; the innermost component wins
  ['kind node (cgroup v2)', `cri-containerd-${ID}.scope`, `kubelet-kubepods-besteffort-pod${UID_}.slice`, ID, UID, null],
  ['systemd inside a container', 'init.scope', `cri-containerd-${ID}.scope`, ID, null, null],
  ['one container named twice', `crio-${ID}`, `crio-${ID}.scope`, ID, null, null],
  ['a container name inside another container', `cri-containerd-${ID2}.scope`, `cri-containerd-${ID}.scope`, ID2, null, ID],
  ['docker in a pod: inner wins', `docker-${ID2}.scope`, `cri-containerd-${ID}.scope`, ID2, null, ID],
  // host processes and near misses
  ['host init', 'init.scope', '/', null, null, null],
  ['host service', 'sshd.service', 'system.slice', null, null, null],
  ['user session', 'session-3.scope', 'user-1000.slice', null, null, null],
  ['pod slice itself', `kubepods-besteffort-pod${UID_}.slice`, 'kubepods-besteffort.slice', null, null, null],
  ['63 hex', `cri-containerd-${ID.slice(1)}.scope`, `kubepods-pod${UID_}.slice`, null, null, null],
  ['65 hex', `cri-containerd-${ID}0.scope`, `kubepods-pod${UID_}.slice`, null, null, null],
  ['63 hex bare', ID.slice(1), `pod${UID}`, null, null, null],
  ['65 hex bare', `${ID}f`, `pod${UID}`, null, null, null],
  ['uppercase hex', `cri-containerd-${ID.toUpperCase()}.scope`, `kubepods-pod${UID_}.slice`, null, null, null],
  ['uppercase hex bare', ID.toUpperCase(), 'docker', null, null, null],
  ['suffix after the id', `docker-${ID}.scope.bak`, 'system.slice', null, null, null],
  ['empty names', '', '', null, null, null],
  ['malformed pod uid', `cri-containerd-${ID}.scope`, 'kubepods-podnot-a-uid.slice', ID, null, null],
  ['uppercase pod uid', `cri-containerd-${ID}.scope`, `kubepods-pod${UID_.toUpperCase()}.slice`, ID, null, null],
  ['pod word inside a name', `cri-containerd-${ID}.scope`, `mypod${UID}`, ID, null, null],
] as const;

t.test('container id and pod UID from cgroup names', async (t) => {
  for (const [what, leaf, parent, containerId, podUid, enclosingContainerId] of cases) {
    const got = parseCgroup(leaf, parent);
    if (containerId === null) {
      t.equal(got, null, `${what}: a host process`);
    } else {
      t.same(got, { containerId, podUid, enclosingContainerId }, `${what}: container ${containerId.slice(0, 8)}…, pod ${podUid}`);
    }
  }
});

t.test('the cache parses each cgroup once and notices a reused id', async (t) => {
  const cache = new CgroupCache(2);
  const leaf = `cri-containerd-${ID}.scope`;
  const parent = `kubepods-pod${UID_}.slice`;
  const first = cache.lookup('4711', leaf, parent);
  t.same(first, { containerId: ID, podUid: UID, enclosingContainerId: null }, 'parsed on first sight');
  t.equal(cache.lookup('4711', leaf, parent), first, 'the same object on a hit: not parsed again');
  t.same(cache.lookup('4711', 'init.scope', '/'), null, 'a reused cgroup id with other names is parsed again');
  t.equal(cache.lookup('0', leaf, parent)?.containerId, ID, 'id 0 (cgroup v1-only host) is parsed');
  t.equal(cache.size, 1, 'id 0 is never cached');
  cache.lookup('2', `docker-${ID2}.scope`, 'system.slice');
  cache.lookup('3', ID, 'docker');
  t.equal(cache.size, 2, 'bounded: the oldest entry made room');
  t.equal(cache.lookup('3', ID, 'docker')?.containerId, ID, 'the newest entries stay');
});
