/**
 * The in-process agent with Kubernetes, shared by the real-kernel tests: its configuration, a
 * kubeconfig at the API-server double, fake containers (real cgroup v2 directories named as a
 * runtime names them, with their pods), an exec inside one, and what /metrics and /api/events show.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../../src/config.js';
import { parseConfig } from '../../src/config/parse.js';
import type { ExecEvent } from '../../src/events/schema.js';
import { makePod, type ApiServerDouble } from './apiserver.js';
import { cgroup2Root, execHelper, makeCgroup, marker } from './kernel.js';
import type { Test } from './poll.js';

/** The namespace of every fake container's pod. */
export const NAMESPACE = 'shop';

/** The configuration of these flags alone: an empty environment, whatever KUBECONFIG the shell has. */
export function configOf(args: string[]): Config {
  const parsed = parseConfig(args, {});
  if (parsed.kind !== 'run') throw new Error(`not a run configuration: ${args.join(' ')}`);
  return parsed.config;
}

/**
 * A kubeconfig pointing at `api`, in a directory of its own: t.testdir() is named after the test,
 * and a second run of the same file at the same time (the whole suite next door) would overwrite it.
 */
export function kubeconfigFor(t: Test, api: ApiServerDouble): string {
  const dir = mkdtempSync(join(tmpdir(), 'execwatch-kubeconfig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return api.kubeconfigPath(dir);
}

/** Removes a cgroup tree, deepest first (a cgroup directory holds only its interface files). */
function removeCgroupTree(path: string): void {
  let entries;
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) removeCgroupTree(join(path, entry.name));
  rmdirSync(path);
}

/** A fake container: its pod (owned by a Deployment's ReplicaSet) and its cgroup directory. */
export interface FakeContainer {
  podName: string;
  deployment: string;
  uid: string;
  id: string;
  cgroup: string;
  pod: (withStatus?: boolean) => ReturnType<typeof makePod>;
}

/** A cgroup path below the pod level, from the pod's uid and the container's id. */
export type CgroupLayout = (uid: string, id: string) => readonly string[];

/**
 * Test-owned cgroup parents, removed when `t` ends; makes fake containers of pods on `node`
 * (unless another is given), their cgroups laid out as `layout` and their status ids prefixed
 * `runtime`.
 */
export function cgroupArea(t: Test, node: string): (label: string, layout: CgroupLayout, runtime: string, onNode?: string) => FakeContainer {
  const area = join(cgroup2Root(), marker('kube'));
  makeCgroup(area);
  t.teardown(() => removeCgroupTree(area));
  let n = 0;
  return (label, layout, runtime, onNode = node) => {
    n += 1;
    const deployment = `${label}-${n}`;
    const hash = randomBytes(5).toString('hex').slice(0, 9);
    const podName = `${deployment}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const uid = randomUUID();
    const id = randomBytes(32).toString('hex');
    const cgroup = join(area, `case-${n}`, ...layout(uid, id));
    makeCgroup(cgroup);
    const pod = (withStatus = true) =>
      makePod({
        name: podName,
        namespace: NAMESPACE,
        uid,
        nodeName: onNode,
        containers: [{ name: 'app', id: withStatus ? id : null, runtime }],
        owner: { kind: 'ReplicaSet', name: `${deployment}-${hash}` },
        labels: { app: deployment, 'pod-template-hash': hash },
      });
    return { podName, deployment, uid, id, cgroup, pod };
  };
}

/** Runs /usr/bin/true with marker `m` inside `cgroup` (the helper joins it, then execs). */
export function runInCgroup(cgroup: string, m: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(execHelper(), ['cgroup', cgroup, '/usr/bin/true', 'true', m], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exec-helper cgroup exited ${code}: ${err}`))));
  });
}

/** One sample of a Prometheus text exposition. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of `name` on the agent's /metrics. */
export async function samples(metricsUrl: string, name: string): Promise<Sample[]> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key as string] = value as string;
    found.push({ labels, value: Number(m[3]) });
  }
  return found;
}

/** The value of the sample of `name` with exactly `labels`, or NaN when there is none. */
export async function sampleValue(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await samples(metricsUrl, name)).find((s) => isDeepStrictEqual(s.labels, labels))?.value ?? Number.NaN;
}

/** execwatch_pods: the pods the agent knows on its node. */
export function podsGauge(metricsUrl: string): Promise<number> {
  return sampleValue(metricsUrl, 'execwatch_pods');
}

/** Whether /readyz says ready. */
export async function ready(metricsUrl: string): Promise<boolean> {
  return (await fetch(`${metricsUrl}/readyz`)).status === 200;
}

/** GET /api/events with `query`. */
export async function events(apiUrl: string, query: Record<string, string>): Promise<ExecEvent[]> {
  const res = await fetch(`${apiUrl}/api/events?${new URLSearchParams(query)}`);
  if (!res.ok) throw new Error(`GET /api/events: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: ExecEvent[] }).events;
}

/** The exec of /usr/bin/true carrying marker `m` (not the helper's own exec, made outside the cgroup). */
export async function execOf(apiUrl: string, m: string): Promise<ExecEvent | undefined> {
  return (await events(apiUrl, { q: m })).find((e) => e.filename === '/usr/bin/true');
}
