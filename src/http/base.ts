/**
 * What both listeners share: a fastify instance with the TypeBox type provider, strict query
 * validation, 400 messages that name the bad parameter, and one error handler that never leaks
 * internals on 5xx. Every error body is {"error", "message"}.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyReply, type FastifySchemaValidationError } from 'fastify';
import type { LogLevel } from '../config.js';

/** The body of every 4xx/5xx answer. */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });

/** Response schemas for the error answers a route can give. */
export const errorResponses = { 400: ErrorBody, 404: ErrorBody, 500: ErrorBody } as const;

/** One line per validation failure, naming the parameter: "querystring/limit must be <= 10000". */
export function formatValidationError(error: FastifySchemaValidationError, part: string): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    const name = String(params.additionalProperty);
    // "?=x" has a parameter without a name: say so rather than print an empty one.
    if (name === '') return `${part} has a parameter with an empty name, which is not a known parameter`;
    return `${part}/${name} is not a known parameter`;
  }
  const path = `${part}${error.instancePath}`;
  if (error.keyword === 'format' && params.format === 'date-time') {
    return `${path} must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z`;
  }
  if (error.keyword === 'enum') {
    return `${path} must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
  }
  return `${path} ${error.message ?? 'is invalid'}`;
}

export interface BaseOptions {
  logLevel: LogLevel;
  /**
   * Where log lines go (default stderr: stdout belongs to --log-events, whose readers expect
   * nothing but ExecEvent lines there); tests read them.
   */
  logStream?: { write(line: string): void };
}

/** A configured but empty app; the caller registers its routes plugin. */
export function createApp(opts: BaseOptions) {
  const app = Fastify({
    // At --log-level info the HTTP layer reports what needs attention (warnings, errors): its own
    // info lines are two per request, which would bury the log under probes and scrapes, and
    // "Server listening", which the agent prints itself. debug and trace show them.
    logger: { level: opts.logLevel === 'info' ? 'warn' : opts.logLevel, stream: opts.logStream ?? process.stderr },
    // Unknown query parameters must be rejected (400), not silently stripped (fastify's default).
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: (errors, part) =>
      new Error(errors.map((e) => formatValidationError(e, part)).join('; ')),
    // Streams are ended by their own plugin on close; idle keep-alive sockets must not hold it.
    forceCloseConnections: 'idle',
    // Every route is a GET: nothing legitimate sends a body, and a URL is bounded by Node's 16 KiB
    // header limit (431 beyond it).
    bodyLimit: 1024,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
  });

  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: 'Not Found', message: `${request.method} ${request.url.split('?')[0]} is not a route` });
  });

  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    const status = error.validation !== undefined ? 400 : (error.statusCode ?? 500);
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      void reply.code(500).send({ error: 'Internal Server Error', message: 'internal error' });
      return;
    }
    void reply.code(status).send({ error: STATUS_CODES[status] ?? 'Error', message: error.message });
  });

  return app;
}

/** A fastify instance typed for TypeBox schemas. */
export type App = ReturnType<typeof createApp>;

/**
 * Takes a Server-Sent Events response over from fastify: its headers and the first frame (the
 * client's retry delay and a comment saying the stream is open) are written. Null when the client
 * left before (while a token was checked or agents looked up): its 'close' has passed, and nothing
 * would ever release what a stream opened now holds.
 */
export function openEventStream(reply: FastifyReply): ServerResponse | null {
  reply.hijack();
  const res = reply.raw;
  if (res.destroyed) return null;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // nginx and similar proxies buffer responses unless told not to.
    'x-accel-buffering': 'no',
  });
  res.write('retry: 3000\n: connected\n\n');
  return res;
}
