/**
 * HTTP to an agent's events API through the API server's port-forward, in process: each request
 * gets its own WebSocket port-forward (client-node's PortForward, the same subresource and RBAC
 * as `kubectl port-forward`), joined to Node's HTTP client through an in-memory duplex pair. No
 * local port is opened, so no other local user can reach the argv meanwhile.
 */
import { request, type IncomingMessage } from 'node:http';
import { duplexPair, finished, Writable, type Duplex } from 'node:stream';
import { PortForward, type KubeConfig } from '@kubernetes/client-node';
import type { Agent } from './cluster.js';

/** What a GET to an agent resolves to: the response, whose body the caller reads or destroys. */
export type AgentResponse = IncomingMessage;

/** Opens HTTP requests to agents through port-forwards of one kubeconfig. */
export class AgentClient {
  readonly #forward: PortForward;

  constructor(kc: KubeConfig) {
    this.#forward = new PortForward(kc);
  }

  /**
   * One TCP connection to the agent's port, as a duplex stream. The port-forward's error channel
   * (the kubelet's "connection refused" when nothing listens) destroys it with that text.
   */
  connect(agent: Agent): Duplex {
    const [local, remote] = duplexPair();
    let problem = '';
    const errors = new Writable({
      write(chunk: Buffer, _encoding, done) {
        problem += chunk.toString();
        done();
      },
    });
    const where = `port-forward to pod ${agent.namespace}/${agent.pod} port ${agent.port}`;
    this.#forward.portForward(agent.namespace, agent.pod, [agent.port], remote, errors, remote).then(
      (opened) => {
        // With no retries PortForward resolves to the WebSocket itself.
        const ws = opened as Exclude<typeof opened, () => unknown>;
        ws.on('close', () => {
          if (problem === '') remote.end();
          else local.destroy(new Error(`${where}: ${problem.trim()}`));
        });
        // Also when the request was given up (--timeout) before the WebSocket opened.
        finished(local, () => ws.close());
      },
      (err: Error) => local.destroy(new Error(`${where}: ${err.message}`)),
    );
    return local;
  }

  /**
   * GET `path` from the agent; rejects on a connection failure, on `signal` (at any time, the body
   * included) or on `connecting` when it aborts before the response's headers have come.
   */
  get(agent: Agent, path: string, headers: Record<string, string>, signal: AbortSignal, connecting?: AbortSignal): Promise<AgentResponse> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request(
        { host: 'localhost', path, headers: { ...headers, connection: 'close' }, createConnection: () => this.connect(agent), signal },
        (res) => {
          answered = true;
          resolve(res);
        },
      );
      const giveUp = () => {
        if (!answered) req.destroy(new Error('no answer in time'));
      };
      connecting?.addEventListener('abort', giveUp, { once: true });
      req.on('error', reject);
      req.end();
    });
  }
}

/** The headers of a request to `agent` with its bearer token, if it needs one. */
export function authHeaders(token: string | null): Record<string, string> {
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/** The response body as text (for error answers, which are small). */
export async function bodyText(res: AgentResponse): Promise<string> {
  let text = '';
  for await (const chunk of res) text += String(chunk);
  return text;
}

/** An agent's error answer in one line: its `message`, or the status. */
export async function errorOf(res: AgentResponse): Promise<string> {
  const text = await bodyText(res);
  let message: string | undefined;
  try {
    message = (JSON.parse(text) as { message?: string }).message;
  } catch {
    message = undefined;
  }
  return `HTTP ${res.statusCode}${message ? `: ${message}` : ''}`;
}
