// The execwatch command as a user runs it: flags, errors, --check, --log-events and shutdown.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import type { ExecEvent } from '../src/events/schema.js';
import { startCommand } from './helpers/command.js';
import { bpfProgIds, ensureTracefs, kernelTest, marker, refuses32Bit, stillLoaded, repoRoot, waitFor } from './helpers/kernel.js';

const main = join(repoRoot, 'src', 'main.ts');
const node = (args: string[], opts: SpawnSyncOptions = {}) =>
  spawnSync(process.execPath, [...process.execArgv, main, ...args], { encoding: 'utf8', timeout: 60_000, ...opts });

t.test('--help lists every flag and exits 0', async (t) => {
  const r = node(['--help']);
  t.equal(r.status, 0, 'exit 0');
  for (const flag of ['--metrics-address', '--api-address', '--argv-max-bytes', '--log-events', '--check', '--redact']) {
    t.match(r.stdout, flag, `mentions ${flag}`);
  }
});

t.test('--version prints the package version', async (t) => {
  const r = node(['--version']);
  t.equal(r.status, 0, 'exit 0');
  t.match(r.stdout, /^execwatch \d+\.\d+\.\d+/, 'version line');
});

t.test('a bad flag stops the agent with one line naming it', async (t) => {
  const cases = [
    { args: ['--argv-max-bytes', '99999'], names: '--argv-max-bytes' },
    { args: ['--no-such-flag'], names: '--no-such-flag' },
    { args: ['--redact', '('], names: '--redact: "(" is not a valid regular expression' },
    { args: ['--log-events=maybe'], names: '--log-events: "maybe" is not a boolean' },
    { args: ['--log-level'], names: '--log-level: a value is missing' },
    { args: ['serve'], names: 'unexpected argument "serve"' },
    { args: ['--api-address', '0.0.0.0:0'], names: /--api-address 0\.0\.0\.0:0 is beyond loopback.*--api-token-file.*--api-insecure/ },
    { args: ['--api-token-file', '/nonexistent/execwatch-token'], names: '--api-token-file: "/nonexistent/execwatch-token" cannot be read (ENOENT)' },
  ] as const;
  for (const c of cases) {
    const r = node([...c.args]);
    t.equal(r.status, 2, `${c.args.join(' ')}: exit 2`);
    const lines = String(r.stderr).trim().split('\n');
    t.equal(lines.length, 1, `${c.args.join(' ')}: one line`);
    t.match(lines[0], c.names, `${c.args.join(' ')}: names the flag`);
  }
});

t.test(
  '--check as an unprivileged user says what is missing and exits 1',
  process.getuid?.() === 0 ? {} : { skip: 'needs root to switch to an unprivileged user' },
  async (t) => {
    // The built command (npm test's set-up builds dist/) in an empty environment: tap instruments
    // every child it sees spawned (NODE_OPTIONS), and an unprivileged child could not write tap's
    // root-owned files; `env -i` starts node without any of that.
    const r = spawnSync('/usr/bin/env', ['-i', 'HOME=/tmp', 'PATH=/usr/bin:/bin', process.execPath, join(repoRoot, 'dist', 'main.js'), '--check'], {
      encoding: 'utf8',
      timeout: 60_000,
      uid: 65534,
      gid: 65534,
    });
    t.equal(r.status, 1, 'exit 1');
    const lines = String(r.stderr).trim().split('\n');
    t.equal(lines.length, 1, `one line: ${r.stderr}`);
    t.match(lines[0], /^execwatch: missing privileges: .*CAP_BPF/, 'names the missing capability');
  },
);

t.test(
  'a bad kubeconfig exits 2 before the kernel is looked at, even without privileges',
  process.getuid?.() === 0 ? {} : { skip: 'needs root to switch to an unprivileged user' },
  async (t) => {
    // As the --check test above: the built command, an unprivileged user, an empty environment.
    // Were the kernel requirements checked first, it would exit 1 naming the missing capabilities.
    const run = (args: string[], env: string[] = []) => spawnSync(
      '/usr/bin/env',
      ['-i', 'HOME=/tmp', 'PATH=/usr/bin:/bin', ...env, process.execPath, join(repoRoot, 'dist', 'main.js'), ...args],
      { encoding: 'utf8', timeout: 60_000, uid: 65534, gid: 65534 },
    );
    const cases = [
      { what: '--kubeconfig', r: run(['--kubeconfig', '/nonexistent/kubeconfig']) },
      { what: 'KUBECONFIG, its first entry', r: run([], ['KUBECONFIG=/nonexistent/kubeconfig:/other']) },
    ];
    for (const { what, r } of cases) {
      t.equal(r.status, 2, `${what}: exit 2`);
      t.equal(
        r.stderr,
        `execwatch: --kubeconfig: "/nonexistent/kubeconfig" cannot be loaded (ENOENT: no such file or directory, open '/nonexistent/kubeconfig')\n`,
        `${what}: one line naming the flag and the file, nothing about privileges or programs`,
      );
      t.equal(r.stdout, '', `${what}: nothing on stdout`);
    }
  },
);

t.test('the agent on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();

  t.test('--check attaches, reports and exits 0', async (t) => {
    const r = node(['--check']);
    t.equal(r.status, 0, `exit 0 (${r.stderr})`);
    t.match(r.stdout, /(?:7|9|11) programs attached and detached: .*handle_exec/, 'lists the programs');
    // Where the kernel runs no 32-bit code (ia32 off at run time: this PVM host) nothing is attached
    // for 32-bit execs; elsewhere one of the two paths.
    const refused = refuses32Bit();
    t.match(
      r.stdout,
      refused === null ? /^32-bit execs: (?:raw syscall tracepoints, run for every syscall|fentry\/fexit on the compat entry points)/m : /^32-bit execs: not followed \(this kernel runs no 32-bit code/m,
      `says which path follows 32-bit execs (${refused ?? 'this kernel runs 32-bit binaries'})`,
    );
  });

  t.test('a BPF object that cannot be opened stops start-up with the path and errno code', async (t) => {
    const r = node(['--check', '--bpf-object', '/nonexistent/execwatch.bpf.o']);
    t.equal(r.status, 1, 'exit 1');
    const lines = String(r.stderr).trim().split('\n');
    t.equal(lines.length, 1, `one line: ${r.stderr}`);
    t.match(lines[0], /^execwatch: .*\/nonexistent\/execwatch\.bpf\.o.*\(ENOENT\)$/, 'names the file and the error code');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    t.test(`--log-events prints execs; ${signal} detaches everything`, async (t) => {
      const { child, pid, out, err, exited } = await startCommand(['--node-name', 'cli-test']);
      t.match(err(), /metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics/, 'prints the metrics URL');
      const progs = bpfProgIds(pid);
      t.ok(progs.length >= 5, `the agent holds its programs (${progs.join(',')})`);

      const m = marker('cli');
      spawnSync('/usr/bin/true', [m]);
      await waitFor(() => out().includes(m), 'the JSON line of our exec');
      const line = out().split('\n').find((l) => l.includes(m)) as string;
      const event = JSON.parse(line) as ExecEvent;
      t.same(event.argv, ['/usr/bin/true', m], 'one JSON ExecEvent per exec');
      t.equal(event.node, 'cli-test', 'node name from the flag');

      const t0 = Date.now();
      child.kill(signal);
      t.equal(await exited, 0, `${signal}: exit 0`);
      t.ok(Date.now() - t0 < 2000, `detached within 2 s (${Date.now() - t0} ms)`);
      t.same(await stillLoaded(progs), [], 'no program of ours is left loaded');
    });
  }
});
