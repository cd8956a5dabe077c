// The events left out on purpose, by minute: counted in the minute they were seen, the kernel's
// totals by what grew, a window summed over the whole minutes it overlaps, a day kept.
import t from 'tap';
import { EXCLUDED_MINUTES, ExcludedHistory } from '../src/events/excluded.js';

const M = 60_000;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

t.test('counts land in their minute; a window sums the whole minutes it overlaps', async (t) => {
  const h = new ExcludedHistory(T0);
  h.add('origin', 2, T0 + 10_000);
  h.add('pod', 1, T0 + M + 59_999);
  h.add('pod', 0, T0 + 2 * M);
  h.add('host', 5, T0 + 3 * M);
  const now = T0 + 3 * M + 30_000;
  t.same(h.window(T0, now, now), { fromMs: T0, toMs: now, excluded: { host: 5, namespace: 0, pod: 1, origin: 2 } }, 'everything, up to now');
  t.same(h.window(T0 + M + 30_000, T0 + 3 * M, now), { fromMs: T0 + M, toMs: T0 + 3 * M, excluded: { host: 0, namespace: 0, pod: 1, origin: 0 } }, 'a window ending on a minute\'s start does not reach into that minute; one starting within a minute counts it whole');
  t.same(h.window(T0 - 10 * M, T0 + 1, now), { fromMs: T0, toMs: T0 + M, excluded: { host: 0, namespace: 0, pod: 0, origin: 2 } }, 'nothing before the history began: from says where it did');
  t.same(h.window(now + M, now + 2 * M, now).excluded, { host: 0, namespace: 0, pod: 0, origin: 0 }, 'the future holds nothing');
});

t.test('the kernel\'s totals: what grew since the last reading, in the minute of the reading', async (t) => {
  const h = new ExcludedHistory(T0);
  h.readKernel({ host: 3, namespace: 0, pod: 1 }, T0 + 1000);
  h.readKernel({ host: 3, namespace: 2, pod: 1 }, T0 + M + 1000);
  // A reading behind the last (it does not happen, but must not count twice when it catches up).
  h.readKernel({ host: 2, namespace: 2, pod: 1 }, T0 + M + 2000);
  h.readKernel({ host: 4, namespace: 2, pod: 1 }, T0 + M + 3000);
  t.same(h.window(T0, T0 + M, T0 + 2 * M).excluded, { host: 3, namespace: 0, pod: 1, origin: 0 }, 'the first minute: the first reading');
  t.same(h.window(T0 + M, T0 + 2 * M, T0 + 2 * M).excluded, { host: 1, namespace: 2, pod: 0, origin: 0 }, 'the second: what grew');
});

t.test('a day is kept, in fixed memory: older minutes are gone, and from says so', async (t) => {
  const h = new ExcludedHistory(T0);
  h.add('pod', 7, T0);
  h.add('pod', 1, T0 + 5 * M);
  const later = T0 + EXCLUDED_MINUTES * M + 5 * M + 1;
  h.add('pod', 2, later);
  t.same(h.window(T0, later, later), { fromMs: later - (later % M) - (EXCLUDED_MINUTES - 1) * M, toMs: later, excluded: { host: 0, namespace: 0, pod: 2, origin: 0 } }, 'the minute a day on took the slot of the one before it; the first minute is past the day kept');
});
