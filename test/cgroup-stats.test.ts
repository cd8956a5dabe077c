// The kernel's counts by cgroup, read as what grew since the last reading: summed over CPUs and
// slots, a slot given to another cgroup starting again, a torn read never counting backwards.
import t from 'tap';
import { CgroupStatsReader } from '../src/capture/cgroup-stats.js';
import { encodeCgroupStats } from './helpers/records.js';

t.test('growth by cgroup, over every CPU', async (t) => {
  const reader = new CgroupStatsReader();
  t.same(reader.read(encodeCgroupStats(2, [])), [], 'nothing counted: nothing grew');
  t.same(
    reader.read(encodeCgroupStats(2, [
      [0, 5, { cgroupId: 100n, throttled: 3n, lastNs: 50n }],
      [1, 9, { cgroupId: 100n, throttled: 2n, lost: 1n, lastNs: 70n }],
      [1, 10, { cgroupId: 200n, lost: 4n, lastNs: 60n }],
      [0, -1, { cgroupId: 0n, lost: 1n, lastNs: 65n }],
    ])),
    [
      { cgroupId: '0', throttled: 0, lost: 1, lastNs: 65n },
      { cgroupId: '100', throttled: 5, lost: 1, lastNs: 70n },
      { cgroupId: '200', throttled: 0, lost: 4, lastNs: 60n },
    ],
    'both CPUs\' slots of a cgroup add up; the latest count\'s time; `other` is cgroup 0',
  );
  t.same(
    reader.read(encodeCgroupStats(2, [
      [0, 5, { cgroupId: 100n, throttled: 10n, lastNs: 90n }],
      [1, 9, { cgroupId: 100n, throttled: 2n, lost: 1n, lastNs: 70n }],
      [1, 10, { cgroupId: 200n, lost: 4n, lastNs: 60n }],
      [0, -1, { cgroupId: 0n, lost: 1n, lastNs: 65n }],
    ])),
    [{ cgroupId: '100', throttled: 7, lost: 0, lastNs: 90n }],
    'the next reading: only what grew since',
  );
  t.same(
    reader.read(encodeCgroupStats(2, [
      [0, 5, { cgroupId: 300n, claimedNs: 95n, throttled: 1n, lastNs: 95n }],
      [1, 9, { cgroupId: 100n, throttled: 2n, lost: 1n, lastNs: 70n }],
      [1, 10, { cgroupId: 200n, claimedNs: 96n, lost: 2n, lastNs: 96n }],
    ])),
    [
      { cgroupId: '300', throttled: 1, lost: 0, lastNs: 95n },
      { cgroupId: '200', throttled: 0, lost: 2, lastNs: 96n },
    ],
    'a slot taken over by another cgroup, or given again to the same one, counts from zero',
  );
  t.same(
    reader.read(encodeCgroupStats(2, [
      [0, 5, { cgroupId: 300n, claimedNs: 95n, throttled: 0n, lost: 1n, lastNs: 99n }],
      [1, 9, { cgroupId: 100n, throttled: 2n, lost: 1n, lastNs: 70n }],
      [1, 10, { cgroupId: 200n, claimedNs: 96n, lost: 2n, lastNs: 96n }],
    ])),
    [],
    'a slot read half-written (a count behind the last reading\'s) counts nothing',
  );
  t.same(
    reader.read(encodeCgroupStats(2, [
      [0, 5, { cgroupId: 300n, claimedNs: 95n, throttled: 4n, lastNs: 99n }],
    ])),
    [{ cgroupId: '300', throttled: 3, lost: 0, lastNs: 99n }],
    'and the next reading catches up from the last whole one',
  );
});
