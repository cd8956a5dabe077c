/**
 * Where the agent's API server credentials come from: an explicit kubeconfig (`--kubeconfig`,
 * `KUBECONFIG`), else the pod's service account, else none (standalone mode). The client library
 * is imported only once an API server is configured: loading it costs ~70 MB of RSS, which a
 * standalone agent should not pay.
 */
import { existsSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import type { PodCache, PodCacheOptions } from './podcache.js';
import { TokenFileAuth, tokenFileUser } from './token.js';
import type { PodCacheMetrics } from './types.js';

const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Prefixed to the service-account paths (tests point it at a fake tree). */
  root?: string;
}

/**
 * Loads the API server configuration. `path` wins when set, and then it must load: a typo in
 * `--kubeconfig` stops the agent instead of silently running standalone. In-cluster needs both
 * `KUBERNETES_SERVICE_HOST` and the service-account token, which is then read afresh for every
 * request (token.ts). Resolves to null for standalone mode, without loading the client library.
 */
export async function loadKubeConfig(path: string | null, opts: LoadKubeConfigOptions = {}): Promise<KubeConfig | null> {
  const root = opts.root ?? '';
  const inCluster = path === null && Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync(`${root}${TOKEN_PATH}`);
  if (path === null && !inCluster) return null;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path !== null) {
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new Error(`--kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!kc.getCurrentCluster()) {
      throw new Error(`--kubeconfig ${path}: no current context with a cluster`);
    }
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
 * The pod cache for this configuration, or null in standalone mode (no kubeconfig and not in a
 * cluster). Rejects when an explicit kubeconfig cannot be loaded. The pod cache module (and the
 * client library behind it) is imported only here, only when needed.
 */
export async function createPodCache(
  config: Pick<Config, 'kubeconfig' | 'nodeName' | 'podGracePeriodMs'>,
  metrics: PodCacheMetrics,
  tuning: Partial<PodCacheOptions> = {},
): Promise<PodCache | null> {
  const kubeConfig = await loadKubeConfig(config.kubeconfig);
  if (!kubeConfig) return null;
  const { PodCache } = await import('./podcache.js');
  return new PodCache({ kubeConfig, nodeName: config.nodeName, metrics, gracePeriodMs: config.podGracePeriodMs, ...tuning });
}
