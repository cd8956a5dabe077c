/**
 * The events listener answers only requests a browser makes for a page of its own. Reached through
 * `kubectl port-forward` without a token, the API is open to anything on the operator's machine,
 * including web pages: a page on another site can rebind its own name to 127.0.0.1 (DNS rebinding)
 * and read argv as "same-origin", or ask cross-site. So a request is refused when its Host header
 * names a host that is not an IP address, localhost or a name given with --api-allowed-hosts (a
 * rebinding page's requests carry its own name), or when the browser says it comes from another
 * origin (`Origin`, `Sec-Fetch-Site`). Clients that are not browsers (curl, kubectl execwatch) send
 * neither header and a Host of the address they connected to.
 */
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A Host header's name, lowercased, without port or IPv6 brackets; null when it is not host[:port]. */
function hostNameOf(host: string): string | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(host);
  if (m === null) return null;
  return ((m[1] ?? m[2]) as string).toLowerCase();
}

/** What to say when a request is refused, or null when it may go on. */
function refusal(request: FastifyRequest, allowedHosts: ReadonlySet<string>): string | null {
  const host = request.headers.host;
  if (host !== undefined) {
    const name = hostNameOf(host);
    if (name === null) return `the Host header "${host}" is not host[:port]`;
    const known = isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || allowedHosts.has(name);
    if (!known) return `Host "${host}" is not a name this agent answers to (IP addresses, localhost, --api-allowed-hosts)`;
  }
  const origin = request.headers.origin;
  if (origin !== undefined && (host === undefined || !['http://', 'https://'].some((scheme) => origin.toLowerCase() === `${scheme}${host.toLowerCase()}`))) {
    return `requests from another origin (${origin}) are refused`;
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `${site} requests are refused`;
  return null;
}

/** An onRequest hook answering 403 to a request made on another site's behalf. */
export function sameOriginOnly(allowedHosts: readonly string[]) {
  const allowed = new Set(allowedHosts.map((name) => name.toLowerCase()));
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const why = refusal(request, allowed);
    if (why !== null) return reply.code(403).header('cache-control', 'no-store').send({ error: 'Forbidden', message: why });
  };
}
