import t from 'tap';
import { loadKubeConfig } from '../src/kube/kubeconfig.js';
import { createPodCache, PodCache } from '../src/kube/podcache.js';
import { startApiServer } from './helpers/apiserver.js';

/** The type of a subtest's `t` (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const TOKEN_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';
const metrics = { kubeWatchRestart: () => {}, forgetPod: () => {} };

/** Runs with KUBERNETES_SERVICE_HOST/PORT set as given (undefined = unset), restored afterwards. */
function withServiceEnv(t: Test, host: string | undefined, port = '443'): void {
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  const set = (key: string, value: string | undefined) => {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  };
  set('KUBERNETES_SERVICE_HOST', host);
  set('KUBERNETES_SERVICE_PORT', host === undefined ? undefined : port);
  t.teardown(() => {
    set('KUBERNETES_SERVICE_HOST', saved.host);
    set('KUBERNETES_SERVICE_PORT', saved.port);
  });
}

t.test('an explicit kubeconfig wins', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  withServiceEnv(t, '10.96.0.1');
  const root = t.testdir({ [TOKEN_DIR]: { token: 'sa-token' } });
  const kc = loadKubeConfig(api.kubeconfigPath(t.testdir()), { root });
  t.equal(kc?.getCurrentCluster()?.server, api.url, 'the file is used even in a cluster');
});

t.test('an explicit kubeconfig that cannot be used stops the agent with its path', async (t) => {
  const dir = t.testdir({
    'no-context': JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
  });
  t.throws(() => loadKubeConfig(`${dir}/missing`), { message: /^--kubeconfig .*\/missing: ENOENT/ }, 'a missing file');
  t.throws(() => loadKubeConfig(`${dir}/no-context`), { message: /no current context with a cluster$/ }, 'a file without a cluster');
});

t.test('in-cluster when the service account and KUBERNETES_SERVICE_HOST exist', async (t) => {
  withServiceEnv(t, '10.96.0.1');
  const root = t.testdir({ [TOKEN_DIR]: { token: 'sa-token', 'ca.crt': 'x', namespace: 'execwatch' } });
  const kc = loadKubeConfig(null, { root });
  t.equal(kc?.getCurrentCluster()?.server, 'https://10.96.0.1:443', 'the in-cluster API server');
  t.equal(kc?.getCurrentUser()?.authProvider?.config?.tokenFile, `${root}/${TOKEN_DIR}/token`, 'the projected token file');
});

/** [what, KUBERNETES_SERVICE_HOST, token file present]: all standalone. */
const standalone = [
  ['no environment, no token', undefined, false],
  ['service host without a token', '10.96.0.1', false],
  ['token without a service host', undefined, true],
] as const;

t.test('standalone otherwise', async (t) => {
  for (const [what, host, token] of standalone) {
    await t.test(what, async (t) => {
      withServiceEnv(t, host);
      const root = t.testdir(token ? { [TOKEN_DIR]: { token: 'x' } } : {});
      t.equal(loadKubeConfig(null, { root }), null, 'no API server configuration');
    });
  }
});

t.test('createPodCache: null in standalone mode, a cache with a kubeconfig', async (t) => {
  withServiceEnv(t, undefined);
  const config = { kubeconfig: null, nodeName: 'node-1', podGracePeriodMs: 1000 };
  t.equal(createPodCache(config, metrics), null, 'standalone: no pod cache');
  const api = await startApiServer();
  t.teardown(() => api.close());
  const cache = createPodCache({ ...config, kubeconfig: api.kubeconfigPath(t.testdir()) }, metrics);
  t.type(cache, PodCache, 'a pod cache');
  t.equal(cache?.synced, false, 'not started, not synced');
});
