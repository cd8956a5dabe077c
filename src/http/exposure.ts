/**
 * Who can reach the events API. argv can hold secrets, so the API listens beyond loopback only
 * with a token (auth.ts) or when told to (--api-insecure); anything else is refused at start-up as
 * a configuration error. The chart applies the same rule when it renders api.address.
 */
import { BlockList, isIP } from 'node:net';
import { ConfigError, formatHostPort, type Config } from '../config.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a listen host is this machine's loopback: 127.0.0.0/8, ::1 (any spelling, and
 * IPv4-mapped 127.x) or "localhost". Any other name may resolve anywhere, so it counts as beyond.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Throws a ConfigError naming --api-address when the events API would serve argv beyond loopback without a token. */
export function refuseUnauthenticatedExposure(config: Pick<Config, 'apiAddress' | 'apiTokenFile' | 'apiInsecure'>): void {
  const { host, port } = config.apiAddress;
  if (isLoopbackHost(host) || config.apiTokenFile !== null || config.apiInsecure) return;
  throw new ConfigError(
    `--api-address ${formatHostPort(host, port)} is beyond loopback and would serve argv to anyone who can connect: ` +
      'give --api-token-file <path> to require a token, or --api-insecure to serve it without one',
  );
}
