// The agent's real command line from the chart: for the default values and every ci/ scenario,
// the DaemonSet container's command (the image's ENTRYPOINT) and args exactly as `helm template`
// renders them, run as a process on the real kernel from the image's layout: `--check` attaches,
// and the daemon starts, serves and stops on SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { readDockerfile, runtimeStage } from './helpers/dockerfile.js';
import { buildImageLayout, type ImageLayout } from './helpers/layout.js';
import { chartDir, renderChart, type K8sObject } from './helpers/helm.js';
import { watchStartup } from './helpers/command.js';
import { kernelTest } from './helpers/kernel.js';

interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }
interface Container { command?: string[]; args?: string[]; env?: EnvVar[] }
interface PodSpec {
  containers: Container[];
  securityContext?: { fsGroup?: number };
  volumes: { name: string; secret?: { defaultMode?: number } }[];
}

const ciDir = join(chartDir, 'ci');
const SCENARIOS = [
  { name: 'default values', files: [] as string[] },
  ...readdirSync(ciDir).filter((f) => f.endsWith('-values.yaml')).sort().map((f) => ({ name: `ci/${f}`, files: [join(ciDir, f)] })),
];

const runtime = runtimeStage(readDockerfile());
/** The node name the downward API would give (spec.nodeName). */
const NODE = 'chart-node-1';

/**
 * The substitutions this machine needs, and only these:
 * - the image: its file system is re-created from the Dockerfile in a temporary directory
 *   (dependencies linked, see helpers/layout.ts), so the ENTRYPOINT `/app/dist/main.js` runs
 *   that directory's dist/main.js by its shebang, in its WORKDIR;
 * - fieldRef env values, which the kubelet fills, get fixed values, and so do values from a
 *   Secret's key (secretKeyRef: the OTLP headers);
 * - for the long-running start only, listen ports become 0 (the host and the flag stay), so the
 *   run never depends on 9464/9465 being free here.
 */
const FIELD_REFS: Record<string, string> = { 'spec.nodeName': NODE };
/** What a secretKeyRef gives, by Secret and key. */
const SECRET_KEYS: Record<string, string> = { 'execwatch-otlp/otlp-headers': 'x-scope-orgid=chart-test' };

function agentPod(objects: K8sObject[]): PodSpec {
  const ds = objects.filter((o) => o.kind === 'DaemonSet');
  if (ds.length !== 1) throw new Error(`expected one DaemonSet, rendered ${ds.length}`);
  const pod = (ds[0] as K8sObject & { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  if (pod.containers.length !== 1) throw new Error(`expected one container, rendered ${pod.containers.length}`);
  return pod;
}

/**
 * The process environment of the container: PATH (the base image sets it), the image's ENV, then
 * the container's env (values, and fieldRefs filled in). Nothing else of this process' environment
 * passes, so no EXECWATCH_* variable here can stand in for a flag the chart forgot.
 */
function containerEnv(c: Container): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...runtime.env };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef && e.valueFrom.fieldRef.fieldPath in FIELD_REFS) env[e.name] = FIELD_REFS[e.valueFrom.fieldRef.fieldPath];
    else if (e.valueFrom?.secretKeyRef && `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}` in SECRET_KEYS) {
      env[e.name] = SECRET_KEYS[`${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`];
    }
    else throw new Error(`env ${e.name}: ${JSON.stringify(e.valueFrom)} has no stand-in here`);
  }
  return env;
}

/** The container's command line: its command, else the image's ENTRYPOINT (the image has no CMD), then its args. */
function commandLine(c: Container): string[] {
  const entry = c.command ?? runtime.entrypoint;
  if (entry === null) throw new Error('neither the container nor the image has a command');
  return [...entry, ...(c.args ?? [])];
}

/** The image's command line as a local one: only the ENTRYPOINT words are mapped into the layout. */
function localCommand(layout: ImageLayout, line: string[]): { file: string; args: string[] } {
  const entry = runtime.entrypoint ?? [];
  if (JSON.stringify(line.slice(0, entry.length)) !== JSON.stringify(entry)) throw new Error(`the command ${JSON.stringify(line)} does not start with the image's ENTRYPOINT`);
  return { file: layout.entrypoint.file, args: [...layout.entrypoint.args, ...line.slice(entry.length)] };
}

/** The same arguments with the port of each listen address replaced by 0. */
function ephemeralPorts(args: string[]): string[] {
  return args.map((a) => a.replace(/^(--(?:metrics|api)-address=.*:)\d+$/, '$10'));
}

/**
 * Files the pod gets from its volumes (the API token Secret): a file of the same name in a
 * temporary directory stands in, and the flag points there. As the kubelet writes it: owned by
 * root and the pod's fsGroup, with the volume's defaultMode, so the agent reads it after its
 * --run-as switch only if the chart got both right.
 */
const TOKEN = 'chart-command-test-token';
const volumeDir = mkdtempSync(join(tmpdir(), 'execwatch-chart-volume-'));
t.teardown(() => rmSync(volumeDir, { recursive: true, force: true }));
function mountedFiles(args: string[], pod: PodSpec): string[] {
  const fsGroup = pod.securityContext?.fsGroup ?? 0;
  const mode = pod.volumes.find((v) => v.name === 'api-token')?.secret?.defaultMode ?? 0o644;
  chownSync(volumeDir, 0, fsGroup);
  chmodSync(volumeDir, 0o750);
  return args.map((a) => {
    const m = /^--api-token-file=(.*)$/.exec(a);
    if (!m) return a;
    const local = join(volumeDir, basename(m[1] as string));
    writeFileSync(local, `${TOKEN}\n`);
    chownSync(local, 0, fsGroup);
    chmodSync(local, mode);
    return `--api-token-file=${local}`;
  });
}

/** Whether a command line names a token file, so the events API must refuse requests without it. */
const hasTokenFile = (args: readonly string[]): boolean => args.some((a) => a.startsWith('--api-token-file='));

let layout: ImageLayout | null = null;
/** The layout, built by the first test that needs it (the privileged ones only). */
function image(): ImageLayout {
  layout ??= buildImageLayout('linked');
  return layout;
}
t.teardown(() => layout?.remove());

/**
 * Each scenario's container as rendered, grouped by identical command line and environment: most
 * scenarios change the pod, not the agent, and each attach on the real kernel takes seconds.
 */
const COMMANDS = new Map<string, { scenarios: string[]; container: Container; pod: PodSpec }>();
for (const s of SCENARIOS) {
  const pod = agentPod(renderChart(s.files));
  const container = pod.containers[0] as Container;
  const key = JSON.stringify([commandLine(container), containerEnv(container), pod.securityContext, pod.volumes]);
  const group = COMMANDS.get(key) ?? { scenarios: [], container, pod };
  group.scenarios.push(s.name);
  COMMANDS.set(key, group);
}

t.test('every scenario renders a command line that is run below', async (t) => {
  t.same([...COMMANDS.values()].flatMap((g) => g.scenarios).sort(), SCENARIOS.map((s) => s.name).sort(), 'every scenario is in one group');
  t.ok(COMMANDS.size >= 2, `${COMMANDS.size} distinct command lines (ci/custom-args-values.yaml changes the flags)`);
  const guarded = [...COMMANDS.values()].filter((g) => hasTokenFile(g.container.args ?? [])).flatMap((g) => g.scenarios);
  t.ok(guarded.length > 0, `some command line has a token file, so the 401 check below runs (${guarded.join(', ')})`);
});

for (const { scenarios, container, pod } of COMMANDS.values()) {
  t.test(`${scenarios.join(', ')}: the agent accepts the chart's command line`, kernelTest(), async (t) => {
    const line = commandLine(container);
    const env = containerEnv(container);
    t.ok((container.args ?? []).length > 0, `the chart passes arguments: ${(container.args ?? []).join(' ')}`);

    // --check: everything the daemon would do up to attaching, then exit.
    const check = localCommand(image(), [...line, '--check']);
    const r = spawnSync(check.file, check.args, { cwd: image().workdir, env, encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `--check exits 0 (2 would be a rejected flag): ${r.stderr}`);
    t.match(r.stdout, /^ok: (?:7|9|11) programs attached and detached: /m, 'and reports the programs attached');

    // The daemon itself, as the pod runs it (standalone: no API server here).
    const args = ephemeralPorts(line);
    t.same(
      args.map((a, i) => (a === line[i] ? null : [line[i], a])).filter((d) => d !== null),
      line.filter((a) => /^--(metrics|api)-address=/.test(a)).map((a) => [a, a.replace(/\d+$/, '0')]),
      'only the listen ports differ from the chart',
    );
    const run = localCommand(image(), mountedFiles(args, pod));
    const token = hasTokenFile(args) ? TOKEN : null;
    const agent = await watchStartup(spawn(run.file, run.args, { cwd: image().workdir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    t.teardown(() => {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    });
    const metricsUrl = agent.metricsUrl.replace(/\/metrics$/, '');
    const { apiUrl } = agent;
    t.match(agent.err(), new RegExp(`capturing execs on ${NODE} \\((?:7|9|11) programs attached\\)`), 'the node name from NODE_NAME, every program attached');
    const runAs = /^--run-as=(\d+):(\d+)$/.exec(args.find((a) => a.startsWith('--run-as=')) ?? '');
    if (args.includes('--keep-capabilities')) t.match(agent.err(), '--keep-capabilities: every capability and uid 0 are kept', 'keeps its privileges, as asked');
    else t.match(agent.err(), `threads now run as uid ${runAs?.[1]} gid ${runAs?.[2]}, no supplementary groups`, `switched to the chart's agent.runAs (${runAs?.[0]})`);
    t.equal((await fetch(`${metricsUrl}/readyz`)).status, 200, '/readyz answers 200, as the readiness probe asks');
    t.equal((await fetch(`${metricsUrl}/healthz`)).status, 200, '/healthz answers 200, as the liveness probe asks');
    t.match(await (await fetch(`${metricsUrl}/metrics`)).text(), /^execwatch_build_info\{/m, '/metrics serves the agent metrics');
    const auth: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    t.equal((await fetch(`${apiUrl}/api/events`, { headers: auth })).status, 200, 'the events API answers on its address');
    if (token !== null) t.equal((await fetch(`${apiUrl}/api/events`)).status, 401, 'and asks for the token the chart mounts');
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, `SIGTERM stops it with exit 0: ${agent.err()}`);
  });
}
