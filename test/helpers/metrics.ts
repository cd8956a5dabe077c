/** The agent's metrics for tests that need a registry but no tracer: capture stats all zero. */
import { createMetrics, type Metrics, type MetricsOptions } from '../../src/metrics/index.js';

export function idleMetrics(overrides: Partial<MetricsOptions> = {}): Metrics {
  return createMetrics({
    labels: ['namespace', 'pod'],
    maxSeries: 10,
    version: 'test',
    kernel: 'test',
    captureStats: () => ({ counters: { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, attached: [], unavailable: [], decodeErrors: 0, pipelineErrors: 0 }),
    ...overrides,
  });
}
