/**
 * The HTTP side of `kubectl execwatch ui`: the agent's own browse page (src/http/page, served by
 * the agent's own page routes) over a merged view of every node. GET /api/events and
 * /api/events/stream take the agent's parameters plus `node`, and answer as an agent does, with
 * what a view of many nodes adds: `nodes` (every node with an agent), `failures` (the nodes that
 * did not answer, and why) and `after` (where each node's live stream starts, so that nothing
 * between the load and the stream is missed). The page shows a node column and filter when it
 * sees `nodes`. GET /api/processes/:execId is asked of the one agent whose node the exec id names
 * (as `kubectl execwatch process`), and its answer passed on, so the page's process panel works
 * here too. GET /api/excluded sums the nodes' counts of the events left out on purpose (each
 * node's beside them), for the page's completeness banner. Every /api/ request needs the token
 * `ui` printed: the listener is on loopback, but any local user could reach it, and argv can hold
 * secrets.
 */
import type { ServerResponse } from 'node:http';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseExecId } from '../events/exec-id.js';
import { EXCLUDED_REASONS, noneExcluded } from '../events/excluded.js';
import { ProcessBody } from '../events/schema.js';
import { compileFilter, EventsQuery, ExecIdParam, FilterError, FilterQuery } from '../events/filter.js';
import { requireToken } from '../http/auth.js';
import { ExcludedBody, ExcludedQuery } from '../http/excluded-routes.js';
import { createApp, ErrorBody, openEventStream, type App } from '../http/base.js';
import { pageRoutes } from '../http/page.js';
import { sameOriginOnly } from '../http/same-origin.js';
import { ClusterError, discoverAgents, tokensFor, type Agent, type NodeFailure } from './cluster.js';
import { collectEvents, eachLimited, failureOf } from './collect.js';
import { AgentClient, authHeaders, bodyText, errorOf } from './forward.js';
import { NodeStream } from './node-stream.js';
import { failureLine } from './output.js';
import type { ClusterOptions } from './options.js';

/** A node's name (a Kubernetes object name). */
const NodeName = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9.-]+$' });
/** `node:seq,node:seq…`: where each node's stream goes on after the page's rows were loaded. */
const CURSOR = /^[a-z0-9.-]+:\d{1,15}(,[a-z0-9.-]+:\d{1,15})*$/;
/** Longer cursors are not offered: a URL must stay well under Node's 16 KiB header limit. */
export const MAX_CURSOR_CHARS = 12_000;
/** What a page without the token is told (it asks for the token with this message). */
const UI_TOKEN = {
  missing: 'kubectl execwatch ui printed it in the address to open, after #token=',
  wrong: 'the one kubectl execwatch ui printed for this run',
} as const;
/** A page that reads its stream slower than this much is waiting is cut off (it reconnects). */
const MAX_PENDING_BYTES = 1 << 20;

const UiEventsQuery = Type.Object({ ...EventsQuery.properties, node: Type.Optional(NodeName) }, { additionalProperties: false });
const UiStreamQuery = Type.Object(
  { ...FilterQuery.properties, node: Type.Optional(NodeName), after: Type.Optional(Type.String({ maxLength: MAX_CURSOR_CHARS, pattern: CURSOR.source })) },
  { additionalProperties: false },
);

const UiExcludedQuery = Type.Object({ ...ExcludedQuery.properties, node: Type.Optional(NodeName) }, { additionalProperties: false });
const NodeFailureSchema = Type.Object({ node: Type.String(), pod: Type.Union([Type.String(), Type.Null()]), reason: Type.String() });
/** The nodes' counts summed (from the earliest minute counted to the latest), each node's, and the nodes that did not answer. */
const UiExcludedBody = Type.Object({
  ...ExcludedBody.properties,
  nodes: Type.Array(Type.Object({ node: Type.String(), ...ExcludedBody.properties })),
  failures: Type.Array(NodeFailureSchema),
});

/** What GET /api/events answers: the agents' events (as they sent them) and the view's own fields. */
const UiEventsBody = Type.Object({
  events: Type.Array(Type.Unknown()),
  nodes: Type.Array(Type.String()),
  failures: Type.Array(NodeFailureSchema),
  after: Type.Optional(Type.String()),
});

export interface UiAppOptions {
  kc: KubeConfig;
  cluster: ClusterOptions;
  /** The token every /api/ request must carry. */
  token: string;
}

/** A validated query as the text the agents take, without the view's own parameters. */
function agentQuery(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) if (name !== 'node' && name !== 'after' && value !== undefined) out[name] = String(value);
  return out;
}

/** A filter value the schema let through but the agents would refuse (a leap second), as a 400 message. */
function filterProblem(query: Record<string, unknown>): string | null {
  try {
    compileFilter(query);
    return null;
  } catch (err) {
    /* c8 ignore next -- compileFilter throws nothing but FilterError; anything else is a bug. */
    if (!(err instanceof FilterError)) throw err;
    return `querystring/${err.parameter} ${err.message}`;
  }
}

/** The cursor text of each node's seq to resume after, or undefined when there is none or it is too long. */
export function cursorOf(resume: ReadonlyMap<string, number>): string | undefined {
  const text = [...resume].map(([node, seq]) => `${node}:${seq}`).join(',');
  return text === '' || text.length > MAX_CURSOR_CHARS ? undefined : text;
}

const uiRoutes: FastifyPluginAsyncTypebox<UiAppOptions & { streams: Set<ServerResponse> }> = async (app, opts) => {
  const { kc, cluster, streams } = opts;
  const client = new AgentClient(kc);
  /** The agents of the nodes asked for (`node` narrows to one), their tokens, and the nodes without one. */
  const reach = async (node: string | undefined) => {
    const found = await discoverAgents(kc, { ...cluster, nodes: node === undefined ? cluster.nodes : [node] });
    return { ...found, tokens: await tokensFor(kc, found.agents, cluster.tokenFile) };
  };
  /** reach(), or the message of why no agent can be asked (the API server refused, none runs). */
  const reachOrWhy = (node: string | undefined) =>
    reach(node).catch((err: unknown) => {
      /* c8 ignore next -- reach throws ClusterError (or a UsageError for --token-file, checked at start) */
      if (!(err instanceof ClusterError)) throw err;
      return err.message;
    });
  const nodesOf = (agents: readonly Agent[], failures: readonly NodeFailure[]) => [...new Set([...agents.map((a) => a.node), ...failures.map((f) => f.node)])].sort();

  app.get('/api/events', { schema: { querystring: UiEventsQuery, response: { 200: UiEventsBody, 400: ErrorBody, 502: ErrorBody } } }, async (request, reply) => {
    const problem = filterProblem(request.query);
    if (problem !== null) return reply.code(400).send({ error: 'Bad Request', message: problem });
    const reached = await reachOrWhy(request.query.node);
    if (typeof reached === 'string') return reply.code(502).send({ error: 'Bad Gateway', message: reached });
    const { agents, failures: unreachable, tokens } = reached;
    const collected = await collectEvents(client, agents, { query: agentQuery(request.query), tokens, timeoutMs: cluster.timeoutMs, maxParallel: cluster.maxParallel });
    const failures = [...unreachable, ...collected.failures];
    const after = cursorOf(collected.resumeSeqs);
    const body =
      `{"events":[${collected.events.map((m) => m.json).join(',')}],"nodes":${JSON.stringify(nodesOf(agents, failures))},` +
      `"failures":${JSON.stringify(failures)}${after === undefined ? '' : `,"after":${JSON.stringify(after)}`}}`;
    // The events' texts as their agents sent them: sent as is, not re-serialized.
    return reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(body as unknown as Static<typeof UiEventsBody>);
  });

  app.get('/api/processes/:execId', { schema: { params: Type.Object({ execId: ExecIdParam }), response: { 200: ProcessBody, 400: ErrorBody, 404: ErrorBody, 502: ErrorBody } } }, async (request, reply) => {
    const { execId } = request.params;
    const id = parseExecId(execId);
    if (id === null) return reply.code(400).send({ error: 'Bad Request', message: `params/execId "${execId}" is not an exec id` });
    const reached = await reachOrWhy(id.node);
    if (typeof reached === 'string') return reply.code(502).send({ error: 'Bad Gateway', message: reached });
    const [agent] = reached.agents;
    // discoverAgents names every node asked for that has no agent to ask.
    if (agent === undefined) return reply.code(502).send({ error: 'Bad Gateway', message: failureLine(reached.failures[0] as NodeFailure) });
    const signal = AbortSignal.timeout(cluster.timeoutMs);
    try {
      const res = await client.get(agent, `/api/processes/${encodeURIComponent(execId)}`, authHeaders(reached.tokens.get(agent) ?? null), signal);
      const text = await bodyText(res);
      if (res.statusCode !== 200 && res.statusCode !== 404) {
        return reply.code(502).send({ error: 'Bad Gateway', message: `node ${id.node} (pod ${agent.pod}): the agent answered HTTP ${res.statusCode}` });
      }
      // The agent's answer as it sent it: the process, or its 404 saying it is no longer held.
      return reply
        .code(res.statusCode)
        .header('cache-control', 'no-store')
        .type('application/json; charset=utf-8')
        .send(text as unknown as Static<typeof ProcessBody>);
    } catch (err) {
      return reply.code(502).send({ error: 'Bad Gateway', message: `node ${id.node} (pod ${agent.pod}): ${failureOf(err, signal.aborted, cluster.timeoutMs)}` });
    }
  });

  app.get('/api/excluded', { schema: { querystring: UiExcludedQuery, response: { 200: UiExcludedBody, 400: ErrorBody, 502: ErrorBody } } }, async (request, reply) => {
    const problem = filterProblem(request.query);
    if (problem !== null) return reply.code(400).send({ error: 'Bad Request', message: problem });
    const reached = await reachOrWhy(request.query.node);
    if (typeof reached === 'string') return reply.code(502).send({ error: 'Bad Gateway', message: reached });
    const { agents, tokens } = reached;
    const failures = [...reached.failures];
    const nodes: Static<typeof UiExcludedBody>['nodes'] = [];
    const query = new URLSearchParams(agentQuery(request.query));
    await eachLimited(agents, cluster.maxParallel, async (agent) => {
      const signal = AbortSignal.timeout(cluster.timeoutMs);
      try {
        const res = await client.get(agent, `/api/excluded?${query}`, authHeaders(tokens.get(agent) ?? null), signal);
        if (res.statusCode !== 200) {
          failures.push({ node: agent.node, pod: agent.pod, reason: `the agent answered ${await errorOf(res)}` });
          return;
        }
        const body: unknown = JSON.parse(await bodyText(res));
        // Another shape (another version, a proxy's page) would throw or sum NaN below: a node failure.
        if (Value.Check(ExcludedBody, body)) nodes.push({ node: agent.node, ...body });
        else failures.push({ node: agent.node, pod: agent.pod, reason: 'the agent answered 200 with a body that is not the counts of GET /api/excluded' });
      } catch (err) {
        failures.push({ node: agent.node, pod: agent.pod, reason: failureOf(err, signal.aborted, cluster.timeoutMs) });
      }
    });
    nodes.sort((a, b) => a.node.localeCompare(b.node));
    const excluded = noneExcluded();
    for (const n of nodes) for (const reason of EXCLUDED_REASONS) excluded[reason] += n.excluded[reason];
    // ISO times of one form compare as text; with no node answering, the span is now.
    const now = new Date().toISOString();
    const from = nodes.map((n) => n.from).sort()[0] ?? now;
    const to = nodes.map((n) => n.to).sort().at(-1) ?? now;
    return reply.header('cache-control', 'no-store').send({ from, to, excluded, nodes, failures });
  });

  app.get('/api/events/stream', { schema: { querystring: UiStreamQuery, response: { 400: ErrorBody, 502: ErrorBody } } }, async (request, reply) => {
    const problem = filterProblem(request.query);
    if (problem !== null) return reply.code(400).send({ error: 'Bad Request', message: problem });
    const reached = await reachOrWhy(request.query.node);
    if (typeof reached === 'string') return reply.code(502).send({ error: 'Bad Gateway', message: reached });
    const { agents, failures, tokens } = reached;
    const after = new Map((request.query.after?.split(',') ?? []).map((entry) => entry.split(':') as [string, string]));
    const res = openEventStream(reply);
    // The page went away while its agents were looked up (a reload, a filter changed): streams
    // opened now would hold a port-forward and an agent's stream per node until ui stops.
    if (res === null) return reply;
    const send = (event: string, data: string) => {
      res.write(`event: ${event}\ndata: ${data}\n\n`);
      if (res.writableLength > MAX_PENDING_BYTES) res.destroy();
    };
    const notice = (node: string, message: string) => send('notice', JSON.stringify({ node, message }));
    for (const f of failures) notice(f.node, failureLine(f));
    const query = agentQuery(request.query);
    const nodeStreams = agents.map((agent) => {
      const from = after.get(agent.node);
      return new NodeStream(agent, client, {
        query: from === undefined ? query : { ...query, after: from },
        token: tokens.get(agent) ?? null,
        timeoutMs: cluster.timeoutMs,
        onEvent: (m) => send(m.kind, m.json),
        notice: (line) => notice(agent.node, line),
      });
    });
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      for (const stream of nodeStreams) stream.stop();
    });
    return reply;
  });
};

/** The ui's app, not listening yet. */
export function buildUiApp(opts: UiAppOptions): App {
  const app = createApp({ logLevel: 'fatal' });
  const streams = new Set<ServerResponse>();
  // As on the agent: a rebinding page must not even learn that the view is there.
  app.addHook('onRequest', sameOriginOnly([]));
  void app.register(async (scope) => {
    scope.addHook('onRequest', requireToken({ current: async () => opts.token }, UI_TOKEN));
    await scope.register(uiRoutes, { ...opts, streams });
  });
  void app.register(pageRoutes, {});
  // Live streams end with the view (Ctrl-C), before the server waits for its connections to close:
  // the page's fetch sees the end, the agents' streams stop.
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });
  return app;
}
