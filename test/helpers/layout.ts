/**
 * The image's file system re-created in a directory, from the Dockerfile itself: the builder
 * stage's COPYs from the build context (minus .dockerignore) and RUN steps, then the runtime
 * stage's COPYs from the builder. No Docker engine runs here, so each RUN step is carried out by
 * a stand-in named below; a RUN step without one is an error, so a new Dockerfile step cannot
 * pass unnoticed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { readDockerfile, runtimeStage, type Stage } from './dockerfile.js';
import { repoRoot } from './helm.js';

/**
 * How the builder's `npm ci` is stood in for: `pruned` copies this checkout's node_modules
 * (installed from the same package-lock.json) and then really runs the Dockerfile's
 * `npm prune --omit=dev` on the copy; `linked` links this checkout's node_modules and leaves the
 * prune out (fast; for tests of the command line, not of the dependencies).
 */
export type Dependencies = 'pruned' | 'linked';

export interface ImageLayout {
  /** Stands for the runtime image's `/`. */
  root: string;
  /** The runtime stage's WORKDIR under `root`. */
  workdir: string;
  stage: Stage;
  /**
   * The image's ENTRYPOINT as a local command, image paths under `root`: dist/main.js run by its
   * shebang, so `node` is the first one on PATH, as in the image.
   */
  entrypoint: { file: string; args: string[] };
  /** What each RUN step was stood in for by, in order. */
  steps: string[];
  /** Deletes the whole temporary directory. */
  remove(): void;
}

/** .dockerignore's patterns (plain names, `dir/` and `*.ext`, which is all it uses). */
function dockerignore(): (path: string) => boolean {
  const patterns = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return (path) => patterns.some((p) => {
    if (p.startsWith('*.')) return path.endsWith(p.slice(1));
    const base = p.replace(/\/$/, '');
    return path === base || path.startsWith(`${base}/`);
  });
}

/**
 * COPY of `src` to `dest` with Docker's rules: a directory's contents into `dest`; a file into a
 * directory destination, or as the destination. A symbolic link (the linked node_modules) is
 * copied as a link to the same place.
 */
function copy(src: string, dest: string, destIsDir: boolean, filter?: (src: string) => boolean): void {
  if (!existsSync(src)) throw new Error(`COPY source ${src} does not exist`);
  const isDir = statSync(src).isDirectory();
  const target = isDir || !destIsDir ? dest : join(dest, basename(src));
  if (lstatSync(src).isSymbolicLink()) {
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(realpathSync(src), target);
    return;
  }
  mkdirSync(isDir ? target : dirname(target), { recursive: true });
  if (filter !== undefined) cpSync(src, target, { recursive: true, filter });
  // cp -a keeps node_modules' own links (.bin) as they are, and is much faster than cpSync.
  else execFileSync('cp', ['-a', isDir ? `${src}/.` : src, target]);
}

const npm = (cwd: string, args: string[]) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

/**
 * Builds the layout in a new directory under the system's temporary directory (`builder/` for
 * the builder's file system, `image/` for the runtime image's): outside this checkout, so that
 * nothing missing from the layout can be found by Node walking up into the checkout's
 * node_modules or package.json. TypeScript is compiled from this checkout's src/ (as the builder does); the
 * BPF object and the addon are this checkout's build outputs (`npm run build:bpf`/`build:addon`,
 * which scripts/setup.mjs has run), since rebuilding them needs the whole toolchain.
 */
export function buildImageLayout(dependencies: Dependencies): ImageLayout {
  const dir = mkdtempSync(join(tmpdir(), 'execwatch-layout-'));
  // The image's directories are world-readable (COPY makes them 0755): mkdtemp's 0700 would hide
  // the agent's own files from it once it has switched to its --run-as user.
  chmodSync(dir, 0o755);
  try {
    return build(dir, dependencies);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function build(dir: string, dependencies: Dependencies): ImageLayout {
  const stages = readDockerfile();
  const runtime = runtimeStage(stages);
  const builder = stages.find((s) => s.name === 'builder');
  if (!builder) throw new Error('Dockerfile: no stage named builder');
  const builderRoot = join(dir, 'builder');
  const root = join(dir, 'image');
  const inBuilder = (imagePath: string) => join(builderRoot, imagePath);
  const app = inBuilder(builder.workdir);
  const steps: string[] = [];
  const ignored = dockerignore();

  // The builder's COPYs and RUNs, in Dockerfile order.
  const contextFilter = (src: string) => !ignored(relative(repoRoot, src));
  for (const step of builder.steps) {
    if ('copy' in step) {
      const c = step.copy;
      if (c.from !== null) throw new Error(`builder COPY --from=${c.from} is not understood`);
      for (const s of c.sources) copy(join(repoRoot, s), inBuilder(c.dest), c.destIsDir, contextFilter);
      continue;
    }
    for (const command of step.run.split('&&').map((c) => c.trim())) {
      if (/^apt-get\b/.test(command) || /^rm -rf \/var\/lib\/apt\/lists\//.test(command)) {
        steps.push(`${command}: the host has these Debian packages`);
      } else if (/^npm ci\b/.test(command)) {
        if (dependencies === 'pruned') copy(join(repoRoot, 'node_modules'), join(app, 'node_modules'), true);
        else symlinkSync(join(repoRoot, 'node_modules'), join(app, 'node_modules'));
        steps.push(`${command}: ${dependencies === 'pruned' ? 'copied' : 'linked'} this checkout's node_modules (same package-lock.json)`);
      } else if (command === 'npm run build') {
        // build:bpf and build:addon outputs, then build:ts for real (tsc from the builder's
        // node_modules, and the executable bit the ENTRYPOINT needs).
        for (const out of ['build/execwatch.bpf.o', 'native/build/Release/execwatch.node']) copy(join(repoRoot, out), join(app, out), false);
        const ts = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: app, encoding: 'utf8' });
        if (ts.status !== 0) throw new Error(`npm run build: build:ts failed on this checkout's src/:\n${ts.stdout}${ts.stderr}`);
        steps.push(`${command}: this checkout's BPF object and addon, and npm run build:ts`);
      } else if (/^npm prune --omit=dev\b/.test(command)) {
        if (dependencies === 'pruned') {
          npm(app, [...command.split(/\s+/).slice(1), '--offline', '--no-audit', '--no-fund']);
          steps.push(`${command}: run for real (--offline)`);
        } else {
          steps.push(`${command}: left out (linked node_modules)`);
        }
      } else {
        throw new Error(`Dockerfile RUN step "${command}" has no stand-in in test/helpers/layout.ts`);
      }
    }
  }

  // The runtime stage: only what it copies from the builder.
  for (const c of runtime.copies) {
    if (c.from !== builder.name) throw new Error(`runtime COPY from ${c.from ?? 'the build context'} is not understood`);
    for (const s of c.sources) copy(inBuilder(s), join(root, c.dest), c.destIsDir);
  }
  steps.push(...runtime.runs.map((r) => `${r.split('&&')[0]?.trim()}: the host has these Debian packages`));

  const entry = runtime.entrypoint;
  if (entry === null || entry.length === 0) throw new Error('the runtime stage has no ENTRYPOINT');
  const local = (a: string) => (a.startsWith('/') ? join(root, a) : a);
  return {
    root,
    workdir: join(root, runtime.workdir),
    stage: runtime,
    entrypoint: { file: local(entry[0] as string), args: entry.slice(1).map(local) },
    steps,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
