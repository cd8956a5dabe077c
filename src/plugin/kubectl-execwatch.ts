#!/usr/bin/env node
/**
 * The `kubectl-execwatch` executable (package.json `bin`): kubectl runs it for `kubectl execwatch`.
 * Ctrl-C stops a command cleanly; the exit status is the command's.
 */

/** The Node the package supports (package.json `engines`): the client library needs it. */
const NODE_MAJOR = 24;

const major = Number(process.versions.node.split('.')[0]);
/* c8 ignore next 4 -- the tests run on the project's Node 24 */
if (major < NODE_MAJOR) {
  process.stderr.write(`kubectl-execwatch: needs Node ${NODE_MAJOR} or newer; this is Node ${process.versions.node} (${process.execPath})\n`);
  process.exit(1);
}
const { runPlugin } = await import('./main.js');
const stop = new AbortController();
const abort = stop.abort.bind(stop);
process.once('SIGINT', abort);
process.once('SIGTERM', abort);

const status = await runPlugin(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (line) => process.stderr.write(`kubectl-execwatch: ${line}\n`),
  signal: stop.signal,
});
process.exitCode = status;
// Open port-forward sockets must not hold the process once the command is done.
process.stdout.write('', () => process.exit(status));
