/**
 * A real Prometheus (Debian's /usr/bin/prometheus) for the dashboard test: started on a free
 * loopback port with a generated configuration and its own storage in a temporary directory,
 * queried through its HTTP API. A missing binary is an error, never a skip.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

/** A port of 127.0.0.1 that was free a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One series of an instant query. */
export interface Sample {
  metric: Record<string, string>;
  /** The sample value as Prometheus prints it ("1", "0.25", "NaN"). */
  value: string;
}

export interface PrometheusServer {
  url: string;
  /** Instant query at the current time through /api/v1/query; throws on a query error. */
  query(expr: string): Promise<Sample[]>;
  /** Values of `label` over the series `match` selects (/api/v1/label/<label>/values), as Grafana's label_values(). */
  labelValues(match: string, label: string): Promise<string[]>;
  /** What Prometheus printed so far, for failure messages. */
  output(): string;
  /** Stops Prometheus (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  close(): Promise<void>;
}

/** Scrape job of the generated configuration. */
export interface ScrapeJob {
  job: string;
  /** host:port of each target. */
  targets: string[];
  /** Target labels, as a scrape configuration's relabelling would add them (the node label). */
  labels?: Record<string, string>;
  /** The scrape_interval, which also is the evaluation interval. */
  interval: string;
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`${url}: HTTP ${res.status} ${body.errorType ?? ''}: ${body.error ?? 'no data'}`);
  }
  return body.data;
}

/**
 * Starts Prometheus with one scrape job, its storage and configuration under `dir`, and resolves
 * when it answers /-/ready. The configuration is written as JSON, which is YAML too.
 */
export async function startPrometheus(dir: string, job: ScrapeJob): Promise<PrometheusServer> {
  if (!existsSync(PROMETHEUS_BIN)) throw new Error(`${PROMETHEUS_BIN} is missing: apt-get install prometheus`);
  const config = {
    global: { scrape_interval: job.interval, scrape_timeout: job.interval, evaluation_interval: job.interval },
    scrape_configs: [
      {
        job_name: job.job,
        // As the chart README's hand-written job: the exec's namespace/pod labels win over target labels.
        honor_labels: true,
        static_configs: [{ targets: job.targets, labels: job.labels ?? {} }],
      },
    ],
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let printed = '';
  child.stdout.on('data', (d: Buffer) => (printed += d.toString()));
  child.stderr.on('data', (d: Buffer) => (printed += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));

  const close = async (): Promise<void> => {
    if (!running) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!running) throw new Error(`prometheus exited at start (code ${await exited}): ${printed}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`prometheus not ready after 30 s: ${printed}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(
        `${url}/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
      return data.result.map((r) => ({ metric: r.metric, value: r.value[1] }));
    },
    async labelValues(match, label) {
      return api<string[]>(`${url}/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`);
    },
    output: () => printed,
    close,
  };
}
