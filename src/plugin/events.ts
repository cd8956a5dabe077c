/**
 * `kubectl execwatch events`: the newest matching execs of every node, merged newest first.
 */
import { collectEvents } from './collect.js';
import { discoverAgents, loadKubeConfig, tokensFor } from './cluster.js';
import { AgentClient } from './forward.js';
import type { Command } from './main.js';
import { failureLines, formatEvents } from './output.js';
import {
  CLUSTER_FLAGS,
  clusterOptions,
  DEFAULTS,
  FILTER_OPTIONS,
  OUTPUTS,
  parseFlags,
  queryOf,
  UsageError,
  type Output,
} from './options.js';

const FLAGS = {
  ...CLUSTER_FLAGS,
  ...FILTER_OPTIONS,
  limit: { type: 'string' },
  output: { type: 'string', short: 'o' },
} as const;

/** `-o`, checked. */
export function outputOf(raw: string | undefined): Output {
  const output = OUTPUTS.find((o) => o === (raw ?? 'table'));
  if (output === undefined) throw new UsageError(`-o "${raw}" is not an output format: one of ${OUTPUTS.join(', ')}`);
  return output;
}

/** The flags every command that reaches the agents shares, for --help. */
export const CLUSTER_HELP = `
Where the agents are:
  --kubeconfig PATH          kubeconfig file (default: KUBECONFIG, then ~/.kube/config)
  --context NAME             kubeconfig context (default: the current one)
  -n, --namespace NS         namespace of the agents (default: ${DEFAULTS.namespace})
  --agent-selector LABELS    label selector of the agent pods (default: ${DEFAULTS.agentSelector})
  --token-file PATH          API token file; by default the token is read from the Secret the
                             agent pods mount (chart value api.tokenSecret), if they mount one
  --node NAME                only this node's agent (repeatable)
  --node-selector LABELS     only the agents on nodes with these labels (e.g. pool=web)
  --timeout DURATION         how long each node may take to answer (default: ${DEFAULTS.timeout})
  --max-parallel N           nodes asked at once (default: ${DEFAULTS.maxParallel})
`;

/** The filter flags, for --help. */
export const FILTER_HELP = `
Filters (those of the events API, applied on every node):
  --namespace-filter NS      pods of this namespace
  --pod NAME, --container NAME, --comm NAME
                             exactly this pod, container, process name
  --filename TEXT            executed path contains TEXT
  -q TEXT                    filename or an argument contains TEXT
  --result success|failure   successful or failed execs
  --attribution KIND         pod, host, unresolved or conflict
  --image REF                the container's image: a reference, or a repository (any tag)
  --workload KIND/NAME       the pod's workload, as the metrics name it (Deployment/web)
  --drift true|false         the binary was not in the image (written in the container)
  --origin ORIGIN            host, init, workload, exec, probe or debug
  --session EXECID           the commands of one kubectl exec (or debug) session
  --exec-id EXECID, --parent-exec-id EXECID
                             this process, or the children of this one
  --uid N, --euid N          this user id, this effective user id
  --since DURATION|TIME      newer than 10m, 1h, 7d ago, or an RFC 3339 time
  --until DURATION|TIME      older than that (--since 2h --until 1h: the hour before the last)
  --kind KINDS               kinds of event, comma-separated: exec (default), exit, throttle, gap
`;

const EXIT_HELP = `
Exit status: 0 every node answered; 3 some did not (each named on stderr, and in -o json under
"failures"): the events shown are those of the others; 1 no agent could be asked; 2 bad flags.
`;

export const eventsCommand: Command = {
  summary: 'the newest execs of every node, merged newest first',
  help: `Usage: kubectl execwatch events [flags]

The newest execs matching the filters, from every node's agent, merged newest first.
Each node is asked for at most --limit events.

  --limit N                  how many events (1-10000, default: ${DEFAULTS.limit})
  -o, --output FORMAT        table (default), wide, json or jsonl
${FILTER_HELP}${CLUSTER_HELP}${EXIT_HELP}`,

  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const output = outputOf(values.output);
    const cluster = clusterOptions(values);
    const query = queryOf(values, 'events');
    const kc = loadKubeConfig(cluster);
    const { agents, failures: unreachable } = await discoverAgents(kc, cluster);
    const tokens = await tokensFor(kc, agents, cluster.tokenFile);
    const collected = await collectEvents(new AgentClient(kc), agents, {
      query,
      tokens,
      timeoutMs: cluster.timeoutMs,
      maxParallel: cluster.maxParallel,
    });
    const failures = [...unreachable, ...collected.failures];
    io.out(formatEvents(collected.events, failures, output));
    for (const line of failureLines(failures)) io.err(line);
    if (failures.length === 0) return 0;
    // A node that answered and then failed when asked again is named once per failure, counted once.
    io.err(`partial results: ${new Set(failures.map((f) => f.node)).size} of ${agents.length + unreachable.length} nodes did not answer`);
    return collected.answered === 0 ? 1 : 3;
  },
};
