#!/usr/bin/env -S node --max-semi-space-size=4 --fast-properties-soft-limit=64 --heap-growing-percent=50
/**
 * The execwatch command: parses the configuration, runs the agent (or --check), and shuts down
 * cleanly on SIGINT/SIGTERM. Everything else lives in agent.ts.
 *
 * Node's flags live in the shebang above, their one place: a 4 MiB young generation (a burst of
 * execs otherwise grows the resident set by ~25 MB), and up to 64 properties added by keyed store
 * before an object turns into a hash table (V8's default is 12). The OpenTelemetry SDK copies each
 * log record's ~25 attributes into a fresh object by key, and every later pass over a
 * dictionary-mode object (its own validation, the protobuf serializer's two) sorts its keys
 * again: with export on, that was a third of the export's CPU. And the old generation grows by
 * half of what survives each full collection: left to V8 it grew to ~2.7 times the live set, and
 * a storm's resident set to 237 MB instead of 150 (README, Performance).
 */
import { loadNativeBinding } from './capture/native.js';
import { describePrivileges, dropPrivileges } from './capture/privileges.js';
import { packageVersion } from './package.js';
import { parseConfig } from './config/parse.js';
import { refuseUnauthenticatedExposure } from './http/exposure.js';
import { asStartupError } from './startup-error.js';
import { openTracer, startAgent } from './agent.js';

/** Longest a shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 5000;

function fail(lines: readonly string[], code: number): never {
  for (const line of lines) process.stderr.write(`execwatch: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  const version = packageVersion();
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`execwatch ${parsed.version}\n`);
    return;
  }
  const { config } = parsed;
  refuseUnauthenticatedExposure(config);
  const deps = { binding: loadNativeBinding(), stdout: process.stdout, version };

  if (config.check) {
    const { tracer, attached, notes } = await openTracer(config, deps, () => {});
    tracer.close();
    process.stdout.write(
      [...notes, `ok: ${attached.length} programs attached and detached: ${attached.join(', ')}`].map((l) => `${l}\n`).join(''),
    );
    return;
  }

  const agent = await startAgent(config, deps);
  // Attached, ring open, listening: nothing left needs a capability or uid 0. A failed drop ends
  // the process, and its exit closes every descriptor, so the programs go with it.
  const privileges = config.keepCapabilities
    ? '--keep-capabilities: every capability and uid 0 are kept'
    : describePrivileges(dropPrivileges(deps.binding, config.runAs, { readLater: agent.readLater }));
  const startLines = [
    ...agent.notes,
    privileges,
    `capturing execs on ${config.nodeName} (${agent.attached.length} programs attached)`,
    `metrics   ${agent.metricsUrl}/metrics`,
    `events    ${agent.apiUrl}/  (API ${agent.apiUrl}/api/events)`,
  ];
  process.stderr.write(startLines.map((line) => `execwatch: ${line}\n`).join(''));
  const stop = (signal: string) => {
    process.stderr.write(`execwatch: ${signal}: detaching\n`);
    setTimeout(() => fail([`shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms`], 1), SHUTDOWN_TIMEOUT_MS).unref();
    agent.close().then(
      // Every event the agent had read is in the --log-events output before it exits: writes to
      // a pipe can still be queued, and the callback of an empty write runs after them.
      () => process.stdout.write('', () => process.exit(0)),
      (err: unknown) => fail([`shutdown failed: ${String(err)}`], 1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

// Whatever stopped start-up, one line per problem: a configuration error exits 2, anything else
// (unmet requirements, a load error with its errno code) exits 1.
main().catch((err: unknown) => {
  const { problems, exitCode } = asStartupError(err);
  fail(problems, exitCode);
});
