#!/usr/bin/env node
/**
 * kubectl-execwatch: `kubectl execwatch COMMAND`, one view of every node's agent through the API
 * server's port-forward. The command table is the one place a command is added; each command
 * parses its own flags and returns its exit status.
 */
import { packageVersion } from '../package.js';
import { ClusterError } from './cluster.js';
import { eventsCommand } from './events.js';
import { followCommand } from './follow.js';
import { UsageError } from './options.js';
import { processCommand } from './process.js';
import { uiCommand } from './ui.js';

/** Exit statuses: what a script can tell apart. */
export const EXIT = {
  ok: 0,
  /** Nothing could be asked: the cluster or the agents could not be reached at all. */
  error: 1,
  /** A flag or its value is wrong. */
  usage: 2,
  /** Some nodes answered, others did not (named on stderr): the results are partial. */
  partial: 3,
} as const;

/** One subcommand. */
export interface Command {
  summary: string;
  /** The command's --help text. */
  help: string;
  run(args: string[], io: CommandIo): Promise<number>;
}

/** Where a command writes, and how it learns to stop (Ctrl-C). */
export interface CommandIo {
  out: (text: string) => void;
  err: (line: string) => void;
  signal: AbortSignal;
}

export const COMMANDS: Record<string, Command> = {
  events: eventsCommand,
  follow: followCommand,
  process: processCommand,
  ui: uiCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return [
    'kubectl execwatch: recent and live execs of every node, from the execwatch agents, through the API server.',
    '',
    'Usage: kubectl execwatch COMMAND [flags]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "kubectl execwatch COMMAND --help" for its flags.',
    '',
  ].join('\n');
}

/** Runs the plugin with `argv` (without node and script); resolves to the exit status. */
export async function runPlugin(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    io.out(`kubectl-execwatch ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`unknown command "${name}": one of ${Object.keys(COMMANDS).join(', ')} (kubectl execwatch --help)`);
    return EXIT.usage;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(command.help);
    return EXIT.ok;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message} (kubectl execwatch ${name} --help)`);
      return EXIT.usage;
    }
    /* c8 ignore next -- anything else is a bug: its stack is what to report */
    if (!(err instanceof ClusterError)) throw err;
    io.err(err.message);
    return EXIT.error;
  }
}
