/**
 * Where the agent's API server credentials come from: an explicit kubeconfig (`--kubeconfig`,
 * `KUBECONFIG`), else the pod's service account, else none (standalone mode).
 */
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Prefixed to the service-account paths (tests point it at a fake tree). */
  root?: string;
}

/**
 * Loads the API server configuration. `path` wins when set, and then it must load: a typo in
 * `--kubeconfig` stops the agent instead of silently running standalone. In-cluster needs both
 * `KUBERNETES_SERVICE_HOST` and the service-account token. Returns null for standalone mode.
 */
export function loadKubeConfig(path: string | null, opts: LoadKubeConfigOptions = {}): KubeConfig | null {
  const root = opts.root ?? '';
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
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(`${root}${TOKEN_PATH}`)) {
    kc.loadFromCluster(root);
    return kc;
  }
  return null;
}
