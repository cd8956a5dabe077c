/**
 * The real `helm` binary for the chart tests, fetched by scripts/fetch-helm.mjs, and a renderer
 * that turns `helm template` output into objects. A missing helm is an error, never a skip.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** The repository root. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The chart under test. */
export const chartDir = join(repoRoot, 'charts', 'execwatch');
/** scripts/fetch-helm.mjs. */
export const fetchHelmScript = join(repoRoot, 'scripts', 'fetch-helm.mjs');

/** What a helm (or fetch script) run printed and how it ended. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the fetch script; `cacheDir` overrides the default .cache/helm, `env` the environment. */
export function runFetchHelm(cacheDir?: string, env: NodeJS.ProcessEnv = process.env): RunResult {
  const args = cacheDir === undefined ? [] : ['--cache-dir', cacheDir];
  const r = spawnSync(process.execPath, [fetchHelmScript, ...args], { encoding: 'utf8', timeout: 300_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let cached: string | undefined;

/** Path of the helm binary; throws with the fetch script's own message when it cannot be had. */
export function helmPath(): string {
  if (cached !== undefined) return cached;
  const r = runFetchHelm();
  if (r.status !== 0) {
    throw new Error(`cannot fetch helm (node scripts/fetch-helm.mjs exited ${r.status}): ${r.stderr.trim()}`);
  }
  cached = r.stdout.trim();
  return cached;
}

/** Runs helm with `args` in the repository root. */
export function helm(args: readonly string[]): RunResult {
  const r = spawnSync(helmPath(), args, { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A rendered Kubernetes object; tests narrow the parts they look at. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Release name and namespace every render uses. */
export const release = { name: 'execwatch', namespace: 'observability' } as const;

/**
 * `helm template` of the chart with the given values files and `--set` pairs, parsed into objects
 * (test hooks included). Throws with helm's error output when rendering fails.
 */
export function renderChart(valuesFiles: readonly string[] = [], set: readonly string[] = []): K8sObject[] {
  const args = ['template', release.name, chartDir, '--namespace', release.namespace];
  for (const f of valuesFiles) args.push('--values', f);
  for (const s of set) args.push('--set', s);
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value !== null) objects.push(value as K8sObject);
  }
  return objects;
}
