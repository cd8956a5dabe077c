// Gaps: a reading that finds ringbuf_full grown makes one gap event, between the last reading
// that found nothing lost and the last loss, naming the pods the most first.
import t from 'tap';
import type { CgroupGrowth } from '../src/capture/cgroup-stats.js';
import type { CgroupPod } from '../src/enrich/cgroup-pods.js';
import { GAP_PODS, Gaps, type GapContext } from '../src/events/gaps.js';
import { formatTime } from '../src/events/schema.js';

const S = 1_000_000_000n;
const podOf = (id: string): CgroupPod => ({ containerId: null, namespace: id === '1' ? null : 'shop', pod: id === '1' ? null : `pod-${id}`, podUid: null, container: null, workload: null, attribution: 'pod' });
const ctx = (nowNs: bigint): GapContext => ({ nowNs, timeOf: (ns) => formatTime(ns), podOf, node: 'n1' });
const lost = (cgroupId: string, n: number, lastNs: bigint): CgroupGrowth => ({ cgroupId, throttled: 0, lost: n, lastNs });

t.test('a gap: how many, between when and when, whose', async (t) => {
  const gaps = new Gaps(0, 9n * S);
  t.equal(gaps.read(0, [], ctx(10n * S)), null, 'nothing lost: no gap');
  const gap = gaps.read(12, [lost('20', 3, 10n * S + 5n), lost('1', 1, 10n * S + 9n), lost('30', 8, 10n * S + 7n), { cgroupId: '40', throttled: 2, lost: 0, lastNs: 11n * S }], ctx(11n * S));
  t.same(gap, {
    seq: 0, kind: 'gap', time: formatTime(11n * S), node: 'n1', lost: 12, from: formatTime(10n * S), to: formatTime(10n * S + 9n),
    pods: [{ namespace: 'shop', pod: 'pod-30', lost: 8 }, { namespace: 'shop', pod: 'pod-20', lost: 3 }, { namespace: null, pod: null, lost: 1 }],
  }, 'the node\'s count, from the last reading with nothing lost to the last loss, the pods the most first (throttles left out)');
  const next = gaps.read(15, [lost('0', 3, 20n * S)], ctx(12n * S));
  t.match(next, { lost: 3, from: formatTime(11n * S), to: formatTime(12n * S), pods: [{ namespace: '_other', pod: '_other', lost: 3 }] }, 'the next: from the last reading on; the kernel\'s overflow counts as _other; a loss time past now is cut to now');
  t.match(gaps.read(16, [], ctx(13n * S)), { lost: 1, from: formatTime(12n * S), to: formatTime(12n * S), pods: [] }, 'a loss the tables did not place yet: no pods, `to` when it was last complete');
  t.equal(gaps.read(16, [lost('20', 1, 13n * S + 1n)], ctx(14n * S)), null, 'its cgroup\'s count, a reading later: no new gap');
  t.match(gaps.read(17, [lost('30', 1, 14n * S + 1n)], ctx(15n * S)), { lost: 1, from: formatTime(14n * S), pods: [{ pod: 'pod-20', lost: 1 }, { pod: 'pod-30', lost: 1 }] }, 'the next gap names it');
});

t.test('at most GAP_PODS pods are named, the rest summed as _other', async (t) => {
  const growth = Array.from({ length: GAP_PODS + 3 }, (_, i) => lost(String(100 + i), 100 - i, S));
  const gap = new Gaps(0, 0n).read(5000, growth, ctx(2n * S));
  t.equal(gap?.pods.length, GAP_PODS, `${GAP_PODS} entries`);
  t.same(gap?.pods.at(-1), { namespace: '_other', pod: '_other', lost: (100 - 9) + (100 - 10) + (100 - 11) + (100 - 12) }, 'the last sums the pods beyond');
});
