/**
 * execwatch_event_delay_seconds: a histogram observed once per event. prom-client's Histogram
 * validates and hashes labels and allocates on every observe(), a measurable share of an exec
 * storm; this one adds to plain numbers and gives prom-client, at scrape time, the samples its
 * Histogram would (`_bucket` per bound and `+Inf`, `_sum`, `_count`).
 */
import type { MetricValueWithName } from 'prom-client';

export class DelayHistogram {
  // prom-client's typings give `type` as a numeric enum; its registry reads the string.
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Observations per bucket (not cumulative); the last counts those above every bound. */
  readonly #counts: number[];
  #sum = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > (this.bounds[i] as number)) i += 1;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sum += seconds;
  }

  /** What prom-client's registry reads at a scrape. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: MetricValueWithName<string>[]; aggregator: 'sum' }> {
    const bucket = `${this.name}_bucket`;
    const values: MetricValueWithName<string>[] = [];
    let count = 0;
    this.bounds.forEach((le, i) => {
      count += this.#counts[i] as number;
      values.push({ metricName: bucket, labels: { le }, value: count });
    });
    count += this.#counts[this.bounds.length] as number;
    values.push(
      { metricName: bucket, labels: { le: '+Inf' }, value: count },
      { metricName: `${this.name}_sum`, labels: {}, value: this.#sum },
      { metricName: `${this.name}_count`, labels: {}, value: count },
    );
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
