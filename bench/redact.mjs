#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * Redaction against argv built to make it backtrack: how long one event takes, through the
 * agent's own code from dist/ (the --redact compiler of src/config/values.ts and the redactor the
 * pipeline calls, src/events/redact.ts).
 *
 *   node bench/redact.mjs [--json]
 *
 * - --redact patterns with nested or overlapping quantifiers, each over one event whose argv holds
 *   a 100 KB argument that almost matches (on V8's usual backtracking engine each would run for
 *   longer than the universe has existed);
 * - the built-in rules (src/events/secrets.ts, which run on the usual engine, written to stay
 *   linear) over 100 KB arguments shaped against each of them.
 * Prints the slowest of each and exits 1 when one is over the target (bench/lib/targets.mjs).
 * bench/run.mjs runs it as a scenario.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS } from './lib/targets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(join(root, 'dist', 'events', 'redact.js'))) {
  process.stderr.write('redact: dist/ missing: run npm run build:ts\n');
  process.exit(1);
}
const { regex } = await import(join(root, 'dist/config/values.js'));
const { createRedactor } = await import(join(root, 'dist/events/redact.js'));

/** Argument sizes: the default --argv-max-bytes, and 100 KB (more than the kernel hands over). */
const SIZES = [4096, 100_000];

/** `unit` repeated to n characters. */
const fill = (unit, n) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

/** Hostile --redact patterns and the argument of n bytes that makes each backtrack. */
const PATTERNS = [
  ['(a+)+$', (n) => `${fill('a', n - 1)}b`],
  ['(a|aa)*c', (n) => fill('a', n)],
  ['(x+x+)+y', (n) => fill('x', n)],
  ['(.*a){12}', (n) => fill('a', n)],
  ['^(\\w+\\s?)*$', (n) => `${fill('word ', n - 1)}!`],
];

/** Arguments shaped against each built-in rule (the same shapes test/secrets.test.ts runs). */
const AGAINST_RULES = [
  ['secret names', (n) => fill('token', n)],
  ['a name and white space', (n) => `token=${fill(' ', n - 6)}`],
  ['Authorization and white space', (n) => `Authorization:${fill(' ', n - 15)}x`],
  ['a URL without its @', (n) => `://${fill(':', n - 3)}`],
  ['a PEM header that never ends', (n) => `-----BEGIN ${fill('A', n - 11)}`],
  ['a PEM body of END lines', (n) => `-----BEGIN PRIVATE KEY-----${fill('-----END ', n - 27)}`],
  ['mysql named many times', (n) => `${fill('mysql ', n - 2)}-p`],
  ['an option name that almost ends in one', (n) => `--x${fill('-', n - 10)}passwor`],
  ['quoted values that never close', (n) => `password="${fill('a', n - 10)}`],
];

/**
 * CPU milliseconds one event takes through the redactor, the best of 3 (the first compiles). CPU
 * time, not wall-clock: the figure is the work, whatever else the host runs.
 */
function timed(redact, arg) {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const event = { argv: ['sh', '-c', arg, '--password', 'x'] };
    const t0 = process.cpuUsage();
    redact(event);
    const { user, system } = process.cpuUsage(t0);
    best = Math.min(best, (user + system) / 1000);
  }
  return best;
}

/** Each case's milliseconds per event at each size. */
const measure = (cases, redactorOf) =>
  cases.map(([name, argOf]) => ({ name, ms: SIZES.map((n) => timed(redactorOf(name), argOf(n))) }));
const patterns = measure(PATTERNS, (source) => createRedactor(regex(source), false));
const rules = measure(AGAINST_RULES, () => createRedactor([], true));
/** The slowest case at 100 KB. */
const slowest = (xs) => xs.reduce((a, b) => (b.ms[1] > a.ms[1] ? b : a));
const result = {
  sizes: SIZES,
  patterns,
  rules,
  slowestPattern: slowest(patterns),
  slowestRule: slowest(rules),
  node: process.version,
};
result.pass = TARGETS.redact.ok(result.slowestPattern.ms[1]) && TARGETS.redact.ok(result.slowestRule.ms[1]);

if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  const row = (what, ms) => `${what.padEnd(56)} ${ms.map((v) => v.toFixed(2).padStart(9)).join(' ')}\n`;
  process.stdout.write(row(`CPU ms per event, ${process.version}, argument of`, SIZES).replace(/\.00/g, ' B '));
  for (const { name, ms } of patterns) process.stdout.write(row(`--redact ${name}`, ms));
  for (const { name, ms } of rules) process.stdout.write(row(`built-in rules: ${name}`, ms));
  process.stdout.write(`target ${TARGETS.redact.text}: ${result.pass ? 'PASS' : 'FAIL'}\n`);
}
if (!result.pass) process.exitCode = 1;
