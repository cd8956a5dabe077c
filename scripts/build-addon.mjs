#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * Builds native/build/Release/execwatch.node with the node-gyp that npm bundles: the node-gyp
 * published on the registry may need a newer Node than ours, so neither `npx node-gyp` nor a
 * node_modules/.bin copy is used. Quiet on success; on failure the captured output is printed
 * and the exit status is 1.
 *
 *   node scripts/build-addon.mjs [ADDON_DIR]     (default: native/)
 *
 * EXECWATCH_BUILD_VERBOSE=1 reports the build time on success.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = resolve(root, process.argv[2] ?? 'native');
const prefix = resolve(dirname(process.execPath), '..');

// npm sets npm_config_node_gyp for the scripts it runs; run directly, use the copy inside npm.
const nodeGyp =
  process.env.npm_config_node_gyp || join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// Under npm, nodedir comes from npmrc. Run directly, node-gyp would download headers that the
// running Node already ships under its prefix (and this machine has no route to nodejs.org).
const nodedir = process.env.npm_config_nodedir || prefix;

if (!existsSync(nodeGyp)) {
  process.stderr.write(`build-addon: npm's bundled node-gyp not found at ${nodeGyp}\n`);
  process.exit(1);
}

const started = process.hrtime.bigint();
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--directory', addonDir, `--nodedir=${nodedir}`], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
});
if (result.status !== 0) {
  process.stderr.write(result.stdout);
  process.stderr.write(result.stderr);
  const why = result.signal ? `killed by ${result.signal}` : `exit status ${result.status}`;
  process.stderr.write(`build-addon: node-gyp rebuild failed (${why})\n`);
  process.exit(1);
}
if (process.env.EXECWATCH_BUILD_VERBOSE === '1') {
  const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
  process.stderr.write(`build-addon: built ${join(addonDir, 'build', 'Release', 'execwatch.node')} in ${ms} ms\n`);
}
