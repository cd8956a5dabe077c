// The production layout the Dockerfile builds, re-created from the Dockerfile outside this
// checkout: the builder's COPYs, `npm run build` and a real `npm prune --omit=dev`, then only what
// the runtime stage copies. From there the agent's `--check` attaches on the real kernel, and the
// agent serves its metrics and browse page.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import t from 'tap';
import { watchStartup } from './helpers/command.js';
import { buildImageLayout, type ImageLayout } from './helpers/layout.js';
import { kernelTest, repoRoot } from './helpers/kernel.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let layout: ImageLayout | null = null;
function image(): ImageLayout {
  layout ??= buildImageLayout('pruned');
  return layout;
}
t.teardown(() => layout?.remove());

/** The environment of the container: PATH from the base image and the image's ENV (NODE_ENV=production). */
const imageEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, ...image().stage.env });

t.test('the layout holds production dependencies only, and only what the runtime stage copies', async (t) => {
  const { workdir, steps, stage } = image();
  t.ok(steps.some((s) => /^npm prune --omit=dev: run for real/.test(s)), `npm prune --omit=dev ran: ${steps.join('; ')}`);
  t.equal(stage.env.NODE_ENV, 'production', 'the image sets NODE_ENV=production');

  // Top-level names of the COPY destinations: the first part of the destination under WORKDIR,
  // or the file's own name for a copy into WORKDIR itself.
  const copied = new Set(stage.copies.flatMap((c) => {
    const under = relative(stage.workdir, c.dest);
    return under === '' ? c.sources.map((s) => basename(s)) : [under.split('/')[0] as string];
  }));
  t.same(readdirSync(workdir).sort(), [...copied].sort(), `the image's ${stage.workdir} holds what the runtime stage copies, nothing else`);
  t.ok(existsSync(join(workdir, 'dist', 'main.js')), 'dist/main.js, the entry point, is compiled');
  t.notOk(readdirSync(join(workdir, 'src')).some((f) => f.endsWith('.ts')), 'no TypeScript source in the image');

  const modules = join(workdir, 'node_modules');
  for (const dep of Object.keys(pkg.dependencies)) t.ok(existsSync(join(modules, dep, 'package.json')), `dependency ${dep} is installed`);
  for (const dev of ['tap', 'typescript', 'playwright-core']) {
    t.ok(dev in pkg.devDependencies, `${dev} is a devDependency`);
    t.notOk(existsSync(join(modules, dev)), `devDependency ${dev} is pruned`);
  }
  // npm's record of the tree it left: nothing in it is there for development only.
  const hidden = JSON.parse(readFileSync(join(modules, '.package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const dev = Object.entries(hidden.packages).filter(([, p]) => p.dev === true).map(([path]) => path);
  t.same(dev, [], 'no package marked dev remains in node_modules/.package-lock.json');
});

t.test('from the layout, --check attaches every program on the real kernel', kernelTest(), async (t) => {
  const { entrypoint, workdir } = image();
  const r = spawnSync(entrypoint.file, [...entrypoint.args, '--check'], { cwd: workdir, env: imageEnv(), encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `exit 0: ${r.stderr}`);
  t.match(r.stdout, /^ok: (?:7|9|11) programs attached and detached: /m, 'ok: the core programs and one 32-bit exec path attached');
});

t.test('from the layout, the agent serves metrics and the browse page', kernelTest(), async (t) => {
  const { entrypoint, workdir } = image();
  const agent = await watchStartup(
    spawn(entrypoint.file, [...entrypoint.args, '--metrics-address=127.0.0.1:0', '--api-address=127.0.0.1:0', '--node-name=layout-node'], {
      cwd: workdir,
      env: imageEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  t.teardown(() => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
  });
  const { metricsUrl, apiUrl } = agent;
  const metrics = await (await fetch(metricsUrl)).text();
  t.match(metrics, `execwatch_build_info{version="${pkg.version}",`, 'the version read from the layout package.json');
  t.match(metrics, /^execwatch_bpf_attached\{program="handle_exec"\} 1$/m, 'the programs are attached');
  const page = await fetch(`${apiUrl}/`);
  t.equal(page.status, 200, 'the browse page is served (its files are copied into the image)');
  t.match(page.headers.get('content-type') ?? '', /^text\/html/, 'as HTML');
  agent.child.kill('SIGTERM');
  t.equal(await agent.exited, 0, `SIGTERM stops it with exit 0: ${agent.err()}`);
});
