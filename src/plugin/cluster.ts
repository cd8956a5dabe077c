/**
 * Finding the agents: the kubeconfig and context as kubectl would pick them, the agent pods by the
 * chart's selector labels, their nodes (optionally narrowed by name or by a node label selector),
 * the port their events API listens on (from the pod's own arguments) and the API token when the
 * chart set one (from the Secret the pod mounts, read with the user's own RBAC, or --token-file).
 */
import { readFileSync } from 'node:fs';
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { UsageError, type ClusterOptions } from './options.js';

/** The events API port when a pod's arguments do not say (the agent's and the chart's default). */
export const DEFAULT_API_PORT = 9465;
/** The volume the chart mounts the API token Secret as (templates/daemonset.yaml). */
const TOKEN_VOLUME = 'api-token';

/** A failure that stops the command before any agent is asked: exit status 1. */
export class ClusterError extends Error {
  override name = 'ClusterError';
}

/** One node's agent. */
export interface Agent {
  node: string;
  namespace: string;
  pod: string;
  port: number;
  /** Secret holding its API token, when the pod mounts one. */
  tokenSecret: { name: string; key: string } | null;
}

/** A node whose agent cannot be asked, and why. */
export interface NodeFailure {
  node: string;
  pod: string | null;
  reason: string;
}

/** Loads the kubeconfig as kubectl would: --kubeconfig, else KUBECONFIG, else ~/.kube/config; then --context. */
export function loadKubeConfig(opts: Pick<ClusterOptions, 'kubeconfig' | 'context'>): KubeConfig {
  const kc = new KubeConfig();
  // Where a bad kubeconfig came from: the flag, or the environment kubectl reads too.
  const source = opts.kubeconfig === undefined ? `KUBECONFIG ${JSON.stringify(process.env.KUBECONFIG)}` : `--kubeconfig ${JSON.stringify(opts.kubeconfig)}`;
  try {
    if (opts.kubeconfig === undefined) kc.loadFromDefault();
    else kc.loadFromFile(opts.kubeconfig);
  } catch (err) {
    throw new UsageError(`${source}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (opts.context !== undefined) {
    if (kc.getContextObject(opts.context) === null) {
      throw new UsageError(`--context "${opts.context}" is not in the kubeconfig (it has: ${kc.getContexts().map((c) => c.name).join(', ')})`);
    }
    kc.setCurrentContext(opts.context);
  }
  if (kc.getCurrentCluster() === null) throw new UsageError('the kubeconfig has no current context with a cluster: give --context');
  return kc;
}

/** The port of `--api-address HOST:PORT` (or `=`) in the container's arguments, else the default. */
export function apiPortOf(pod: V1Pod): number {
  const args = (pod.spec?.containers ?? []).flatMap((c) => c.args ?? []);
  let port = DEFAULT_API_PORT;
  args.forEach((arg, i) => {
    const value = arg.startsWith('--api-address=') ? arg.slice('--api-address='.length) : arg === '--api-address' ? args[i + 1] : undefined;
    const m = value === undefined ? null : /:(\d+)$/.exec(value);
    if (m) port = Number(m[1]);
  });
  return port;
}

/** The API token Secret (name, key) the agent pod mounts as the chart's `api-token` volume, or null. */
export function tokenSecretOf(pod: V1Pod): Agent['tokenSecret'] {
  const volume = pod.spec?.volumes?.find((v) => v.name === TOKEN_VOLUME)?.secret;
  if (volume?.secretName === undefined) return null;
  // The chart always maps the one key it mounts (items); a Secret mounted whole holds `token`.
  return { name: volume.secretName, key: volume.items?.[0]?.key ?? 'token' };
}

/** An API error in one line: the Status message when the server sent one. */
export function apiErrorText(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    let message: string | undefined;
    try {
      message = (JSON.parse(String(body)) as { message?: string }).message;
    } catch {
      message = undefined;
    }
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return (err as Error).message;
}

/** Agents that can be asked, and nodes that have none able to answer. */
export interface Discovery {
  agents: Agent[];
  failures: NodeFailure[];
}

/** A Running agent pod as the Agent to ask, or why its node's agent cannot be asked; null without a node. */
export function agentOf(pod: V1Pod, namespace: string): Agent | NodeFailure | null {
  const node = pod.spec?.nodeName;
  if (node === undefined) return null;
  const name = pod.metadata?.name as string;
  if (pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp !== undefined) {
    const state = pod.metadata?.deletionTimestamp === undefined ? pod.status?.phase : 'terminating';
    return { node, pod: name, reason: `agent pod ${name} is ${state}` };
  }
  return { node, namespace, pod: name, port: apiPortOf(pod), tokenSecret: tokenSecretOf(pod) };
}

/** Whether `found` is an agent to ask (not a failure). */
export const isAgent = (found: Agent | NodeFailure): found is Agent => 'port' in found;

/** Which nodes `--node` and `--node-selector` ask for. */
export interface NodeTests {
  /** Among the nodes there were at start. */
  wanted: (node: string) => boolean;
  /** Also for a node that joined the cluster since: its labels are read (a failure rejects). */
  joins: (node: string) => Promise<boolean>;
}

/** The agent pods of `--agent-selector` in `-n`, and the tests of the nodes asked for. */
async function listAgentPods(kc: KubeConfig, opts: ClusterOptions): Promise<{ pods: V1Pod[] } & NodeTests> {
  const core = kc.makeApiClient(CoreV1Api);
  const { nodeSelector } = opts;
  const listSelected = async (labelSelector: string) => new Set((await core.listNode({ labelSelector })).items.map((n) => n.metadata?.name as string));
  try {
    const pods = (await core.listNamespacedPod({ namespace: opts.namespace, labelSelector: opts.agentSelector })).items;
    let selected = nodeSelector === undefined ? null : await listSelected(nodeSelector);
    // The nodes whose labels the selector has been tried on.
    const tried = new Set(pods.map((p) => p.spec?.nodeName));
    const named = (node: string) => opts.nodes.length === 0 || opts.nodes.includes(node);
    const wanted = (node: string) => named(node) && (selected === null || selected.has(node));
    const joins = async (node: string) => {
      // No selector to try, or tried already (on every node with an agent at start): as at start.
      if (!named(node) || nodeSelector === undefined || tried.has(node)) return wanted(node);
      tried.add(node);
      selected = await listSelected(nodeSelector);
      return selected.has(node);
    };
    return { pods, wanted, joins };
  } catch (err) {
    throw new ClusterError(`cannot list the agents (pods ${opts.agentSelector} in namespace ${opts.namespace}): ${apiErrorText(err)}`);
  }
}

/**
 * The agents to ask, one per node: the Running pods of `--agent-selector` in `-n`, on the nodes of
 * `--node` and `--node-selector` when given, and the tests of a node, for agents that
 * appear later. A named node without a running agent is a failure.
 */
export async function discoverAgents(kc: KubeConfig, opts: ClusterOptions): Promise<Discovery & NodeTests> {
  const { pods, wanted, joins } = await listAgentPods(kc, opts);
  const agents: Agent[] = [];
  const failures: NodeFailure[] = [];
  for (const pod of pods) {
    const found = agentOf(pod, opts.namespace);
    if (found === null || !wanted(found.node)) continue;
    if (isAgent(found)) agents.push(found);
    else failures.push(found);
  }
  const seen = new Set(agents.map((a) => a.node));
  for (const node of opts.nodes) {
    if (!seen.has(node) && !failures.some((f) => f.node === node)) {
      failures.push({ node, pod: null, reason: `no agent pod (${opts.agentSelector} in namespace ${opts.namespace}) on this node` });
    }
  }
  // A node with a running agent is not also a failure (a terminating pod beside its replacement).
  const kept = failures.filter((f) => !seen.has(f.node));
  agents.sort((a, b) => a.node.localeCompare(b.node));
  if (agents.length === 0 && kept.length === 0) {
    throw new ClusterError(`no agent pods (${opts.agentSelector}) in namespace ${opts.namespace} on the nodes asked for: is the chart installed there? (-n, --agent-selector, --node, --node-selector)`);
  }
  return { agents, failures: kept, wanted, joins };
}

/**
 * The bearer token for each agent: --token-file when given, else the Secret its pod mounts (one
 * read per Secret), else none. Reading a Secret the user may not read is an error naming the way out.
 */
export async function tokensFor(kc: KubeConfig, agents: readonly Agent[], tokenFile: string | undefined): Promise<Map<Agent, string | null>> {
  const tokens = new Map<Agent, string | null>();
  if (tokenFile !== undefined) {
    let token: string;
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--token-file ${JSON.stringify(tokenFile)} cannot be read (${(err as Error).message})`);
    }
    if (token === '') throw new UsageError(`--token-file ${JSON.stringify(tokenFile)} is empty`);
    for (const agent of agents) tokens.set(agent, token);
    return tokens;
  }
  const core = kc.makeApiClient(CoreV1Api);
  const secrets = new Map<string, Promise<string>>();
  const read = async (namespace: string, name: string, key: string): Promise<string> => {
    try {
      const secret = await core.readNamespacedSecret({ namespace, name });
      const value = secret.data?.[key];
      if (value === undefined) throw new ClusterError(`the agents' API token Secret ${namespace}/${name} has no key "${key}"`);
      return Buffer.from(value, 'base64').toString('utf8').trim();
    } catch (err) {
      if (err instanceof ClusterError) throw err;
      throw new ClusterError(`the agents require an API token: cannot read Secret ${namespace}/${name} (${apiErrorText(err)}); give --token-file`);
    }
  };
  for (const agent of agents) {
    const secret = agent.tokenSecret;
    if (secret === null) {
      tokens.set(agent, null);
      continue;
    }
    const id = `${agent.namespace}/${secret.name}/${secret.key}`;
    if (!secrets.has(id)) secrets.set(id, read(agent.namespace, secret.name, secret.key));
    tokens.set(agent, await (secrets.get(id) as Promise<string>));
  }
  return tokens;
}
