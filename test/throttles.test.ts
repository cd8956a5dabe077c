// Throttle episodes: the kernel's start, the counts of each reading added to it, the stop once a
// second has passed without a throttled exec; a duplicate or late start dropped, a lost one made up.
import t from 'tap';
import type { CgroupGrowth } from '../src/capture/cgroup-stats.js';
import type { CgroupPod } from '../src/enrich/cgroup-pods.js';
import { formatTime, type ThrottleEvent } from '../src/events/schema.js';
import { Throttles, type ThrottleContext } from '../src/events/throttles.js';

const S = 1_000_000_000n;
const pod: CgroupPod = { containerId: null, namespace: 'shop', pod: 'web-1', podUid: 'u1', container: null, workload: { kind: 'Deployment', name: 'web' }, attribution: 'pod' };
const ctx = (nowNs: bigint): ThrottleContext => ({ nowNs, timeOf: (ns) => formatTime(ns), podOf: () => pod, node: 'n1' });
const grew = (cgroupId: string, throttled: number, lastNs: bigint): CgroupGrowth => ({ cgroupId, throttled, lost: 0, lastNs });

/** A start as the kernel reports it, enriched. */
function start(cgroupId: string, ns: bigint): ThrottleEvent {
  const time = formatTime(ns);
  return {
    seq: 0, kind: 'throttle', phase: 'start', time, node: 'n1', since: time, suppressed: 0, pid: 42, comm: 'loop',
    cgroupId, cgroup: 'cri-containerd-ab.scope', cgroupParent: 'kubepods-pod1.slice', cgroupTruncated: false,
    containerId: 'ab', namespace: 'shop', pod: 'web-1', podUid: 'u1', container: 'app', image: null, imageId: null, workload: null, attribution: 'pod',
  };
}

t.test('an episode: the kernel\'s start, then the agent\'s stop with the execs suppressed', async (t) => {
  const th = new Throttles();
  t.same(th.read([grew('7', 1, 10n * S)], ctx(10n * S)), [], 'counts before their start record: held');
  t.ok(th.started(start('7', 10n * S)), 'the start opens the episode (deliver it)');
  t.notOk(th.started(start('7', 10n * S + 5n)), 'a second start of it (two CPUs at once) is dropped');
  t.equal(th.open, 1, 'one episode open');
  t.same(th.read([grew('7', 30, 11n * S), grew('8', 0, 11n * S)], ctx(11n * S + 5n)), [], 'still throttled within the last second: no stop');
  const [stop] = th.read([], ctx(12n * S + 1n));
  t.match(stop, { kind: 'throttle', phase: 'stop', since: formatTime(10n * S), time: formatTime(11n * S), suppressed: 31, pid: 42, pod: 'web-1', container: 'app', seq: 0 }, 'a second after the last throttled exec: the stop, with the held and the later counts');
  t.equal(th.open, 0, 'closed');
  t.notOk(th.started(start('7', 11n * S - 1n)), 'a start older than the episode\'s end (late from its pod\'s wait) is not a new one');
  t.ok(th.started(start('7', 13n * S)), 'a later start begins a new episode');
  t.same(th.read([], ctx(13n * S + 100n)).map((e) => e.suppressed), [0], 'a start whose count was never read ends with none suppressed');
});

t.test('a start lost to a full ring is made up from the counts; shutdown ends every episode', async (t) => {
  const th = new Throttles();
  t.same(th.read([grew('9', 5, 20n * S)], ctx(20n * S)), [], 'first reading: its start may still be on its way');
  const half = 21n * S + S / 2n;
  t.same(th.read([grew('9', 5, half)], ctx(half)), [], 'a second and a half later: still waiting');
  t.same(th.read([], ctx(22n * S)), [], 'two seconds later: still waiting');
  const [made] = th.read([], ctx(22n * S + 1n));
  t.match(made, { phase: 'start', pid: 0, comm: '', cgroupId: '9', cgroup: '', namespace: 'shop', pod: 'web-1', podUid: 'u1', workload: { kind: 'Deployment', name: 'web' }, attribution: 'pod', time: formatTime(half) }, 'past two seconds: made up, its pod from the cgroup id');
  t.notOk(th.started(start('9', 20n * S)), 'the record arriving after all is dropped');
  const [stop] = th.read([grew('9', 1, 22n * S + 3n)], ctx(22n * S + 4n), true);
  t.match(stop, { phase: 'stop', suppressed: 11, since: formatTime(half) }, 'final: the open episode ends at once, with every count');
  t.same(new Throttles().read([grew('3', 2, 5n)], ctx(6n), true).map((e) => e.phase), ['start', 'stop'], 'final: counts still waiting get their made-up start and their stop');
  const long = new Throttles();
  long.read([grew('4', 1, S)], ctx(S), true);
  long.read([], ctx(100n * S));
  t.ok(long.started(start('4', S)), 'an ended episode is forgotten after a minute');
});

t.test('readings close together (scrapes) do not make up a start that is still on its way', async (t) => {
  const th = new Throttles();
  for (let i = 0n; i < 5n; i++) t.same(th.read([grew('6', 1, 30n * S)], ctx(30n * S + i * 1_000_000n)), [], `reading ${i + 1n} within 5 ms: waiting`);
  t.ok(th.started(start('6', 30n * S)), 'the kernel\'s start, once decoded, opens the episode');
  const [stop] = th.read([], ctx(32n * S));
  t.match(stop, { phase: 'stop', pid: 42, suppressed: 5 }, 'and its stop is the real start\'s, with every count');
});
