// Scope (issue 19) without the kernel: the rules' verdicts, the label selectors, the table laid
// out as the BPF program reads it, the cgroup tree scan on a fake tree, and the owner that keeps
// the table in step with the pod cache.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { ExecEvent } from '../src/events/schema.js';
import type { PodInfo } from '../src/kube/types.js';
import { scanCgroupTree } from '../src/scope/cgroups.js';
import { narrowsScope, outOfScope, parseLabelSelector, type ScopeRules } from '../src/scope/rules.js';
import { Scope } from '../src/scope/scope.js';
import { buildScopeSlots, SCOPE_HASH_MUL, SCOPE_PROBES, SCOPE_REASONS, SCOPE_SLOT_BITS, SCOPE_SLOTS, SCOPE_SUBTREE, scopeHome, type ScopeEntry } from '../src/scope/table.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';
import { repoRoot } from './helpers/kernel.js';

const header = readFileSync(join(repoRoot, 'bpf', 'execwatch.h'), 'utf8');

const rules = (over: Partial<ScopeRules> = {}): ScopeRules => ({ includeNamespaces: [], excludeNamespaces: [], excludeHost: false, excludePods: [], ...over });
const pod = (namespace: string, labels: Record<string, string> = {}) => ({ namespace, labels });

t.test('the table constants mirror bpf/execwatch.h', async (t) => {
  const define = (name: string) => new RegExp(`#define ${name} (\\w+)`).exec(header)?.[1];
  t.equal(SCOPE_SLOTS, Number(define('EXECWATCH_SCOPE_SLOTS')), 'SCOPE_SLOTS');
  t.equal(1 << SCOPE_SLOT_BITS, SCOPE_SLOTS, 'SCOPE_SLOT_BITS is its logarithm');
  t.equal(SCOPE_SLOT_BITS, Number(define('EXECWATCH_SCOPE_SLOT_BITS')), 'SCOPE_SLOT_BITS');
  t.equal(SCOPE_PROBES, Number(define('EXECWATCH_SCOPE_PROBES')), 'SCOPE_PROBES');
  t.equal(SCOPE_SUBTREE, Number(define('EXECWATCH_SCOPE_SUBTREE')), 'SCOPE_SUBTREE');
  t.equal(SCOPE_HASH_MUL, BigInt((define('EXECWATCH_SCOPE_HASH_MUL') as string).replace(/ULL$/, '')), 'SCOPE_HASH_MUL');
  const body = /enum execwatch_scope \{([^}]*)\}/.exec(header)?.[1] ?? '';
  const reasons = Object.fromEntries([...body.matchAll(/EXECWATCH_SCOPE_(\w+) = (\d+),/g)].map(([, k, v]) => [(k as string).toLowerCase(), Number(v)]));
  t.same({ ...SCOPE_REASONS, in: 0 }, reasons, 'SCOPE_REASONS = enum execwatch_scope');
});

t.test('verdicts', async (t) => {
  const cases = [
    ['no option: everything in scope', rules(), pod('kube-system'), null],
    ['no option: the host too', rules(), null, null],
    ['--exclude-host', rules({ excludeHost: true }), null, 'host'],
    ['--include-namespaces leaves the host alone', rules({ includeNamespaces: ['shop'] }), null, null],
    ['--include-namespaces keeps its namespaces', rules({ includeNamespaces: ['shop', 'team-*'] }), pod('team-a'), null],
    ['--include-namespaces drops the others', rules({ includeNamespaces: ['shop'] }), pod('shop2'), 'namespace'],
    ['--exclude-namespaces with a pattern', rules({ excludeNamespaces: ['kube-*'] }), pod('kube-system'), 'namespace'],
    ['a pattern is anchored', rules({ excludeNamespaces: ['kube-*'] }), pod('my-kube-system'), null],
    ['a dot in a pattern is a dot', rules({ excludeNamespaces: ['a.b'] }), pod('axb'), null],
    ['--exclude-pods', rules({ excludePods: [parseLabelSelector('app=healthcheck')] }), pod('shop', { app: 'healthcheck' }), 'pod'],
    ['--exclude-pods: another value', rules({ excludePods: [parseLabelSelector('app=healthcheck')] }), pod('shop', { app: 'web' }), null],
    ['any of several selectors', rules({ excludePods: [parseLabelSelector('a=1'), parseLabelSelector('b')] }), pod('shop', { b: '' }), 'pod'],
    ['namespace first', rules({ excludeNamespaces: ['shop'], excludePods: [parseLabelSelector('a')] }), pod('shop', { a: 'x' }), 'namespace'],
  ] as const;
  for (const [what, r, p, want] of cases) t.equal(outOfScope(r, p), want, what);
  t.equal(narrowsScope(rules()), false, 'no option narrows nothing');
  t.equal(narrowsScope(rules({ excludeHost: true })), true, '--exclude-host narrows');
});

t.test('label selectors as kubectl -l takes them', async (t) => {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'a' };
  const cases = [
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app!=db', true],
    ['nope!=x', true],
    ['app', true],
    ['!app', false],
    ['!nope', true],
    ['tier in (front,back)', true],
    ['tier in (back)', false],
    ['tier notin (back, side)', true],
    ['nope in (a)', false],
    ['nope notin (a)', true],
    ['app=web,tier=front', true],
    ['app=web, tier=back', false],
    ['example.com/team=a', true],
  ] as const;
  for (const [text, want] of cases) t.equal(outOfScope(rules({ excludePods: [parseLabelSelector(text)] }), pod('ns', labels)) === 'pod', want, text);
  for (const [bad, why] of [[' ', 'is not a label selector'], [',', 'is not a label selector'], ['a,,b', 'is not a label selector'], ['a b=c', 'has an invalid label key "a b=c"'], ['a in (x y)', 'has an invalid label value "x y"']] as const) {
    t.throws(() => parseLabelSelector(bad), { message: why }, `"${bad}" ${why}`);
  }
});

t.test('the table: each entry within reach of its home slot, as the BPF program searches', async (t) => {
  const entries = new Map<bigint, ScopeEntry>();
  for (let i = 1n; i <= 900n; i++) entries.set(i * 7919n, { reason: i % 2n ? 'namespace' : 'pod', subtree: i % 3n !== 0n });
  entries.set(1n, { reason: 'host', subtree: false });
  const built = buildScopeSlots(entries);
  t.equal(built.slots.length, SCOPE_SLOTS * 16, 'one copy of the slots');
  t.equal(built.entries + built.dropped, entries.size, 'every entry placed or counted');
  t.equal(built.byReason.host + built.byReason.namespace + built.byReason.pod, built.entries, 'by reason adds up');
  // The kernel's search: from the home slot, until the id or an empty slot, at most SCOPE_PROBES.
  const find = (id: bigint): number => {
    for (let i = 0; i < SCOPE_PROBES; i++) {
      const at = ((scopeHome(id) + i) & (SCOPE_SLOTS - 1)) * 16;
      const got = built.slots.readBigUInt64LE(at);
      if (got === 0n) return -1;
      if (got === id) return built.slots.readUInt32LE(at + 8);
    }
    return -1;
  };
  let found = 0;
  for (const [id, e] of entries) {
    const verdict = find(id);
    if (verdict < 0) continue;
    found += 1;
    if (verdict !== (SCOPE_REASONS[e.reason] | (e.subtree ? SCOPE_SUBTREE : 0))) t.fail(`cgroup ${id}: verdict ${verdict}`);
  }
  t.equal(found, built.entries, 'every placed entry is found by the kernel\'s search');
  t.equal(find(123456789n), -1, 'an id not listed is not found');
  t.equal(scopeHome(0xffffffffffffffffn) < SCOPE_SLOTS, true, 'the home of the largest id is a slot');

  // Crowd one home: the ninth entry has nowhere to go, and subtrees are placed first.
  const home = scopeHome(1000n);
  const crowd = new Map<bigint, ScopeEntry>();
  for (let id = 1n; crowd.size < SCOPE_PROBES + 1; id++) if (scopeHome(id) === home) crowd.set(id, { reason: 'pod', subtree: crowd.size !== 0 });
  crowd.set(0n, { reason: 'host', subtree: true });
  const crowded = buildScopeSlots(crowd);
  t.equal(crowded.dropped, 2, 'an id 0 and the entry past the reach are dropped');
  t.equal(crowded.entries, SCOPE_PROBES, 'the reach is full');
  t.equal(find.call(null, [...crowd.keys()][0] as bigint), -1, 'the one left out is the single-cgroup entry');
});

t.test('the cgroup tree scan', async (t) => {
  const root = t.testdir();
  const uid = '0b1c2d3e-0000-4000-8000-000000000001';
  const podDir = join(root, 'area', 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice`);
  mkdirSync(join(podDir, 'cri-containerd-a.scope', 'nested'), { recursive: true });
  mkdirSync(join(root, 'area', 'kubepods.slice', 'kubepods-besteffort.slice'), { recursive: true });
  mkdirSync(join(root, 'system.slice', 'sshd.service'), { recursive: true });
  mkdirSync(join(root, 'user.slice'), { recursive: true });
  // Deeper than any kubepods: not looked into.
  mkdirSync(join(root, 'deep', '2', '3', '4', '5', '6', '7', '8', `pod${uid}`), { recursive: true });
  const tree = scanCgroupTree(root);
  t.same([...tree.pods.keys()], [uid], 'the pod found by the UID in its cgroup name');
  t.equal(tree.pods.get(uid)?.length, 3, 'its cgroup, its container\'s and the one nested in it');
  t.equal(tree.hostSubtrees.length, 3, 'system.slice, user.slice and the tree too deep for a pod are the host\'s');
  t.equal(tree.hostOwn.length, 2, 'the root and the area above kubepods hold host processes only themselves');

  const bare = t.testdir({ 'system.slice': {}, 'init.scope': {} });
  const standalone = scanCgroupTree(bare);
  t.same([standalone.pods.size, standalone.hostSubtrees.length, standalone.hostOwn.length], [0, 2, 1], 'no Kubernetes: the root and all below are the host\'s');
  const gone = scanCgroupTree(join(bare, 'missing'));
  t.same([gone.pods.size, gone.hostSubtrees.length, gone.hostOwn.length], [0, 0, 0], 'a missing tree scans as empty');
  const file = join(t.testdir({ f: 'not a directory' }), 'f');
  const unreadable = scanCgroupTree(file);
  t.same([unreadable.pods.size, unreadable.hostSubtrees.length, unreadable.hostOwn.length], [0, 0, 1], 'a root that cannot be listed has nothing below it');
});

t.test('Scope keeps the table in step with the pod cache and judges what the kernel let through', async (t) => {
  const root = t.testdir();
  const uidA = '0b1c2d3e-0000-4000-8000-00000000000a';
  const uidB = '0b1c2d3e-0000-4000-8000-00000000000b';
  mkdirSync(join(root, 'kubepods', 'burstable', `pod${uidA}`, 'c1'), { recursive: true });
  mkdirSync(join(root, 'system.slice'), { recursive: true });
  const pods = new Map<string, PodInfo>();
  const listeners: (() => void)[] = [];
  const lookup = {
    synced: true,
    byContainerId: () => undefined,
    byPodUid: (uid: string) => pods.get(uid),
    onChange(listener: () => void) {
      listeners.push(listener);
      return () => listeners.splice(listeners.indexOf(listener), 1);
    },
  };
  const info = (uid: string, namespace: string): PodInfo => ({ uid, namespace, name: `p-${namespace}`, workload: { kind: 'Pod', name: 'p' }, containers: new Map(), labels: {} });
  const writes: number[] = [];
  const late: string[] = [];
  const scope = new Scope({
    rules: rules({ excludeNamespaces: ['kube-system'], excludeHost: true }),
    cgroupRoot: root,
    pods: lookup,
    write: (_slots, entries) => writes.push(entries),
    metrics: { excludedLate: (reason) => late.push(reason) },
    coalesceMs: 1,
  });
  scope.start();
  t.same(writes, [3], 'the first table: the host\'s (the root, system.slice) and no pod yet');
  t.same(scope.entries, { host: 3, namespace: 0, pod: 0 }, 'by reason');
  t.equal(scope.dropped, 0, 'nothing left out');

  pods.set(uidA, info(uidA, 'kube-system'));
  for (const l of listeners) l();
  for (const l of listeners) l();
  await new Promise((r) => setTimeout(r, 30));
  t.same(writes, [3, 5], 'one rewrite for two changes: the pod and its container');
  scope.refresh();
  t.same(writes, [3, 5], 'an unchanged table is not written again');

  const event = (over: Partial<ExecEvent>) => makeEvent(over);
  t.equal(scope.judge(event({ attribution: 'pod', podUid: uidA })), 'namespace', 'a kube-system pod\'s event the kernel let through is out of scope');
  t.equal(scope.judge(makeHostEvent()), 'host', 'so is a host event');
  t.equal(scope.judge(event({ attribution: 'pod', podUid: uidB })), null, 'a pod not in the cache is in scope');
  t.equal(scope.judge(event({ attribution: 'unresolved', podUid: null })), null, 'so is an unresolved container');
  t.same(late, ['namespace', 'host'], 'the late exclusions are counted');

  scope.close();
  t.equal(listeners.length, 0, 'close() stops following the pod cache');
  scope.refresh();
  t.same(writes, [3, 5], 'a closed scope writes nothing');

  const none = new Scope({ rules: rules(), cgroupRoot: root, pods: lookup, write: () => t.fail('no table without a scope option'), metrics: { excludedLate: () => t.fail('nothing is late') } });
  none.start();
  t.equal(none.judge(makeHostEvent()), null, 'without a scope option everything is in scope');
  const noCgroup2 = new Scope({ rules: rules({ excludeHost: true }), cgroupRoot: null, pods: null, write: () => t.fail('no table without cgroup v2'), metrics: { excludedLate: () => {} } });
  noCgroup2.start();
  t.equal(noCgroup2.judge(makeHostEvent()), 'host', 'without cgroup v2 the agent still judges');
  noCgroup2.close();
});
