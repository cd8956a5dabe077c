/**
 * The events API's bearer token (--api-token-file): read at start, re-read whenever the file
 * changes (a rotated Kubernetes Secret swaps the mounted file), compared in constant time.
 * The token is never logged, echoed or put in an error message.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError } from '../config.js';

/** What a token must look like: a header can carry only visible ASCII, and no spaces. */
const TOKEN_SYNTAX = /^[\x21-\x7e]+$/;

/** Why a token file cannot be used, or null when it can. */
function problemOf(token: string): string | null {
  if (token === '') return 'is empty';
  if (!TOKEN_SYNTAX.test(token)) return 'holds characters an Authorization header cannot carry (visible ASCII only, no spaces)';
  return null;
}

/** The current token of a file, re-read when the file changes. */
export interface ApiToken {
  /** The token, or null while the file is missing, unreadable or invalid: then nothing matches. */
  current(): Promise<string | null>;
}

/** Identifies one version of the file: any rewrite, rename or Secret swap changes it. */
async function versionOf(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/**
 * Reads the token file (trimmed); a missing, unreadable, empty or malformed file stops start-up
 * with a ConfigError naming --api-token-file. Later, each current() stats the file (cheap) and
 * re-reads it when it changed; requests that see the change together share that one read. A later
 * bad version refuses every request (fail closed) until the file is fixed; `stderr` hears of it
 * once per version, without the token.
 */
export async function openApiToken(path: string, stderr: { write(line: string): unknown }): Promise<ApiToken> {
  type State = { version: string; token: string | null; problem: string | null };
  const currentVersion = () => versionOf(path).catch(() => 'missing');
  /** Reads the file, whose version (stat) the caller has just taken. */
  const load = async (version: string): Promise<State> => {
    try {
      const token = (await readFile(path, 'utf8')).trim();
      const problem = problemOf(token);
      return { version, token: problem === null ? token : null, problem };
    } catch (err) {
      return { version, token: null, problem: `cannot be read (${(err as NodeJS.ErrnoException).code})` };
    }
  };
  let state = await load(await currentVersion());
  if (state.problem !== null) {
    throw new ConfigError(`--api-token-file: ${JSON.stringify(path)} ${state.problem} (a readable file holding the token)`);
  }
  /** The re-read under way, shared by every request that saw the file change meanwhile. */
  let pending: Promise<State> | null = null;
  return {
    async current() {
      const version = await currentVersion();
      if (version === state.version) return state.token;
      pending ??= load(version)
        .then((next) => {
          state = next;
          if (next.problem !== null) {
            stderr.write(`execwatch: --api-token-file ${path} ${next.problem}: every events API request is refused until it holds a token\n`);
          }
          return next;
        })
        .finally(() => {
          pending = null;
        });
      return (await pending).token;
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerOf(header: string | undefined): string | null {
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? '');
  return m ? (m[1] as string) : null;
}

/** Equal strings, in time independent of where they differ and of their lengths. */
export function sameToken(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Where a refused client is told the token comes from (the 401's message). */
export interface TokenSource {
  /** Said when no token was sent: where to find it. */
  missing: string;
  /** Said when the token sent is not it: which one it must be. */
  wrong: string;
}

/** The agent's token: the file of --api-token-file. */
const AGENT_TOKEN: TokenSource = { missing: 'the agent reads it from --api-token-file', wrong: 'the one in --api-token-file' };

/** An onRequest hook that answers 401 unless the request carries the current token. */
export function requireToken(token: ApiToken, source: TokenSource = AGENT_TOKEN) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const given = bearerOf(request.headers.authorization);
    // Without a token there is nothing to compare: the file is not even looked at.
    if (given !== null) {
      const expected = await token.current();
      if (expected !== null && sameToken(given, expected)) return;
    }
    // RFC 6750 §3: say which scheme, and whether a token was sent but refused.
    const challenge = given === null ? 'Bearer realm="execwatch"' : 'Bearer realm="execwatch", error="invalid_token"';
    const message = given === null
      ? `the events API needs a token: send Authorization: Bearer <token> (${source.missing})`
      : `the bearer token is not ${source.wrong}`;
    return reply.code(401).header('www-authenticate', challenge).header('cache-control', 'no-store').send({ error: 'Unauthorized', message });
  };
}
