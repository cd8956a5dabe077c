import t from 'tap';
import { workloadOf } from '../src/kube/workload.js';
import { makePod } from './helpers/apiserver.js';

type Owner = { kind: string; name: string; controller?: boolean };

/** [what, pod name, owner, labels, expected workload]. */
const cases: readonly (readonly [string, string, Owner | null, Record<string, string>, { kind: string; name: string }])[] = [
  ['bare pod', 'debug', null, {}, { kind: 'Pod', name: 'debug' }],
  ['deployment via its replicaset', 'web-7d9f8c6b5-abcde', { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' }, { 'pod-template-hash': '7d9f8c6b5' }, { kind: 'Deployment', name: 'web' }],
  ['deployment with dashes in its name', 'shop-api-v2-5f6d7-xyz12', { kind: 'ReplicaSet', name: 'shop-api-v2-5f6d7' }, { 'pod-template-hash': '5f6d7' }, { kind: 'Deployment', name: 'shop-api-v2' }],
  ['bare replicaset (no hash label)', 'rs-abcde', { kind: 'ReplicaSet', name: 'rs' }, {}, { kind: 'ReplicaSet', name: 'rs' }],
  ['replicaset not named after the hash', 'rs-x', { kind: 'ReplicaSet', name: 'frontend' }, { 'pod-template-hash': '7d9f8' }, { kind: 'ReplicaSet', name: 'frontend' }],
  ['statefulset', 'db-0', { kind: 'StatefulSet', name: 'db' }, {}, { kind: 'StatefulSet', name: 'db' }],
  ['daemonset', 'execwatch-x7k2p', { kind: 'DaemonSet', name: 'execwatch' }, {}, { kind: 'DaemonSet', name: 'execwatch' }],
  ['cronjob via its job', 'backup-29412345-q8w7e', { kind: 'Job', name: 'backup-29412345' }, {}, { kind: 'CronJob', name: 'backup' }],
  ['cronjob with dashes', 'db-backup-nightly-29412345-abc', { kind: 'Job', name: 'db-backup-nightly-29412345' }, {}, { kind: 'CronJob', name: 'db-backup-nightly' }],
  ['hand-made job with a short number', 'migrate-2-abcde', { kind: 'Job', name: 'migrate-2' }, {}, { kind: 'Job', name: 'migrate-2' }],
  ['hand-made job', 'seed-abcde', { kind: 'Job', name: 'seed' }, {}, { kind: 'Job', name: 'seed' }],
  ['static pod owned by its node', 'kube-apiserver-node-1', { kind: 'Node', name: 'node-1' }, {}, { kind: 'Pod', name: 'kube-apiserver-node-1' }],
  ['custom controller', 'runner-abc', { kind: 'Runner', name: 'ci' }, {}, { kind: 'Runner', name: 'ci' }],
];

t.test('workload from owner references', async (t) => {
  for (const [what, name, owner, labels, expected] of cases) {
    const pod = makePod({ name, labels, ...(owner ? { owner } : {}) });
    t.same(workloadOf(pod), expected, what);
  }
});

t.test('the controller reference wins over other owners', async (t) => {
  const pod = makePod({ name: 'web-1' });
  pod.metadata!.ownerReferences = [
    { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: '1' },
    { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: '2', controller: true },
  ];
  t.same(workloadOf(pod), { kind: 'StatefulSet', name: 'web' }, 'the controller, not the first owner');
  pod.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'Thing', name: 'first', uid: '1' }];
  t.same(workloadOf(pod), { kind: 'Thing', name: 'first' }, 'without a controller, the first owner');
  pod.metadata!.ownerReferences = [];
  t.same(workloadOf(pod), { kind: 'Pod', name: 'web-1' }, 'an empty owner list is a bare pod');
});

t.test('a pod without metadata does not throw', async (t) => {
  t.same(workloadOf({}), { kind: 'Pod', name: '' }, 'empty name, bare pod');
});
