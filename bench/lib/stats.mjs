// SPDX-License-Identifier: Apache-2.0
/** Statistics helpers of the benchmark. */

export const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Nearest-rank percentile (p in 0..100). */
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** Losses by stage as `stage=N …`, or 0. */
export const lostText = (lost) =>
  Object.entries(lost)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '0';
