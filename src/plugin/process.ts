/**
 * `kubectl execwatch process EXECID`: one process's life as the agent of the node that ran it
 * knows it (GET /api/processes/:execId): its ancestors, its exec, its exit, its children. The
 * exec id names its node (src/events/exec-id.ts), so only that node's agent is asked.
 */
import { constants } from 'node:os';
import { parseExecId } from '../events/exec-id.js';
import { workloadText } from '../events/filter.js';
import type { ExecEvent, ExecExit, ProcessBody } from '../events/schema.js';
import type { Static } from '@sinclair/typebox';
import { discoverAgents, loadKubeConfig, tokensFor, type NodeFailure } from './cluster.js';
import { failureOf } from './collect.js';
import { CLUSTER_HELP } from './events.js';
import { AgentClient, authHeaders, bodyText, errorOf } from './forward.js';
import type { Command } from './main.js';
import { CLUSTER_FLAGS, clusterOptions, parseFlags, UsageError } from './options.js';

/** What GET /api/processes/:execId answers. */
type Process = Static<typeof ProcessBody>;
type Ancestor = Process['ancestors'][number];

const FLAGS = { ...CLUSTER_FLAGS, output: { type: 'string', short: 'o' } } as const;

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));

/** Control characters would break a line (a newline in an argument): shown escaped. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

const commandLine = (argv: readonly string[]) => printable(argv.map(shellQuote).join(' '));

/** Why an exec failed, from its retval (-errno): `exec failed ENOENT`. */
const failureText = (retval: number) => `exec failed ${ERRNO_NAMES.get(-retval) ?? `errno ${-retval}`}`;

/** How a process ended: `exit 0 after 0.021 s`, `SIGKILL (core) after 5 s`. */
export function exitText(exit: ExecExit): string {
  const how =
    exit.status === 'signal'
      ? `${SIGNAL_NAMES.get(exit.signal as number) ?? `signal ${exit.signal}`}${exit.coreDumped ? ' (core dumped)' : ''}`
      : `exit ${exit.code}`;
  return `${how} after ${exit.duration < 10 ? exit.duration.toFixed(3) : Math.round(exit.duration)} s`;
}

/** One process of the tree: `comm[pid] argv  execId`. */
const line = (p: Pick<Ancestor, 'comm' | 'pid' | 'argv' | 'execId'>) => `${printable(p.comm)}[${p.pid}] ${commandLine(p.argv)}  ${p.execId}`;

/** Where a process ran: namespace/pod/container, its container, or the host. */
function whereOf(e: ExecEvent): string {
  if (e.pod !== null) return `${e.namespace}/${e.pod}/${e.container ?? '?'}${e.workload ? ` (${workloadText(e.workload)})` : ''}`;
  return e.containerId === null ? 'host' : `container ${e.containerId.slice(0, 12)} (pod unknown)`;
}

/** The text `process` prints: the process's details, then its tree from the oldest ancestor down. */
export function processTree(p: Process): string {
  const e = p.exec;
  const ids = e.euidDiffers ? `uid ${e.uid} gid ${e.gid}, euid ${e.euid} egid ${e.egid}` : `uid ${e.uid} gid ${e.gid}`;
  const out = [
    `process  ${e.execId} on node ${e.node}`,
    `exec     ${e.time}  ${printable(e.filename)}`,
    `as       ${ids}`,
    `in       ${whereOf(e)}`,
    `ended    ${e.exit === undefined ? 'still running, or its exit was not seen' : `${exitText(e.exit)}, at ${e.exit.time}`}`,
    // Its own attempts that failed, oldest first: a PATH search's misses, a binary it was denied.
    ...[...p.failed].reverse().map((f) => `tried    ${f.time}  ${printable(f.filename)}  (${failureText(f.retval)})`),
    '',
  ];
  // Ancestors come nearest first: the tree starts at the farthest.
  const chain = [...p.ancestors].reverse();
  chain.forEach((a, depth) => out.push(`${depth === 0 ? '' : `${'   '.repeat(depth - 1)}└─ `}${line(a)}`));
  const depth = chain.length;
  const self = `${depth === 0 ? '' : `${'   '.repeat(depth - 1)}└─ `}${line(e)}`;
  out.push(`${self}  ◀ ${e.exit === undefined ? 'running' : exitText(e.exit)}`);
  p.children.forEach((c, i) => {
    const branch = i === p.children.length - 1 ? '└─ ' : '├─ ';
    const how = c.retval !== 0 ? failureText(c.retval) : c.exit === undefined ? 'running' : exitText(c.exit);
    out.push(`${'   '.repeat(depth)}${branch}${line(c)}  (${how})`);
  });
  if (p.children.length === 0) out.push(`${'   '.repeat(depth)}(no children in the agent's recent events)`);
  return `${out.join('\n')}\n`;
}

/** `-o`, checked: the tree (default) or the agent's JSON. */
function outputOf(raw: string | undefined): 'tree' | 'json' {
  if (raw === undefined || raw === 'tree') return 'tree';
  if (raw === 'json') return 'json';
  throw new UsageError(`-o "${raw}" is not an output format of process: tree or json`);
}

export const processCommand: Command = {
  summary: 'one process: its ancestors, exec, exit and children, from the agent of its node',
  help: `Usage: kubectl execwatch process EXECID [flags]

One process as the agent of the node that ran it knows it: its ancestors (nearest last), its
exec (when, what, as whom, where), how it ended, the exec attempts of its own that failed, and
its children still in the agent's recent events. EXECID is an event's execId (or parentExecId,
or an ancestor's): it names the node, so only that node's agent is asked.

  -o, --output FORMAT        tree (default) or json (the agent's answer as it sent it:
                             {"exec", "ancestors", "children", "session", "failed"})
${CLUSTER_HELP}
Exit status: 0 the process was found; 1 its node has no agent that answers, or the agent does not
know the process (no longer in its recent events); 2 bad flags or a malformed EXECID.
`,

  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS);
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'EXECID is missing' : `unexpected argument "${positionals[1]}"`);
    const execId = positionals[0] as string;
    const id = parseExecId(execId);
    if (id === null) {
      throw new UsageError(`EXECID "${execId}" is not an exec id (an event's execId: base64url of node and boot id, then start time and pid, joined by dots)`);
    }
    const output = outputOf(values.output);
    const cluster = { ...clusterOptions(values), nodes: [id.node] };
    const kc = loadKubeConfig(cluster);
    const { agents, failures } = await discoverAgents(kc, cluster);
    const [agent] = agents;
    if (agent === undefined) {
      // discoverAgents names every node asked for that has no agent to ask.
      const [failure] = failures as [NodeFailure];
      io.err(`process ${execId} ran on node ${id.node}, whose agent cannot be asked: ${failure.reason}`);
      return 1;
    }
    const tokens = await tokensFor(kc, agents, cluster.tokenFile);
    const signal = AbortSignal.timeout(cluster.timeoutMs);
    let text: string;
    try {
      const res = await new AgentClient(kc).get(agent, `/api/processes/${encodeURIComponent(execId)}`, authHeaders(tokens.get(agent) ?? null), signal);
      if (res.statusCode === 404) {
        await bodyText(res);
        io.err(`process ${execId} is not in the recent events of node ${id.node}'s agent (pod ${agent.pod}): it keeps only its newest events, of this boot`);
        return 1;
      }
      if (res.statusCode !== 200) {
        io.err(`node ${id.node} (pod ${agent.pod}): the agent answered ${await errorOf(res)}`);
        return 1;
      }
      text = await bodyText(res);
    } catch (err) {
      io.err(`node ${id.node} (pod ${agent.pod}): ${failureOf(err, signal.aborted, cluster.timeoutMs)}`);
      return 1;
    }
    io.out(output === 'json' ? `${text.trimEnd()}\n` : processTree(JSON.parse(text) as Process));
    return 0;
  },
};
