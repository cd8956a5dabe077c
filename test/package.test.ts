// Where execwatch finds its own files, from src/ under tests and from dist/ in production.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot, packageVersion } from '../src/package.js';
import { repoRoot } from './helpers/kernel.js';

t.test('the package root is found by walking up to the package.json named execwatch', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'execwatch', version: '9.9.9' }),
    nested: { 'package.json': JSON.stringify({ name: 'other' }), deeper: { 'package.json': '{not json', dist: {} } },
  });
  t.equal(packageRoot(join(dir, 'nested', 'deeper', 'dist')), dir, 'skips other and broken package.json files');
  t.equal(packageRoot(), repoRoot.replace(/\/$/, ''), 'from this module, the repository');
  const outside = mkdtempSync(join(tmpdir(), 'execwatch-package-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  mkdirSync(join(outside, 'a'));
  writeFileSync(join(outside, 'package.json'), JSON.stringify(null));
  t.throws(() => packageRoot(join(outside, 'a')), /package root not found: no package.json named "execwatch" above/, 'says when there is none');
});

t.test('the version is the one in package.json', async (t) => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.equal(packageVersion(), pkg.version, 'version');
});
