// Who can reach the events API: loopback, or beyond it only with a token or --api-insecure.
import t from 'tap';
import { ConfigError } from '../src/config.js';
import { parseConfig } from '../src/config/parse.js';
import { isLoopbackHost, refuseUnauthenticatedExposure } from '../src/http/exposure.js';

/** The message of the ConfigError (exit 2) the rule throws for these flags and variables, or '(no error)'. */
function errorOf(argv: string[], env: Record<string, string> = {}): string {
  const parsed = parseConfig(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  try {
    refuseUnauthenticatedExposure(parsed.config);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '(no error)';
}

/** Listen hosts of the events API: loopback or not. */
const LISTEN_HOSTS = [
  { address: '127.0.0.1:9465', loopback: true },
  { address: '127.0.0.53:9465', loopback: true },
  { address: '127.255.255.254:1', loopback: true },
  { address: 'localhost:9465', loopback: true },
  { address: 'LocalHost:9465', loopback: true },
  { address: '[::1]:9465', loopback: true },
  { address: '[0:0:0:0:0:0:0:1]:9465', loopback: true },
  { address: '[::ffff:127.0.0.1]:9465', loopback: true },
  { address: '0.0.0.0:9465', loopback: false },
  { address: '[::]:9465', loopback: false },
  { address: '10.0.0.7:9465', loopback: false },
  { address: '128.0.0.1:9465', loopback: false },
  { address: '126.255.255.255:9465', loopback: false },
  { address: '[::2]:9465', loopback: false },
  { address: '[::ffff:10.0.0.1]:9465', loopback: false },
  { address: 'node-1.example:9465', loopback: false },
  { address: 'localhost.example:9465', loopback: false },
  { address: '127.0.0.1.nip.io:9465', loopback: false },
] as const;

t.test('the events API binds beyond loopback only with --api-token-file or --api-insecure', async (t) => {
  for (const { address, loopback } of LISTEN_HOSTS) {
    const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    t.equal(isLoopbackHost(host), loopback, `${host}: ${loopback ? 'loopback' : 'beyond loopback'}`);
    const bare = errorOf(['--api-address', address]);
    if (loopback) t.equal(bare, '(no error)', `${address}: allowed without a token`);
    else {
      t.equal(
        bare,
        `--api-address ${address} is beyond loopback and would serve argv to anyone who can connect: ` +
          'give --api-token-file <path> to require a token, or --api-insecure to serve it without one',
        `${address}: refused, naming both flags`,
      );
    }
    t.equal(errorOf(['--api-address', address, '--api-token-file', '/run/token']), '(no error)', `${address}: allowed with a token file`);
    t.equal(errorOf(['--api-address', address, '--api-insecure']), '(no error)', `${address}: allowed with --api-insecure`);
  }
  t.match(errorOf([], { EXECWATCH_API_ADDRESS: '0.0.0.0:9465' }), /^--api-address 0\.0\.0\.0:9465 is beyond loopback/, 'from the environment too');
  t.equal(errorOf([], { EXECWATCH_API_ADDRESS: '0.0.0.0:9465', EXECWATCH_API_TOKEN_FILE: '/run/token' }), '(no error)', 'EXECWATCH_API_TOKEN_FILE counts');
  t.equal(errorOf([], { EXECWATCH_API_ADDRESS: '0.0.0.0:9465', EXECWATCH_API_INSECURE: 'true' }), '(no error)', 'EXECWATCH_API_INSECURE counts');
  t.match(errorOf(['--api-address=0.0.0.0:9465', '--no-api-insecure'], { EXECWATCH_API_INSECURE: '1' }), /beyond loopback/, '--no-api-insecure does not');
  t.match(errorOf([], { EXECWATCH_API_ADDRESS: '0.0.0.0:9465', EXECWATCH_API_INSECURE: 'no' }), /beyond loopback/, 'EXECWATCH_API_INSECURE=no does not');
  t.equal(errorOf(['--metrics-address=0.0.0.0:1', '--api-address=127.0.0.1:2']), '(no error)', 'the metrics listener is not concerned');
});
