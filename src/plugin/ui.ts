/**
 * `kubectl execwatch ui`: the agent's browse page on this machine's loopback, over the merged view
 * of every node (ui-app.ts), until Ctrl-C. It prints the address to open, with a token made for
 * this run in the URL's fragment (which the browser never sends): the page keeps it for its tab.
 */
import { randomBytes } from 'node:crypto';
import { discoverAgents, loadKubeConfig, tokensFor } from './cluster.js';
import { CLUSTER_HELP } from './events.js';
import type { Command } from './main.js';
import { CLUSTER_FLAGS, clusterOptions, parseFlags, UsageError } from './options.js';

const FLAGS = { ...CLUSTER_FLAGS, port: { type: 'string' } } as const;

/** `--port`, checked: 0 (the default) lets the system pick a free one. */
function portOf(raw: string | undefined): number {
  if (raw === undefined) return 0;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65_535) throw new UsageError(`--port "${raw}" is not a port number (0-65535; 0: any free port)`);
  return Number(raw);
}

export const uiCommand: Command = {
  summary: 'the browse page on this machine, over every node\'s execs, until Ctrl-C',
  help: `Usage: kubectl execwatch ui [flags]

Serves the agents' browse page on 127.0.0.1 over the merged view of every node: recent execs
newest first with a node column and filter, and live mode over every node's stream. Nodes that
do not answer are named in the page. Prints the address to open; stops on Ctrl-C.

The address carries a token made for this run (after #, which the browser does not send): any
local user can reach a loopback port, and argv can hold secrets.

  --port N                   local port (default: any free port)
${CLUSTER_HELP}
--node and --node-selector narrow the nodes the page can show; its node filter narrows further.
Exit status: 0 after Ctrl-C; 1 no agent could be found; 2 bad flags or the port is taken.
`,

  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const port = portOf(values.port);
    const cluster = clusterOptions(values);
    const kc = loadKubeConfig(cluster);
    // Before listening: a cluster without agents, or a token that cannot be read, stops here.
    const { agents, failures } = await discoverAgents(kc, cluster);
    await tokensFor(kc, agents, cluster.tokenFile);
    const token = randomBytes(24).toString('base64url');
    // Loaded here, not at the top: the HTTP server (fastify and the agent's routes) would cost every
    // other command about 10 MB and 0.05 s of CPU at start-up, measured.
    const { buildUiApp } = await import('./ui-app.js');
    const app = buildUiApp({ kc, cluster, token });
    let address: string;
    try {
      address = await app.listen({ host: '127.0.0.1', port });
    } catch (err) {
      await app.close();
      throw new UsageError(`--port ${port}: ${(err as Error).message}`);
    }
    io.out(`execwatch ui over ${agents.length + failures.length} nodes: ${address}/#token=${token}\n(Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve(), { once: true })));
    await app.close();
    return 0;
  },
};
