/**
 * GET /metrics bodies: the Prometheus text format from prom-client, or OpenMetrics when the
 * scraper's Accept header prefers it. prom-client (15.1) sets the format per registry, and an
 * OpenMetrics scrape renames the counter objects themselves (execwatch_execs_total becomes
 * execwatch_execs), whichever registry it goes through: setContentType and back, a second
 * registry holding the same metrics, Registry.merge. The next text-format scrape then exposes
 * the wrong names (test/metrics.test.ts shows each way). So OpenMetrics is rendered here from the
 * registry's JSON, which leaves the metrics as they are.
 */
import { Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

/** Content types of the two formats. */
export const TEXT_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

/** True when `accept` ranks application/openmetrics-text above the text format (q values). */
export function prefersOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let openMetrics = 0;
  let text = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, q);
    else if (type === 'text/plain' || type === '*/*') text = Math.max(text, q);
  }
  return openMetrics > 0 && openMetrics >= text;
}

const escapeHelp = (s: string): string =>
  s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeLabel = escapeHelp;

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: MetricValue<string>['labels']): string {
  const parts = Object.entries(labels)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** One family in OpenMetrics 1.0: counters lose `_total` in the family name, `*_info` = 1 gauges become info. */
function renderFamily(metric: MetricObjectWithValues<MetricValue<string>>): string[] {
  let family = metric.name;
  let type = String(metric.type);
  let sampleSuffix = '';
  if (type === 'counter' && family.endsWith('_total')) {
    family = family.slice(0, -'_total'.length);
    sampleSuffix = '_total';
  } else if (type === 'counter') {
    sampleSuffix = '_total';
  } else if (
    type === 'gauge' &&
    family.endsWith('_info') &&
    metric.values.every((v) => v.value === 1)
  ) {
    family = family.slice(0, -'_info'.length);
    type = 'info';
    sampleSuffix = '_info';
  }
  const lines = [`# TYPE ${family} ${type}`, `# HELP ${family} ${escapeHelp(metric.help)}`];
  for (const sample of metric.values) {
    const name = (sample as { metricName?: string }).metricName ?? `${family}${sampleSuffix}`;
    lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
  }
  return lines;
}

/** Renders the registry as OpenMetrics text (collectors run, as for any scrape). */
export async function renderOpenMetrics(registry: Registry): Promise<string> {
  const families = (await registry.getMetricsAsJSON()) as MetricObjectWithValues<
    MetricValue<string>
  >[];
  const lines = families.flatMap(renderFamily);
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

/** The body and content type of one scrape, negotiated from the Accept header. */
export async function scrape(
  registry: Registry,
  accept: string | undefined,
): Promise<{ contentType: string; body: string }> {
  if (prefersOpenMetrics(accept)) {
    return { contentType: OPENMETRICS_CONTENT_TYPE, body: await renderOpenMetrics(registry) };
  }
  return { contentType: TEXT_CONTENT_TYPE, body: await registry.metrics() };
}
