/**
 * Where the agent's API server credentials come from: an explicit kubeconfig (`--kubeconfig`,
 * `KUBECONFIG`), else the pod's service account, else none (standalone mode). The client library
 * is imported only once an API server is configured: loading it costs ~70 MB of RSS, which a
 * standalone agent should not pay. The agent loads the kubeconfig before anything touches the
 * kernel, so a bad one is reported like any other bad flag.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, type Config } from '../config.js';
import type { PodCache, PodCacheOptions } from './podcache.js';
import { TokenFileAuth, tokenFileOf, tokenFileUser } from './token.js';
import type { PodCacheMetrics } from './types.js';

const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Prefixed to the service-account paths (tests point it at a fake tree). */
  root?: string;
}

/** The first line of an error's message: the YAML parser's messages go on with a code excerpt. */
const firstLine = (err: unknown): string => String((err as Error).message).split('\n')[0] as string;

/**
 * Loads an explicit kubeconfig and reads every file its current context names (the client would
 * read them only at its first request): any problem is a ConfigError naming --kubeconfig and the file.
 */
function loadExplicit(kc: KubeConfig, path: string): void {
  const bad = (problem: string) => new ConfigError(`--kubeconfig: ${JSON.stringify(path)} ${problem}`);
  try {
    // Also reads a user's token-file.
    kc.loadFromFile(path);
  } catch (err) {
    throw bad(`cannot be loaded (${firstLine(err)})`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw bad('has no current context with a cluster (current-context must name a context whose cluster is listed)');
  const user = kc.getCurrentUser();
  for (const file of [cluster.caFile, user?.certFile, user?.keyFile]) {
    if (file === undefined) continue;
    try {
      readFileSync(file);
    } catch (err) {
      throw bad(`names a file that cannot be read (${firstLine(err)})`);
    }
  }
}

/**
 * Loads the API server configuration. `path` wins when set, and then it must load: a typo in
 * `--kubeconfig` stops the agent (a ConfigError, exit 2) instead of silently running standalone.
 * In-cluster needs both `KUBERNETES_SERVICE_HOST` and the service-account token, which is then
 * read afresh for every request (token.ts). Resolves to null for standalone mode, without loading
 * the client library.
 */
export async function loadKubeConfig(path: string | null, opts: LoadKubeConfigOptions = {}): Promise<KubeConfig | null> {
  const root = opts.root ?? '';
  const inCluster = path === null && Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync(`${root}${TOKEN_PATH}`);
  if (path === null && !inCluster) return null;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path !== null) {
    loadExplicit(kc, path);
    return kc;
  }
  kc.loadFromCluster(root);
  kc.addAuthenticator(new TokenFileAuth());
  kc.loadFromOptions({
    clusters: kc.getClusters(),
    contexts: kc.getContexts(),
    users: kc.getUsers().map((user) => tokenFileUser(user.name, `${root}${TOKEN_PATH}`)),
    currentContext: kc.getCurrentContext(),
  });
  return kc;
}

/**
 * The files the client reads again for every request, after start-up: the CA, client certificate
 * and key files the current context names, and the service-account token (TokenFileAuth). A
 * user's token-file is read once, at load. The agent checks that each stays readable after it
 * switches to its --run-as user.
 */
export function requestFiles(kubeConfig: KubeConfig | null): string[] {
  if (!kubeConfig) return [];
  const user = kubeConfig.getCurrentUser();
  const files = [kubeConfig.getCurrentCluster()?.caFile, user?.certFile, user?.keyFile, tokenFileOf(user)];
  return files.filter((file): file is string => file !== undefined);
}

/**
 * The pod cache for a configuration {@link loadKubeConfig} loaded, or null in standalone mode (it
 * loaded none). The pod cache module is imported only here, only when needed.
 */
export async function createPodCache(
  kubeConfig: KubeConfig | null,
  config: Pick<Config, 'nodeName' | 'podGracePeriodMs' | 'kubeUnreadyAfterMs'>,
  metrics: PodCacheMetrics,
  tuning: Partial<PodCacheOptions> = {},
): Promise<PodCache | null> {
  if (!kubeConfig) return null;
  const { PodCache } = await import('./podcache.js');
  return new PodCache({
    kubeConfig, nodeName: config.nodeName, metrics, gracePeriodMs: config.podGracePeriodMs, unreadyAfterMs: config.kubeUnreadyAfterMs, ...tuning,
  });
}
