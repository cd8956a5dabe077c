/**
 * A cluster of agents behind the API-server double, for the kubectl plugin's tests: agent pods
 * labelled as the chart labels them (one per node, reached through the double's port-forward),
 * simulated agents (plain HTTP servers answering GET /api/events as an agent does), and the
 * plugin run as kubectl runs it, a child process.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { noneExcluded } from '../../src/events/excluded.js';
import { serializeEvent, type ExecEvent } from '../../src/events/schema.js';
import { runPlugin as runInProcess } from '../../src/plugin/main.js';
import { makePod, type ApiServerDouble } from './apiserver.js';
import { makeEvent } from './events.js';
import { repoRoot } from './kernel.js';
import { rng } from './rng.js';

/** The namespace the agents run in (the plugin's default -n). */
export const AGENT_NAMESPACE = 'execwatch';
/** The port each agent pod's events API listens on, as the chart passes it. */
export const AGENT_PORT = 9465;

/** Options of {@link addAgentPod}. */
export interface AgentPodOptions {
  /** The local port that the pod's AGENT_PORT is (omit: nothing listens, "connection refused"). */
  localPort?: number;
  /** The Secret (name, key) the pod mounts as its API token, as the chart's api.tokenSecret does. */
  tokenSecret?: { name: string; key: string };
  phase?: string;
  /** Not scheduled to a node yet (no spec.nodeName). */
  unscheduled?: boolean;
  /** Being deleted (a deletionTimestamp), as during a rollout. */
  terminating?: boolean;
  labels?: Record<string, string>;
}

/** Adds the agent pod of `node` (named execwatch-<node>) to the double, and its node. */
export function addAgentPod(api: ApiServerDouble, node: string, opts: AgentPodOptions = {}): string {
  const name = `execwatch-${node}`;
  const pod = makePod({
    name,
    namespace: AGENT_NAMESPACE,
    nodeName: node,
    containers: [{ name: 'execwatch', id: 'a'.repeat(64) }],
    labels: { 'app.kubernetes.io/name': 'execwatch', 'app.kubernetes.io/instance': 'execwatch', ...opts.labels },
  });
  const container = pod.spec?.containers[0];
  if (container) container.args = ['--metrics-address=0.0.0.0:9464', `--api-address=127.0.0.1:${AGENT_PORT}`];
  if (opts.tokenSecret && pod.spec) {
    pod.spec.volumes = [{ name: 'api-token', secret: { secretName: opts.tokenSecret.name, items: [{ key: opts.tokenSecret.key, path: 'token' }] } }];
  }
  if (opts.phase && pod.status) pod.status.phase = opts.phase;
  if (opts.unscheduled && pod.spec) delete pod.spec.nodeName;
  if (opts.terminating && pod.metadata) pod.metadata.deletionTimestamp = new Date(Date.UTC(2026, 11, 6));
  api.addNode(node);
  api.addPod(pod);
  if (opts.localPort !== undefined) api.forwardPort(AGENT_NAMESPACE, name, AGENT_PORT, opts.localPort);
  return name;
}

/** A simulated agent: answers GET /api/events with its events, newest first, up to `limit`. */
export interface FakeAgent {
  port: number;
  /** Every query received. */
  queries: URLSearchParams[];
  /** The path of every request received, beside its query. */
  paths: string[];
  /** Requests are left unanswered from now on (a wedged agent). */
  hang(): void;
  /** Requests get this status and plain-text body from now on. */
  failWith(status: number, text: string): void;
  /** The Last-Event-ID (or else `after`) of every stream request (undefined for a first one). */
  streamResumes: (string | undefined)[];
  /** Sends an event to every open stream (without an `id:` line when seq is undefined). */
  push(json: string, seq?: number): void;
  /** Ends every open stream from the agent's side, as an agent shutting down does. */
  endStreams(): void;
  /** Writes a heartbeat comment to every open stream, as the agent does every 15 s. */
  heartbeat(): void;
  /** Writes `partial` (the start of a frame) to every open stream and drops its connection. */
  cutStreams(partial: string): void;
  close(): Promise<void>;
}

/** Options of {@link startFakeAgent}. */
export interface FakeAgentOptions {
  /** Only requests with this bearer token are answered (others get 401). */
  token?: string;
  /** GET /api/processes/:execId answers: execId → the JSON text (others get 404, as the agent). */
  processes?: Record<string, string>;
  /** What GET /api/excluded answers, as JSON (default: nothing excluded, this minute); any shape, as a broken agent might. */
  excluded?: unknown;
}

/**
 * Starts a simulated agent holding `events` (newest first). It answers as the agent does: the body
 * written in chunks, `limit` honoured; filters are recorded, not applied.
 */
export async function startFakeAgent(events: readonly ExecEvent[] | readonly string[] | ((limit: number) => readonly string[]), opts: FakeAgentOptions = {}): Promise<FakeAgent> {
  const json = typeof events === 'function' ? null : events.map((e) => (typeof e === 'string' ? e : serializeEvent(e)));
  const newest = (limit: number) => (json === null ? (events as (limit: number) => readonly string[])(limit) : json.slice(0, limit));
  const queries: URLSearchParams[] = [];
  const paths: string[] = [];
  let hanging = false;
  let failure: { status: number; text: string } | null = null;
  const streams = new Set<ServerResponse>();
  const streamResumes: (string | undefined)[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url as string, 'http://agent');
    queries.push(url.searchParams);
    paths.push(url.pathname);
    if (hanging) return;
    if (failure) {
      res.writeHead(failure.status, { 'content-type': 'text/plain' }).end(failure.text);
      return;
    }
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ error: 'Unauthorized', message: 'a bearer token is required' }));
      return;
    }
    if (url.pathname === '/api/events/stream') {
      // As the agent: retry, a comment, then what the ring holds after Last-Event-ID, then live events.
      const after = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('after') ?? undefined;
      streamResumes.push(after);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.write('retry: 100\n: connected\n\n');
      if (after !== undefined && json !== null) {
        for (const text of [...json].reverse()) {
          const seq = (JSON.parse(text) as { seq: number }).seq;
          if (seq > Number(after)) res.write(`id: ${seq}\nevent: exec\ndata: ${text}\n\n`);
        }
      }
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    if (url.pathname.startsWith('/api/processes/')) {
      const text = opts.processes?.[decodeURIComponent(url.pathname.slice('/api/processes/'.length))];
      res.writeHead(text === undefined ? 404 : 200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(text ?? JSON.stringify({ error: 'Not Found', message: 'no exec of that process in the recent events' }));
      return;
    }
    if (url.pathname === '/api/excluded') {
      const now = new Date().toISOString();
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(opts.excluded ?? { from: now, to: now, excluded: noneExcluded() }));
      return;
    }
    if (url.pathname !== '/api/events') {
      res.writeHead(404).end();
      return;
    }
    const limit = Number(url.searchParams.get('limit') ?? 100);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    const answer = newest(limit);
    // As an agent whose last delivered event is the newest it holds.
    const lastSeq = (JSON.parse(answer[0] ?? '{"seq":0}') as { seq: number }).seq;
    const body = `{"events":[${answer.join(',')}],"lastSeq":${lastSeq}}`;
    // In pieces, as the agent writes it, so that readers meet events cut across chunks.
    for (let i = 0; i < body.length; i += 16_384) res.write(body.slice(i, i + 16_384));
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    queries,
    paths,
    hang: () => (hanging = true),
    failWith: (status, text) => (failure = { status, text }),
    streamResumes,
    push: (text, seq) => {
      for (const res of streams) res.write(`${seq === undefined ? '' : `id: ${seq}\n`}event: exec\ndata: ${text}\n\n`);
    },
    endStreams: () => {
      for (const res of streams) res.end();
    },
    heartbeat: () => {
      for (const res of streams) res.write(': heartbeat\n\n');
    },
    cutStreams: (partial) => {
      for (const res of streams) res.write(partial, () => res.destroy());
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** What one run of the plugin printed, and its exit status. */
export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The plugin's command line as tap runs TypeScript (the executable is dist/plugin/kubectl-execwatch.js). */
export function pluginCommand(): string[] {
  return [process.execPath, ...process.execArgv, join(repoRoot, 'src', 'plugin', 'kubectl-execwatch.ts')];
}

/**
 * Runs the plugin's commands in this process with `--kubeconfig kubeconfig` (a child process costs
 * seconds of start-up on a loaded machine); `signal` stops a command that runs until stopped.
 */
export async function runPlugin(kubeconfig: string, args: string[], signal: AbortSignal = new AbortController().signal): Promise<PluginRun> {
  let stdout = '';
  let stderr = '';
  const [command, ...rest] = args;
  const argv = command === undefined || command.startsWith('-') ? args : [command, '--kubeconfig', kubeconfig, ...rest];
  const code = await runInProcess(argv, { out: (text) => (stdout += text), err: (line) => (stderr += `${line}\n`), signal });
  return { code, stdout, stderr };
}

/** A command that runs until stopped (`follow`, `ui`), run in this process. */
export interface RunningPlugin {
  stdout(): string;
  stderr(): string;
  /** Ctrl-C: resolves with what the command printed and its exit status. */
  stop(): Promise<PluginRun>;
  /** Resolves when the command ends by itself. */
  ended: Promise<PluginRun>;
}

/** Starts `args` in this process with `--kubeconfig kubeconfig`; stop() is its Ctrl-C. */
export function startPlugin(kubeconfig: string, args: string[]): RunningPlugin {
  const ctrl = new AbortController();
  let stdout = '';
  let stderr = '';
  const [command, ...rest] = args as [string, ...string[]];
  const ended = runInProcess([command, '--kubeconfig', kubeconfig, ...rest], { out: (text) => (stdout += text), err: (line) => (stderr += `${line}\n`), signal: ctrl.signal })
    .then((code) => ({ code, stdout, stderr }));
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      ctrl.abort();
      return ended;
    },
    ended,
  };
}

/** Runs the `kubectl-execwatch` executable with `args` and KUBECONFIG at `kubeconfig`, as kubectl does. */
export function runPluginProcess(kubeconfig: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<PluginRun> {
  const [file, ...rest] = pluginCommand() as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...rest, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: kubeconfig, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A cluster of simulated agents: the double, and each node's events (newest first) as the agents hold them. */
export interface SimulatedCluster {
  api: ApiServerDouble;
  agents: FakeAgent[];
  /** The JSON text of the newest `limit` events of node `i`, as its agent answers. */
  newest(i: number, limit: number): readonly string[];
  close(): Promise<void>;
}

/**
 * `nodes` simulated agents (node-0000…) behind `api`, each holding `perNode` events whose times
 * fall at random gaps of up to 2 s (seeded by the node's index): the nodes' events interleave, so
 * the merged newest are spread over every node. Event texts are made on first demand and kept.
 */
export async function startSimulatedCluster(api: ApiServerDouble, nodes: number, perNode: number): Promise<SimulatedCluster> {
  const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
  const template = serializeEvent(makeEvent({ seq: 1, node: 'NODE', time: 'TIME', pid: 4242, argv: ['curl', '-s', 'ARG'] }));
  const texts: string[][] = [];
  const newest = (i: number, limit: number): readonly string[] => {
    const have = (texts[i] ??= []);
    if (have.length < Math.min(limit, perNode)) {
      const random = rng(i + 1);
      const node = `node-${String(i).padStart(4, '0')}`;
      let ms = T0;
      have.length = 0;
      for (let k = 0; k < Math.min(limit, perNode); k += 1) {
        ms -= 1 + Math.floor(random() * 2000);
        const time = new Date(ms).toISOString().replace('Z', `${String(k % 1_000_000).padStart(6, '0')}Z`);
        have.push(template.replace('"seq":1', `"seq":${perNode - k}`).replace('NODE', node).replace('TIME', time).replace('ARG', `${node}-${k}`));
      }
    }
    return have.slice(0, limit);
  };
  const agents: FakeAgent[] = [];
  for (let i = 0; i < nodes; i += 1) {
    const agent = await startFakeAgent((limit) => newest(i, limit));
    agents.push(agent);
    addAgentPod(api, `node-${String(i).padStart(4, '0')}`, { localPort: agent.port });
  }
  return { api, agents, newest, close: async () => void (await Promise.all(agents.map((a) => a.close()))) };
}
