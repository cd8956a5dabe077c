/**
 * A Kubernetes API server double for pods: a real HTTP server on 127.0.0.1 that speaks the list
 * and watch protocol (resource versions, limit/continue chunking, field and label selectors,
 * bookmarks, 410 Gone, bearer tokens, optionally TLS) to the real @kubernetes/client-node, with
 * controls to make it misbehave; plus nodes, Secrets and the pods/portforward subresource over
 * WebSocket (the v4 channel protocol client-node speaks), forwarding to local ports.
 * No kube-apiserver can be installed here; this is the one fake the tests allow.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';

/** Input of {@link makePod}. */
export interface MakePodInput {
  name: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  /** `id` is 64 hex (the runtime prefix is added) or null when the status has none yet. */
  /** `livenessProbe`/`readinessProbe`: an exec probe's command in the container's spec. */
  containers?: { name: string; id?: string | null; runtime?: string; lastId?: string; livenessProbe?: string[]; readinessProbe?: string[] }[];
  initContainers?: { name: string; id?: string | null }[];
  ephemeralContainers?: { name: string; id?: string | null }[];
  owner?: { kind: string; name: string; controller?: boolean };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

let uidCounter = 0;

/** A pod as the API server returns it, with container statuses. */
export function makePod(input: MakePodInput): V1Pod {
  const status = (c: { name: string; id?: string | null; runtime?: string; lastId?: string }) => ({
    name: c.name,
    image: `registry.example/${c.name}:1`,
    // The runtime reports the digest once the image is pulled: with the container's id.
    imageID: c.id ? `registry.example/${c.name}@sha256:${createHash('sha256').update(c.name).digest('hex')}` : '',
    ready: Boolean(c.id),
    restartCount: c.lastId ? 1 : 0,
    ...(c.id ? { containerID: `${c.runtime ?? 'containerd'}://${c.id}` } : {}),
    ...(c.lastId ? { lastState: { terminated: { exitCode: 1, containerID: `containerd://${c.lastId}` } } } : {}),
  });
  const uid = input.uid ?? `00000000-0000-4000-8000-${String(++uidCounter).padStart(12, '0')}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: input.namespace ?? 'default',
      uid,
      labels: input.labels,
      annotations: input.annotations,
      ownerReferences: input.owner
        ? [{ apiVersion: 'apps/v1', kind: input.owner.kind, name: input.owner.name, uid: `owner-${uid}`, controller: input.owner.controller ?? true }]
        : undefined,
    },
    spec: {
      nodeName: input.nodeName ?? 'node-1',
      containers: (input.containers ?? []).map((c) => ({
        name: c.name,
        image: `registry.example/${c.name}:1`,
        ...(c.livenessProbe ? { livenessProbe: { exec: { command: c.livenessProbe } } } : {}),
        ...(c.readinessProbe ? { readinessProbe: { exec: { command: c.readinessProbe } } } : {}),
      })),
      ...(input.initContainers?.length ? { initContainers: input.initContainers.map((c) => ({ name: c.name, image: `registry.example/${c.name}:1` })) } : {}),
      ...(input.ephemeralContainers?.length ? { ephemeralContainers: input.ephemeralContainers.map((c) => ({ name: c.name, image: `registry.example/${c.name}:1` })) } : {}),
    },
    status: {
      phase: 'Running',
      containerStatuses: (input.containers ?? []).map(status),
      initContainerStatuses: (input.initContainers ?? []).map(status),
      ephemeralContainerStatuses: (input.ephemeralContainers ?? []).map(status),
    },
  };
}

/** One request as the double received it. */
export interface RecordedRequest {
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  /** Date.now() when the request arrived. */
  at: number;
}

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (see `ca`), as in a cluster. */
  tls?: boolean;
  /** Send every watch that asked for bookmarks one this often, as kube-apiserver does (every minute). */
  bookmarkEveryMs?: number;
}

/** Controls of a running double. */
export interface ApiServerDouble {
  url: string;
  port: number;
  /** The PEM certificate to trust with `tls`, else null. */
  ca: string | null;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Open watch connections. */
  readonly watchers: number;
  /** Writes `<dir>/kubeconfig` pointing at this server (plain http, bearer token) and returns its path. */
  kubeconfigPath(dir: string): string;
  addPod(pod: V1Pod): void;
  /** Replaces the pod of that namespace/name. */
  updatePod(pod: V1Pod): void;
  deletePod(namespace: string, name: string): void;
  /** Sends a BOOKMARK at the current resource version to watchers that asked for them. */
  bookmark(): void;
  /** Ends every open watch from the server side (as a real server does on its timeout). */
  closeWatches(): void;
  /** Forgets history: watches resuming from an older resource version get 410 Gone in-stream. */
  compact(): void;
  /** Stops delivering changes to open watches (a lagging watch cache); history still records them. */
  hold(on: boolean): void;
  /** Leaves the next request unanswered until the returned function is called. */
  stall(): () => void;
  /**
   * The watches open now go silent for good: no event, no bookmark, no end at their timeout; the
   * connection stays open until the client closes it (a half-open connection, a wedged server).
   */
  stallWatches(): void;
  /** Only these bearer tokens are accepted from now on, others get 401 (null: any, the default). */
  acceptTokens(tokens: string[] | null): void;
  /** Answers the next `count` requests with this HTTP status and a Status body. */
  failNext(status: number, count?: number): void;
  /** Adds a node (for `GET /api/v1/nodes` with label selectors). */
  addNode(name: string, labels?: Record<string, string>): void;
  /** Adds a Secret with these string values (served base64-encoded, as the API server does). */
  addSecret(namespace: string, name: string, data: Record<string, string>): void;
  /**
   * Port `port` of pod `namespace/name`, reached through `pods/portforward`, is this local TCP
   * port (the pod's loopback). Without one, a port-forward gets the kubelet's "connection refused".
   */
  forwardPort(namespace: string, name: string, port: number, localPort: number): void;
  /** Open port-forward WebSockets. */
  readonly portForwards: number;
  /** Drops every open port-forward (as an API server restart or a network blip does). */
  dropPortForwards(): void;
  /** Stops listening (connections are refused) and drops open connections. */
  stopListening(): Promise<void>;
  /** Listens again on the same port. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

interface Change {
  rv: number;
  old: V1Pod | undefined;
  now: V1Pod | undefined;
}

interface Watcher {
  res: ServerResponse;
  selector: (pod: V1Pod) => boolean;
  bookmarks: boolean;
  stalled: boolean;
}

function fieldValue(pod: V1Pod, path: string): string {
  let value: unknown = pod;
  for (const key of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[key];
  return value === undefined ? '' : String(value);
}

/** `a=b,c!=d` as a predicate, the subset of field selectors pods support. */
function parseSelector(selector: string | undefined): (pod: V1Pod) => boolean {
  const terms = (selector ?? '').split(',').filter(Boolean).map((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term) as RegExpExecArray;
    return { path: m[1] as string, negate: m[2] === '!=', value: m[3] as string };
  });
  return (pod) => terms.every((t) => (fieldValue(pod, t.path) === t.value) !== t.negate);
}

/** `a=b,c!=d,e` over labels, the equality-based subset of label selectors. */
function parseLabelSelector(selector: string | undefined): (labels: Record<string, string> | undefined) => boolean {
  const terms = (selector ?? '').split(',').filter(Boolean).map((term) => {
    const m = /^([^!=]+)(?:(!=|==|=)(.*))?$/.exec(term.trim()) as RegExpExecArray;
    return { key: m[1] as string, op: m[2], value: m[3] };
  });
  return (labels = {}) =>
    terms.every((t) => (t.op === undefined ? Object.hasOwn(labels, t.key) : (labels[t.key] === t.value) !== (t.op === '!=')));
}

/** The kubelet's port-forward channels: data and error of the one port, each opened with the port number. */
const DATA_CHANNEL = 0;
const ERROR_CHANNEL = 1;
const PORT_FORWARD_PROTOCOL = 'v4.channel.k8s.io';

function status(code: number, message: string): string {
  const reason = ({ 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 410: 'Expired', 500: 'InternalError' } as Record<number, string>)[code] ?? 'Unknown';
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

/** A self-signed certificate and key for 127.0.0.1, made with openssl. */
function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'execwatch-apiserver-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts a double on an ephemeral port of 127.0.0.1. */
export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServerDouble> {
  const pods = new Map<string, V1Pod>();
  const history: Change[] = [];
  const watchers = new Set<Watcher>();
  const requests: RecordedRequest[] = [];
  let rv = 100;
  let compactedRv = 0;
  let failures: { status: number; count: number } | null = null;
  let holding = false;
  let stalled: Promise<void> | null = null;
  let tokens: string[] | null = null;
  const nodes = new Map<string, V1Node>();
  const secrets = new Map<string, Record<string, string>>();
  const forwards = new Map<string, number>();
  const sockets = new Set<WebSocket>();

  const stamp = (pod: V1Pod): V1Pod => {
    const copy = structuredClone(pod);
    (copy.metadata ??= {}).resourceVersion = String(++rv);
    return copy;
  };
  const keyOf = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

  const send = (w: Watcher, type: string, object: unknown) => {
    // An ended watch stays in the set until its socket closes.
    if (!w.res.writableEnded && !w.stalled) w.res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const deliver = (w: Watcher, change: Change) => {
    const was = change.old !== undefined && w.selector(change.old);
    const is = change.now !== undefined && w.selector(change.now);
    // A field-selected watch sees an object enter and leave its selection as ADDED/DELETED.
    if (is) send(w, was ? 'MODIFIED' : 'ADDED', change.now);
    else if (was) send(w, 'DELETED', { ...change.old, metadata: { ...change.old?.metadata, resourceVersion: String(change.rv) } });
  };
  const record = (change: Change) => {
    history.push(change);
    if (!holding) for (const w of watchers) deliver(w, change);
  };

  const list = (query: Record<string, string>, res: ServerResponse, namespace?: string) => {
    const selector = parseSelector(query.fieldSelector);
    const labels = parseLabelSelector(query.labelSelector);
    const all = [...pods.values()]
      .filter((pod) => selector(pod) && labels(pod.metadata?.labels) && (namespace === undefined || pod.metadata?.namespace === namespace)).sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    const token = query.continue ? (JSON.parse(Buffer.from(query.continue, 'base64url').toString()) as { rv: number; start: number }) : null;
    if (token && token.rv < compactedRv) {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(status(410, 'The provided continue parameter is too old to display a consistent list result.'));
      return;
    }
    const start = token?.start ?? 0;
    const limit = query.limit ? Number(query.limit) : all.length;
    const items = all.slice(start, start + limit).map(({ apiVersion: _a, kind: _k, ...item }) => item);
    const more = start + limit < all.length;
    const listRv = String(token?.rv ?? rv);
    const next = more ? Buffer.from(JSON.stringify({ rv: Number(listRv), start: start + limit })).toString('base64url') : undefined;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: listRv, continue: next }, items }));
  };

  const watch = (query: Record<string, string>, res: ServerResponse, namespace?: string) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // A real API server answers a watch at once, before any event.
    res.flushHeaders();
    const fields = parseSelector(query.fieldSelector);
    const labels = parseLabelSelector(query.labelSelector);
    const selector = (pod: V1Pod) => fields(pod) && labels(pod.metadata?.labels) && (namespace === undefined || pod.metadata?.namespace === namespace);
    const w: Watcher = { res, selector, bookmarks: query.allowWatchBookmarks === 'true', stalled: false };
    const from = Number(query.resourceVersion ?? '0');
    if (from !== 0 && from < compactedRv) {
      send(w, 'ERROR', JSON.parse(status(410, `too old resource version: ${from} (${compactedRv})`)));
      res.end();
      return;
    }
    if (from === 0) for (const pod of pods.values()) deliver(w, { rv, old: undefined, now: pod });
    else for (const change of history) if (change.rv > from) deliver(w, change);
    watchers.add(w);
    res.on('close', () => watchers.delete(w));
    if (query.timeoutSeconds) setTimeout(() => w.stalled || res.end(), Number(query.timeoutSeconds) * 1000).unref();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url as string, 'http://double');
    const query = Object.fromEntries(url.searchParams);
    requests.push({ path: url.pathname, query, authorization: req.headers.authorization, at: Date.now() });
    if (stalled) {
      const wait = stalled;
      stalled = null;
      await wait;
      // The client gave up meanwhile: nothing to answer.
      if (req.socket.destroyed) return;
    }
    if (tokens && !tokens.some((token) => req.headers.authorization === `Bearer ${token}`)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(status(401, 'Unauthorized'));
    } else if (failures) {
      const { status: code } = failures;
      if (--failures.count === 0) failures = null;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(status(code, `injected failure ${code}`));
    } else if (url.pathname === '/api/v1/pods') {
      if (query.watch === 'true') watch(query, res);
      else list(query, res);
    } else if (/^\/api\/v1\/namespaces\/[^/]+\/pods$/.test(url.pathname)) {
      if (query.watch === 'true') watch(query, res, url.pathname.split('/')[4]);
      else list(query, res, url.pathname.split('/')[4]);
    } else if (url.pathname === '/api/v1/nodes') {
      const labels = parseLabelSelector(query.labelSelector);
      const items = [...nodes.values()].filter((node) => labels(node.metadata?.labels));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items }));
    } else if (/^\/api\/v1\/namespaces\/[^/]+\/secrets\/[^/]+$/.test(url.pathname)) {
      const [, , , , namespace, , name] = url.pathname.split('/') as string[];
      const data = secrets.get(`${namespace}/${name}`);
      res.writeHead(data ? 200 : 404, { 'content-type': 'application/json' });
      res.end(data
        ? JSON.stringify({ kind: 'Secret', apiVersion: 'v1', metadata: { name, namespace }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) })
        : status(404, `secrets "${name}" not found`));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(status(404, `not found: ${url.pathname}`));
    }
  };

  /**
   * pods/portforward over WebSocket, as the kubelet answers it: channel 0 carries the TCP stream of
   * the pod's port, channel 1 the errors; each channel's first frame is the port (uint16, little
   * endian); the WebSocket closes when the connection ends, after an error message when it failed.
   */
  // No permessage-deflate: kube-apiserver does not offer it on port-forwards.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (offered) => (offered.has(PORT_FORWARD_PROTOCOL) ? PORT_FORWARD_PROTOCOL : false) });
  const refuseUpgrade = (socket: Duplex, code: number, message: string) => {
    const body = status(code, message);
    socket.end(`HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Unauthorized'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  };
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url as string, 'http://double');
    requests.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization, at: Date.now() });
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/.exec(url.pathname);
    const port = Number(url.searchParams.get('ports'));
    if (tokens && !tokens.some((token) => req.headers.authorization === `Bearer ${token}`)) return refuseUpgrade(socket, 401, 'Unauthorized');
    if (!m || !pods.has(`${m[1]}/${m[2]}`)) return refuseUpgrade(socket, 404, `pods "${m?.[2]}" not found`);
    const target = forwards.get(`${m[1]}/${m[2]}:${port}`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      const prefix = (channel: number, data: Buffer) => Buffer.concat([Buffer.from([channel]), data]);
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port);
      ws.send(prefix(DATA_CHANNEL, portBytes));
      ws.send(prefix(ERROR_CHANNEL, portBytes));
      const fail = (reason: string) => {
        ws.send(prefix(ERROR_CHANNEL, Buffer.from(`an error occurred forwarding ${port} -> ${port}: error forwarding port ${port} to pod ${m[2]}: ${reason}`)));
        ws.close();
      };
      if (target === undefined) return fail(`dial tcp4 127.0.0.1:${port}: connect: connection refused`);
      const tcp = connect(target, '127.0.0.1');
      const pending: Buffer[] = [];
      tcp.on('connect', () => {
        for (const chunk of pending.splice(0)) tcp.write(chunk);
      });
      tcp.on('data', (data: Buffer) => ws.send(prefix(DATA_CHANNEL, data)));
      tcp.on('error', (err: NodeJS.ErrnoException) => fail(`dial tcp4 127.0.0.1:${port}: connect: ${err.code === 'ECONNREFUSED' ? 'connection refused' : err.message}`));
      tcp.on('end', () => ws.close());
      ws.on('message', (data: Buffer) => {
        if (data[0] !== DATA_CHANNEL) return;
        if (tcp.connecting) pending.push(data.subarray(1));
        else tcp.write(data.subarray(1));
      });
      ws.on('close', () => tcp.destroy());
    });
  };

  const ca = opts.tls ? selfSigned() : null;
  const server = ca ? createTlsServer(ca, handle) : createServer(handle);
  const listenOn = (port: number) =>
    new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  server.on('upgrade', upgrade);
  await listenOn(0);
  const { port } = server.address() as AddressInfo;
  const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
  const bookmark = () => {
    for (const w of watchers) {
      if (w.bookmarks) send(w, 'BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } });
    }
  };
  const bookmarks = opts.bookmarkEveryMs ? setInterval(bookmark, opts.bookmarkEveryMs) : undefined;
  bookmarks?.unref();

  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const ws of sockets) ws.terminate();
    });

  return {
    url,
    port,
    ca: ca?.cert ?? null,
    requests,
    get watchers() {
      return watchers.size;
    },
    get portForwards() {
      return sockets.size;
    },
    dropPortForwards() {
      for (const ws of sockets) ws.terminate();
    },
    addNode(name, labels) {
      nodes.set(name, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } });
    },
    addSecret(namespace, name, data) {
      secrets.set(`${namespace}/${name}`, data);
    },
    forwardPort(namespace, name, port, localPort) {
      forwards.set(`${namespace}/${name}:${port}`, localPort);
    },
    kubeconfigPath(dir) {
      const file = join(dir, 'kubeconfig');
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'double', cluster: ca
          ? { server: url, 'certificate-authority-data': Buffer.from(ca.cert).toString('base64') }
          : { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'agent', user: { token: 'double-token' } }],
        contexts: [{ name: 'double', context: { cluster: 'double', user: 'agent' } }],
        'current-context': 'double',
      };
      writeFileSync(file, JSON.stringify(config, null, 2));
      return file;
    },
    addPod(pod) {
      const now = stamp(pod);
      pods.set(keyOf(now), now);
      record({ rv, old: undefined, now });
    },
    updatePod(pod) {
      const now = stamp(pod);
      const old = pods.get(keyOf(now));
      pods.set(keyOf(now), now);
      record({ rv, old, now });
    },
    deletePod(namespace, name) {
      const key = `${namespace}/${name}`;
      const old = pods.get(key);
      pods.delete(key);
      record({ rv: ++rv, old, now: undefined });
    },
    bookmark,
    closeWatches() {
      for (const w of watchers) w.res.end();
      watchers.clear();
    },
    compact() {
      compactedRv = rv;
      history.length = 0;
    },
    hold(on) {
      holding = on;
    },
    stall() {
      let release!: () => void;
      stalled = new Promise<void>((resolve) => (release = resolve));
      return release;
    },
    stallWatches() {
      for (const w of watchers) w.stalled = true;
    },
    acceptTokens(accepted) {
      tokens = accepted;
    },
    failNext(code, count = 1) {
      failures = { status: code, count };
    },
    stopListening,
    listen: () => listenOn(port),
    close: () => {
      clearInterval(bookmarks);
      return stopListening();
    },
  };
}
