import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../src/config.js';
import { createPodCache, loadKubeConfig, requestFiles } from '../src/kube/kubeconfig.js';
import { makePod, startApiServer } from './helpers/apiserver.js';
import { pollUntil, type Test } from './helpers/poll.js';


const TOKEN_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';
const metrics = { kubeWatchRestart: () => {}, forgetPod: () => {} };

/** Whether the client library has been loaded in this process (its CommonJS node-fetch is). */
const clientLibraryLoaded = (): boolean =>
  // The library itself is ESM; undici, the HTTP client it loads, is CommonJS and shows here.
  Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/undici/'));

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

// First: every later test loads the library.
t.test('standalone never loads the client library; a kubeconfig does', async (t) => {
  withServiceEnv(t, undefined);
  const config = { nodeName: 'node-1', podGracePeriodMs: 1000, kubeUnreadyAfterMs: 0 };
  const kubeConfig = await loadKubeConfig(null);
  t.equal(kubeConfig, null, 'standalone: no configuration');
  t.equal(await createPodCache(kubeConfig, config, metrics), null, 'standalone: no pod cache');
  t.notOk(clientLibraryLoaded(), 'standalone: @kubernetes/client-node not loaded');
  const api = await startApiServer();
  t.teardown(() => api.close());
  await loadKubeConfig(api.kubeconfigPath(t.testdir()));
  t.ok(clientLibraryLoaded(), 'with a kubeconfig: loaded');
});

t.test('an explicit kubeconfig wins', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  withServiceEnv(t, '10.96.0.1');
  const root = t.testdir({ [TOKEN_DIR]: { token: 'sa-token' } });
  const kc = await loadKubeConfig(api.kubeconfigPath(t.testdir()), { root });
  t.equal(kc?.getCurrentCluster()?.server, api.url, 'the file is used even in a cluster');
});

/** A kubeconfig of one context, its cluster and user as given. */
const kubeconfigWith = (cluster: object, user: object, currentContext = 'c') => JSON.stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': currentContext,
  clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', ...cluster } }],
  users: [{ name: 'u', user }],
  contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
});

t.test('an explicit kubeconfig that cannot be used is a configuration error: one line with --kubeconfig and the file', async (t) => {
  const dir = t.testdir({
    'no-context': JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
    'other-context': kubeconfigWith({}, { token: 'x' }, 'elsewhere'),
    'not-yaml': 'apiVersion: v1\nclusters: [\n  oops',
    'token-file': kubeconfigWith({}, { 'token-file': 'missing-token' }),
    'ca-file': kubeconfigWith({ 'certificate-authority': 'missing-ca.crt' }, { token: 'x' }),
    'client-cert': kubeconfigWith({ 'insecure-skip-tls-verify': true }, { 'client-certificate': 'adir', 'client-key': 'adir' }),
    'client-key': kubeconfigWith({ 'insecure-skip-tls-verify': true }, { 'client-certificate': 'other-context', 'client-key': 'nokey' }),
    adir: {},
  });
  const cases = [
    ['missing', `cannot be loaded (ENOENT: no such file or directory, open '${dir}/missing')`],
    ['adir', 'cannot be loaded (EISDIR: illegal operation on a directory, read)'],
    ['not-yaml', 'cannot be loaded (unexpected end of the stream within a flow collection (3:7))'],
    ['no-context', 'has no current context with a cluster (current-context must name a context whose cluster is listed)'],
    ['other-context', 'has no current context with a cluster (current-context must name a context whose cluster is listed)'],
    // The client reads a token-file while loading, and an absolute path is what it opens.
    ['token-file', "cannot be loaded (ENOENT: no such file or directory, open 'missing-token')"],
    // Certificate files are relative to the kubeconfig's directory; the client reads them at its first request.
    ['ca-file', `names a file that cannot be read (ENOENT: no such file or directory, open '${dir}/missing-ca.crt')`],
    ['client-cert', 'names a file that cannot be read (EISDIR: illegal operation on a directory, read)'],
    ['client-key', `names a file that cannot be read (ENOENT: no such file or directory, open '${dir}/nokey')`],
  ] as const;
  for (const [file, problem] of cases) {
    const path = join(dir, file);
    const err: unknown = await loadKubeConfig(path).catch((e: unknown) => e);
    t.type(err, ConfigError, `${file}: a ConfigError (exit 2)`);
    t.equal((err as Error).message, `--kubeconfig: ${JSON.stringify(path)} ${problem}`, `${file}: one line naming the flag, the file and the problem`);
  }
});

t.test('in-cluster when the service account and KUBERNETES_SERVICE_HOST exist', async (t) => {
  withServiceEnv(t, '10.96.0.1');
  const root = t.testdir({ [TOKEN_DIR]: { token: 'sa-token', 'ca.crt': 'x', namespace: 'execwatch' } });
  const kc = await loadKubeConfig(null, { root });
  t.equal(kc?.getCurrentCluster()?.server, 'https://10.96.0.1:443', 'the in-cluster API server');
  t.same(kc?.getCurrentUser()?.authProvider, { name: 'execwatch-token-file', config: { path: `${root}/${TOKEN_DIR}/token` } },
    'the projected token file, read by execwatch');
});

t.test('requestFiles: what the client reads again after start-up, which must stay readable after --run-as', async (t) => {
  t.same(requestFiles(null), [], 'standalone: nothing');
  withServiceEnv(t, '10.96.0.1');
  const root = t.testdir({
    [TOKEN_DIR]: { token: 'sa-token', 'ca.crt': 'x', namespace: 'execwatch' },
    'files.yaml': kubeconfigWith({ server: 'https://k:6443', 'certificate-authority': 'ca.crt' }, { 'client-certificate': 'c.crt', 'client-key': 'c.key' }),
    'inline.yaml': kubeconfigWith({ server: 'https://k:6443', 'insecure-skip-tls-verify': true }, { token: 'x' }),
    'ca.crt': 'ca', 'c.crt': 'cert', 'c.key': 'key',
  });
  const inCluster = await loadKubeConfig(null, { root });
  t.same(requestFiles(inCluster), [`${root}/${TOKEN_DIR}/ca.crt`, `${root}/${TOKEN_DIR}/token`], 'in-cluster: the CA and the service-account token');
  t.same(requestFiles(await loadKubeConfig(join(root, 'files.yaml'))), ['ca.crt', 'c.crt', 'c.key'].map((f) => join(root, f)), 'a kubeconfig: the files it names');
  t.same(requestFiles(await loadKubeConfig(join(root, 'inline.yaml'))), [], 'a kubeconfig with everything inline: nothing');
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
      t.equal(await loadKubeConfig(null, { root }), null, 'no API server configuration');
    });
  }
});

t.test('createPodCache: null in standalone mode, a cache with a kubeconfig', async (t) => {
  const config = { nodeName: 'node-1', podGracePeriodMs: 1000, kubeUnreadyAfterMs: 0 };
  t.equal(await createPodCache(null, config, metrics), null, 'standalone: no pod cache');
  const api = await startApiServer();
  t.teardown(() => api.close());
  const { PodCache } = await import('../src/kube/podcache.js');
  const cache = await createPodCache(await loadKubeConfig(api.kubeconfigPath(t.testdir())), config, metrics);
  t.type(cache, PodCache, 'a pod cache');
  t.equal(cache?.synced, false, 'not started, not synced');
});

t.test('in-cluster, the service-account token is read from disk for every request', async (t) => {
  const api = await startApiServer({ tls: true });
  t.teardown(() => api.close());
  withServiceEnv(t, '127.0.0.1', String(api.port));
  const root = t.testdir({ [TOKEN_DIR]: { token: 'expired\n', 'ca.crt': api.ca as string, namespace: 'execwatch' } });
  const tokenFile = join(root, TOKEN_DIR, 'token');
  // As the kubelet does: a new file swapped in, never one half written.
  const rotate = (token: string) => {
    writeFileSync(`${tokenFile}.new`, token);
    renameSync(`${tokenFile}.new`, tokenFile);
  };
  const bearer = () => api.requests.at(-1)?.authorization;
  api.acceptTokens(['first']);
  api.addPod(makePod({ name: 'a' }));

  const kubeConfig = await loadKubeConfig(null, { root });
  const { PodCache } = await import('../src/kube/podcache.js');
  const cache = new PodCache({ kubeConfig: kubeConfig!, nodeName: 'node-1', metrics, gracePeriodMs: 1000, backoffBaseMs: 50, backoffMaxMs: 100 });
  t.teardown(() => cache.stop());
  await cache.start();
  await pollUntil(t, () => /HTTP 401/.test(cache.readiness().reasons.join()), 'an expired token at start');
  t.match(cache.readiness().reasons, [/^pod watch: HTTP 401: Unauthorized \(retrying in \d+ms\)$/], 'readiness says the API server refused it');
  rotate('first');
  await pollUntil(t, () => cache.synced && api.watchers === 1, 'synced over TLS once the file holds a valid token');
  t.equal(bearer(), 'Bearer first', 'with the token from the file, without its newline');

  await t.test('rotated, the old token revoked: the next request carries the new one', async (t) => {
    const restarts = cache.restarts;
    rotate('second');
    api.acceptTokens(['second']);
    api.closeWatches();
    api.addPod(makePod({ name: 'b' }));
    await pollUntil(t, () => cache.size === 2 && api.watchers === 1, 'the pod added after the rotation arrives');
    t.equal(cache.restarts, restarts, 'no request was refused: no restart');
    t.equal(bearer(), 'Bearer second', 'the new token');
  });

  await t.test('expired before the file is rotated: retried until it is', async (t) => {
    const restarts = cache.restarts;
    const asked = api.requests.length;
    api.acceptTokens(['third']);
    api.closeWatches();
    api.addPod(makePod({ name: 'c' }));
    await pollUntil(t, () => cache.restarts >= restarts + 2, 'refused with 401 and retried');
    t.ok(api.requests.slice(asked).every((r) => r.authorization === 'Bearer second'), 'the only token on disk, each time');
    t.ok(cache.readiness().ready, 'still ready: the cache keeps serving');
    rotate('third');
    await pollUntil(t, () => cache.size === 3 && api.watchers === 1, 'back in sync with the rotated token');
    t.equal(bearer(), 'Bearer third', 'the rotated token');
  });
});
