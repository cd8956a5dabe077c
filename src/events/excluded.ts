/**
 * The events left out on purpose, by minute: what execwatch_events_excluded_total counts (execs
 * out of scope, dropped in the kernel or, when its table lagged, by the agent; events of an origin
 * given to --exclude-origin), kept as a fixed ring of the last EXCLUDED_MINUTES minutes so that
 * the browse page can say how many fell in the window it shows. They are not events, so the
 * events API cannot list them; the kernel's counts are totals, read every second with the counts
 * by cgroup, and what grew since the last reading is put in the minute of the reading.
 */
import { SCOPE_REASONS, type ScopeReason } from '../scope/table.js';

/** The reasons an event is excluded: the reason label of execwatch_events_excluded_total. */
export const EXCLUDED_REASONS = ['host', 'namespace', 'pod', 'origin'] as const;
export type ExcludedReason = (typeof EXCLUDED_REASONS)[number];

/** Minutes kept: a day. */
export const EXCLUDED_MINUTES = 1440;

const MINUTE_MS = 60_000;

export type ExcludedCounts = Record<ExcludedReason, number>;

/** A zero for every reason: where a sum of counts starts. */
export const noneExcluded = (): ExcludedCounts => Object.fromEntries(EXCLUDED_REASONS.map((reason) => [reason, 0])) as ExcludedCounts;

/** What the kernel counted out of scope so far, by reason (struct execwatch_counters). */
export type KernelExcluded = Record<ScopeReason, number>;

/** The reasons the kernel counts: the scope table's. */
const KERNEL_REASONS = Object.keys(SCOPE_REASONS) as ScopeReason[];

/** The counts over the whole minutes a window overlaps, and which minutes those were. */
export interface ExcludedWindow {
  /** Start of the first minute counted (ms); never before the first minute kept. */
  fromMs: number;
  /** End of the last minute counted (ms), or now for the current minute. */
  toMs: number;
  excluded: ExcludedCounts;
}

export class ExcludedHistory {
  /** The minute (ms / 60,000) each slot holds counts of; -1: none. */
  readonly #minute = new Float64Array(EXCLUDED_MINUTES).fill(-1);
  /** Per slot, one count per reason, in EXCLUDED_REASONS' order. */
  readonly #counts = new Float64Array(EXCLUDED_MINUTES * EXCLUDED_REASONS.length);
  /** The kernel's totals at the last reading. */
  readonly #kernel = Object.fromEntries(KERNEL_REASONS.map((reason) => [reason, 0])) as KernelExcluded;
  /** The first minute counted: the history says nothing of the time before it. */
  readonly #startMinute: number;

  constructor(startMs: number) {
    this.#startMinute = Math.floor(startMs / MINUTE_MS);
  }

  /** Counts `n` events of `reason` excluded at `nowMs`. */
  add(reason: ExcludedReason, n: number, nowMs: number): void {
    if (n <= 0) return;
    const minute = Math.floor(nowMs / MINUTE_MS);
    const slot = minute % EXCLUDED_MINUTES;
    if (this.#minute[slot] !== minute) {
      this.#minute[slot] = minute;
      this.#counts.fill(0, slot * EXCLUDED_REASONS.length, (slot + 1) * EXCLUDED_REASONS.length);
    }
    (this.#counts[slot * EXCLUDED_REASONS.length + EXCLUDED_REASONS.indexOf(reason)] as number) += n;
  }

  /** The kernel's totals now (they only grow): what grew since the last reading is counted at `nowMs`. */
  readKernel(totals: KernelExcluded, nowMs: number): void {
    for (const reason of KERNEL_REASONS) {
      this.add(reason, totals[reason] - this.#kernel[reason], nowMs);
      this.#kernel[reason] = Math.max(this.#kernel[reason], totals[reason]);
    }
  }

  /** The counts of the whole minutes that [sinceMs, untilMs) overlaps, within the minutes kept. */
  window(sinceMs: number, untilMs: number, nowMs: number): ExcludedWindow {
    const now = Math.floor(nowMs / MINUTE_MS);
    const first = Math.max(Math.floor(sinceMs / MINUTE_MS), this.#startMinute, now - EXCLUDED_MINUTES + 1);
    // untilMs is exclusive: a window ending on a minute's start does not reach into it.
    const last = Math.min(Math.ceil(untilMs / MINUTE_MS) - 1, now);
    const excluded = noneExcluded();
    for (let minute = first; minute <= last; minute++) {
      const slot = minute % EXCLUDED_MINUTES;
      if (this.#minute[slot] !== minute) continue;
      EXCLUDED_REASONS.forEach((reason, i) => (excluded[reason] += this.#counts[slot * EXCLUDED_REASONS.length + i] as number));
    }
    const fromMs = first * MINUTE_MS;
    return { fromMs, toMs: Math.max(fromMs, Math.min((last + 1) * MINUTE_MS, nowMs)), excluded };
  }
}
