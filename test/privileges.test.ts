// A compromised agent must not be host root (issue 13, item 1): once attached, every thread runs
// as --run-as (65534:65534 by default) with no group, no capability and no_new_privs. The TS side on
// fake /proc trees, then the execwatch command on the real kernel, looked at from outside and
// attacked from inside (test/fixtures/compromise.ts, injected with --import).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { capabilityNames, parseCapabilityField } from '../src/capture/capabilities.js';
import { describePrivileges, dropPrivileges, threadCredentials } from '../src/capture/privileges.js';
import { StartupError } from '../src/startup-error.js';
import { commandLine, loggedEvents, startCommand, watchStartup, type RunningAgent } from './helpers/command.js';
import { chartDir, renderChart } from './helpers/helm.js';
import { bpfProgIds, ensureTracefs, kernelTest, marker, stillLoaded, repoRoot, waitFor } from './helpers/kernel.js';

const ALL = 0x1ffffffffffn;
const hex = (mask: bigint) => mask.toString(16).padStart(16, '0');

/** A thread's status file as the kernel writes it, with the lines privileges.ts reads. */
function status(o: { name?: string; uid?: number; gid?: number; groups?: number[]; caps?: bigint; nnp?: boolean }): string {
  const ids = (id: number) => `${id}\t${id}\t${id}\t${id}`;
  return [
    `Name:\t${o.name ?? 'node'}`,
    `Uid:\t${ids(o.uid ?? 0)}`,
    `Gid:\t${ids(o.gid ?? 0)}`,
    `Groups:\t${(o.groups ?? []).join(' ')} `,
    `CapPrm:\t${hex(o.caps ?? 0n)}`,
    `CapEff:\t${hex(o.caps ?? 0n)}`,
    `NoNewPrivs:\t${o.nnp === false ? 0 : 1}`,
    '',
  ].join('\n');
}

function fakeProc(t: Test, threads: Record<string, string>): string {
  return t.testdir({ proc: { self: { task: Object.fromEntries(Object.entries(threads).map(([tid, text]) => [tid, { status: text }])) } } });
}

t.test('threadCredentials reads ids, groups, capabilities and no_new_privs of every thread', async (t) => {
  const root = fakeProc(t, {
    '10': status({ uid: 0, gid: 0, groups: [0, 27], caps: ALL, nnp: false }),
    '11': status({ name: 'libuv-worker', uid: 65534, gid: 100 }),
  });
  const threads = threadCredentials('self', root).sort((a, b) => a.tid - b.tid);
  t.same(threads, [
    { tid: 10, name: 'node', uids: [0, 0, 0, 0], gids: [0, 0, 0, 0], groups: [0, 27], effective: ALL, permitted: ALL, noNewPrivs: false },
    { tid: 11, name: 'libuv-worker', uids: [65534, 65534, 65534, 65534], gids: [100, 100, 100, 100], groups: [], effective: 0n, permitted: 0n, noNewPrivs: true },
  ], 'one entry per thread, every field parsed');
  const ended = t.testdir({ proc: { self: { task: { '10': { status: status({}).replace(/^Name:.*\n/m, '') }, '11': {} } } } });
  t.same(threadCredentials('self', ended).map((th) => [th.tid, th.name]), [[10, '']], 'a thread that ended after the listing is skipped; a missing name is empty');
  t.throws(() => threadCredentials('self', fakeProc(t, { '10': 'Name:\tnode\nCapEff:\t0\n' })), /no Uid line/, 'a status without a Uid line is an error');
  t.throws(() => threadCredentials('self', fakeProc(t, { '10': status({}).replace(/^CapPrm.*\n/m, '') })), /no CapPrm line/, 'nor without CapPrm');
  const real = threadCredentials();
  t.ok(real.some((th) => th.tid === process.pid && th.uids.length === 4), 'the real /proc has four uids per thread');
});

/** What `fn` throws, as the StartupError it must be. */
function thrown(fn: () => unknown): StartupError {
  try {
    fn();
  } catch (err) {
    return err as StartupError;
  }
  throw new Error('expected a throw');
}

t.test('describePrivileges words what a process without capabilities or CAP_SETPCAP gave up', async (t) => {
  const line = describePrivileges({ capabilities: { threads: 3, dropped: [], kept: [], boundingSetCleared: false }, user: { uid: 1000, gid: 1000 }, threads: 3 });
  t.equal(line, 'all 3 threads now run as uid 1000 gid 1000, no supplementary groups; no capabilities held; bounding set left as is (no CAP_SETPCAP); no_new_privs set', 'says so');
});

t.test('dropPrivileges', async (t) => {
  /**
   * A binding that rewrites the fake status files as the kernel would: the capability drop keeps
   * `keep`, the switch sets the ids and clears what the kernel clears. `stubborn` keeps uid 0.
   */
  function fake(root: string, opts: { refuse?: boolean; stubborn?: string; noNewPrivsRefused?: boolean } = {}) {
    const calls: string[] = [];
    const rewrite = (fields: Parameters<typeof status>[0]) => {
      for (const tid of ['10', '11']) {
        if (tid === opts.stubborn && fields.uid !== undefined) continue;
        writeFileSync(join(root, 'proc', 'self', 'task', tid, 'status'), status({ ...current, ...fields }));
      }
      Object.assign(current, fields);
    };
    const current: Parameters<typeof status>[0] = { uid: 0, gid: 0, groups: [0], caps: ALL, nnp: false };
    for (const tid of ['10', '11']) writeFileSync(join(root, 'proc', 'self', 'task', tid, 'status'), status(current));
    const binding = {
      dropCapabilities: (keep: bigint) => {
        calls.push(`drop ${keep}`);
        rewrite({ caps: ALL & keep, nnp: !opts.noNewPrivsRefused });
        return { threads: 2, boundingSetCleared: true };
      },
      switchUser: (uid: number, gid: number) => {
        calls.push(`switch ${uid}:${gid}`);
        if (opts.refuse) throw Object.assign(new Error('clear supplementary groups: Operation not permitted'), { code: 'EPERM', errno: 1 });
        rewrite({ uid, gid, groups: [], caps: 0n });
      },
    };
    return { binding, calls };
  }
  const SETID = (1n << 6n) | (1n << 7n);

  t.test('keeps CAP_SETUID and CAP_SETGID for the switch, then checks every thread', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding, calls } = fake(root);
    const report = dropPrivileges(binding, { uid: 65534, gid: 65534 }, { root });
    t.same(calls, [`drop ${SETID}`, 'switch 65534:65534'], 'drops all but the two, then switches');
    t.same(report.user, { uid: 65534, gid: 65534 }, 'reports the user');
    t.equal(report.capabilities.dropped.length, 41, 'every capability held is reported dropped, the two included');
    t.same(report.capabilities.kept, [], 'none kept');
    t.match(describePrivileges(report), /^all 2 threads now run as uid 65534 gid 65534, no supplementary groups; 41 capabilities dropped \(CAP_CHOWN,.*CAP_SETGID,CAP_SETUID\); bounding set emptied; no_new_privs set$/, 'the start-up line');
  });

  t.test('--run-as 0 keeps the uid and drops every capability', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding, calls } = fake(root);
    const report = dropPrivileges(binding, { uid: 0, gid: 0 }, { root });
    t.same(calls, ['drop 0'], 'no switch');
    t.equal(report.user, null, 'no user reported');
    t.match(describePrivileges(report), /^all 2 threads now run as uid 0 kept \(--run-as 0\); 41 capabilities dropped/, 'the start-up line says so');
  });

  t.test('a refused switch is a start-up error naming --run-as', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding } = fake(root, { refuse: true });
    const err = thrown(() => dropPrivileges(binding, { uid: 1000, gid: 1000 }, { root }));
    t.type(err, StartupError, 'a StartupError');
    t.equal(err.exitCode, 1, 'exit 1');
    t.match(err.problems, [/^--run-as 1000:1000: cannot switch to that user \(clear supplementary groups: Operation not permitted, EPERM\): the agent needs CAP_SETUID and CAP_SETGID/], 'names the flag, the step and the fix');
  });

  t.test('a thread left behind is an error naming it', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding } = fake(root, { stubborn: '11' });
    t.throws(() => dropPrivileges(binding, { uid: 65534, gid: 65534 }, { root }), { code: 'ERR_PRIVILEGES_HELD', message: /thread 11 \(node\): uid 0 0 0 0, gid 0 0 0 0, groups 0, CAP_SETGID,CAP_SETUID$/ }, 'names the thread and what it still has');
  });

  t.test('a thread without no_new_privs is an error too', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding } = fake(root, { noNewPrivsRefused: true });
    t.throws(() => dropPrivileges(binding, { uid: 0, gid: 0 }, { root }), { code: 'ERR_PRIVILEGES_HELD', message: /thread 10 \(node\): no_new_privs unset; 11 \(node\): no_new_privs unset$/ }, 'names each thread');
  });

  t.test('a file read again later that the user cannot read is a start-up error naming it', async (t) => {
    const root = fakeProc(t, { '10': '', '11': '' });
    const { binding } = fake(root);
    const readable = join(root, 'proc', 'self', 'task', '10', 'status');
    const err = thrown(() => dropPrivileges(binding, { uid: 65534, gid: 65534 }, { root, readLater: [readable, join(root, 'gone')] }));
    t.equal(err.exitCode, 2, 'exit 2, as for a file a flag names');
    t.same(err.problems.length, 1, 'only the unreadable file');
    t.match(err.problems[0], `--run-as 65534:65534: ${join(root, 'gone')} is not readable as uid 65534 gid 65534 (ENOENT), and the agent reads it again later`, 'names the flag, the file and why');
  });
});

/** Uid, Gid, Groups, CapEff, CapPrm, CapBnd and NoNewPrivs of every thread of `pid`, from outside. */
function threadsOf(pid: number) {
  return threadCredentials(pid).map((th) => ({ ...th, effective: hex(th.effective), permitted: hex(th.permitted) }));
}

/** What test/fixtures/compromise.ts reports from an agent that switched to 65534:65534. */
const DENIED = {
  uid: 65534,
  sysctlMain: 'EACCES',
  sysctlPool: 'EACCES',
  secretPool: 'EACCES',
  blockDevice: 'EACCES',
  kprobeEvents: 'EACCES',
  signalInit: 'EPERM',
  loadBpf: 'EPERM',
  setuidEuid: '65534',
};

/** Sends SIGUSR2 to an agent started with the compromise module and returns what it reported. */
async function compromise(agent: RunningAgent): Promise<Record<string, unknown>> {
  agent.child.kill('SIGUSR2');
  await waitFor(() => agent.err().includes('execwatch-compromise '), 'the compromise report', 20_000);
  return JSON.parse((/execwatch-compromise (.*)\n/.exec(agent.err()) as RegExpExecArray)[1] as string) as Record<string, unknown>;
}

t.test('on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const dir = t.testdir({ secret: 'root only', 'token-600': 'sekrit\n' });
  chmodSync(join(dir, 'secret'), 0o600);
  chmodSync(join(dir, 'token-600'), 0o600);
  const setuidId = join(dir, 'id');
  copyFileSync('/usr/bin/id', setuidId);
  chmodSync(setuidId, 0o4755);
  // A root-owned block device, as a privileged container sees the host's.
  const device = readdirSync('/dev').map((name) => join('/dev', name)).find((path) => statSync(path).isBlockDevice() && statSync(path).uid === 0);
  t.ok(device, `a root-owned block device to try (${device})`);
  const env = { ...process.env, EXECWATCH_COMPROMISE_SECRET: join(dir, 'secret'), EXECWATCH_COMPROMISE_SETUID: setuidId, EXECWATCH_COMPROMISE_DEVICE: device };
  const inject = { nodeArgs: ['--import', join(repoRoot, 'test', 'fixtures', 'compromise.ts')], env };
  // The set-user-ID copy works: a process of uid 65534 without no_new_privs gets euid 0 from it.
  const plain = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', setuidId, '-u'], { encoding: 'utf8' });
  t.equal(plain.stdout.trim(), '0', 'the set-user-ID copy of id gives euid 0 to a process that may gain privileges');

  t.test('by default every thread runs as 65534:65534 with nothing left, and the agent still works', async (t) => {
    const agent = await startCommand(['--node-name', 'priv-test'], inject);
    t.teardown(() => agent.child.kill('SIGKILL'));
    t.match(agent.err(), /^execwatch: all \d+ threads now run as uid 65534 gid 65534, no supplementary groups; \d+ capabilities dropped \(CAP_CHOWN,.*\); bounding set emptied; no_new_privs set$/m, 'one start-up line says what was given up');
    const threads = threadsOf(agent.pid);
    t.comment(`${threads.length} threads: ${[...new Set(threads.map((th) => `uid ${th.uids.join(' ')} gid ${th.gids.join(' ')} groups [${th.groups.join(' ')}] CapEff ${th.effective} CapPrm ${th.permitted} NoNewPrivs ${Number(th.noNewPrivs)}`))].join('; ')}`);
    t.ok(threads.length >= 7, `Node's threads are all there (${threads.length}: ${threads.map((th) => th.name).join(',')})`);
    const off = threads.filter(
      (th) => th.uids.some((id) => id !== 65534) || th.gids.some((id) => id !== 65534) || th.groups.length > 0 ||
        th.effective !== hex(0n) || th.permitted !== hex(0n) || !th.noNewPrivs,
    );
    t.same(off, [], 'Uid and Gid 65534 in all four fields, Groups empty, CapEff and CapPrm 0, NoNewPrivs 1 on every thread');

    t.same(await compromise(agent), DENIED, 'from inside: no sysctl write (main thread or pool), no root file or device, no tracefs, no signal to init, no BPF, no root from a set-user-ID binary');

    const m = marker('priv');
    spawnSync('/usr/bin/true', [m]);
    await waitFor(() => agent.out().includes(m), 'the exec in --log-events');
    t.same(loggedEvents(agent.out(), m)[0]?.argv, ['/usr/bin/true', m], 'execs are still captured');
    const api = (await (await fetch(`${agent.apiUrl}/api/events?q=${m}&filename=/usr/bin/true`)).json()) as { events: unknown[] };
    t.equal(api.events.length, 1, 'the events API still serves them');
    t.equal((await fetch(`${agent.apiUrl}/`)).status, 200, 'the browse page still serves');
    const metrics = await (await fetch(agent.metricsUrl)).text();
    t.match(metrics, /^execwatch_events_lost_total\{stage="ringbuf_full"\} 0$/m, 'the kernel loss counters are read (from their mapping)');
    const kernelEvents = Number(/^execwatch_kernel_events_total (\d+)$/m.exec(metrics)?.[1]);
    t.ok(kernelEvents >= 1, `execwatch_kernel_events_total counts the kernel's events (${kernelEvents})`);
    t.match(metrics, /^process_open_fds \d+$/m, "the process metrics still read the agent's own /proc");

    const progs = bpfProgIds(agent.pid);
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'SIGTERM: exit 0');
    t.same(await stillLoaded(progs), [], 'every program is detached and unloaded without privileges');
  });

  t.test('--run-as 0 keeps uid 0: capabilities go, but owner bits still let root in', async (t) => {
    const agent = await startCommand(['--run-as', '0'], inject);
    t.teardown(() => agent.child.kill('SIGKILL'));
    t.match(agent.err(), /all \d+ threads now run as uid 0 kept \(--run-as 0\)/, 'the start-up line says so');
    t.same(threadsOf(agent.pid).filter((th) => th.uids.some((id) => id !== 0) || th.effective !== hex(0n) || !th.noNewPrivs), [], 'uid 0, CapEff 0, NoNewPrivs 1 on every thread');
    const tried = await compromise(agent);
    t.match(
      tried,
      // kprobe_events: tracefs refuses root without capabilities (EACCES), where a host has not
      // mounted it read-only already (EROFS: the PVM hosts of 2026-12-07).
      { uid: 0, sysctlMain: 'ok', sysctlPool: 'ok', secretPool: 'ok', blockDevice: 'ok', kprobeEvents: /^(EACCES|EROFS)$/, signalInit: 'ok', loadBpf: 'EPERM', setuidEuid: '0' },
      "what the switch prevents: without any capability, root still writes sysctls, opens root's files and devices, signals init (not kprobe_events)",
    );
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'exit 0');
  });

  t.test("the chart's least-privilege capabilities are enough, and without SETUID/SETGID it says why it stops", async (t) => {
    const daemonset = renderChart([join(chartDir, 'ci', 'least-privilege-values.yaml')]).find((o) => o.kind === 'DaemonSet') as unknown as {
      spec: { template: { spec: { containers: { securityContext: { capabilities: { add: string[] } } }[] } } };
    };
    const caps = (daemonset.spec.template.spec.containers[0]?.securityContext.capabilities.add ?? []).map((c) => c.toLowerCase());
    t.ok(caps.includes('bpf') && !caps.includes('dac_read_search'), `the chart adds ${caps.join(', ')}`);
    // As the kubelet runs the container: uid 0, this bounding set, no_new_privs (allowPrivilegeEscalation: false).
    const setpriv = (set: string[]) => ['setpriv', `--bounding-set=-all,${set.map((c) => `+${c}`).join(',')}`, '--inh-caps=-all', '--no-new-privs'];
    const agent = await startCommand([], { ...inject, wrapper: setpriv(caps) });
    t.teardown(() => agent.child.kill('SIGKILL'));
    t.same(threadsOf(agent.pid).filter((th) => th.uids.some((id) => id !== 65534) || th.effective !== hex(0n) || !th.noNewPrivs), [], 'every thread switched, no capability left, no_new_privs');
    const bounding = new Set(readdirSync(`/proc/${agent.pid}/task`).map((tid) => parseCapabilityField(readFileSync(`/proc/${agent.pid}/task/${tid}/status`, 'utf8'), 'CapBnd')));
    // What this process may hand down: the machine running the tests may lack some (CAP_SYS_RESOURCE
    // here; it is only needed before Linux 5.11).
    const ours = capabilityNames(parseCapabilityField(readFileSync('/proc/self/status', 'utf8'), 'CapBnd') ?? 0n).map((c) => c.slice(4).toLowerCase());
    t.same(
      [...bounding].map((mask) => capabilityNames(mask ?? 0n).map((c) => c.slice(4).toLowerCase()).sort()),
      [caps.filter((c) => ours.includes(c)).sort()],
      `the bounding set stays the chart's (no CAP_SETPCAP to empty it; no_new_privs makes it moot)${caps.every((c) => ours.includes(c)) ? '' : `; this machine has no ${caps.filter((c) => !ours.includes(c)).join(', ')}`}`,
    );
    t.same(await compromise(agent), DENIED, 'from inside: denied as in the privileged mode');
    const m = marker('least');
    spawnSync('/usr/bin/true', [m]);
    await waitFor(() => agent.out().includes(m), 'the exec in --log-events');
    t.pass('execs are captured');
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'exit 0');

    const [file, ...args] = commandLine([], { wrapper: setpriv(caps.filter((c) => c !== 'setuid' && c !== 'setgid')) }) as [string, ...string[]];
    const r = spawnSync(file, args, { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 1, 'without SETUID and SETGID: exit 1');
    t.match(r.stderr, /^execwatch: --run-as 65534:65534: cannot switch to that user \(clear supplementary groups: Operation not permitted, EPERM\)/m, 'naming --run-as and the fix');
  });

  t.test('a file it reads again later and could not read after the switch stops it at start', async (t) => {
    const [file, ...args] = commandLine(['--api-token-file', join(dir, 'token-600')]) as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const err = await watchStartup(child).then(
      (agent) => {
        agent.child.kill('SIGKILL');
        return 'started';
      },
      (e: Error) => e.message,
    );
    t.match(err, `--run-as 65534:65534: ${join(dir, 'token-600')} is not readable as uid 65534 gid 65534 (EACCES), and the agent reads it again later`, 'names the flag, the file and the fix');
    t.equal(child.exitCode, 2, 'exit 2');
  });

  t.test('--keep-capabilities keeps uid 0 and every capability', async (t) => {
    const ours = hex(threadCredentials('self')[0]?.effective as bigint);
    const agent = await startCommand(['--keep-capabilities']);
    t.teardown(() => agent.child.kill('SIGKILL'));
    t.match(agent.err(), /execwatch: --keep-capabilities: every capability and uid 0 are kept\n/, 'the start-up line says so');
    t.same(threadsOf(agent.pid).filter((th) => th.effective !== ours || th.uids.some((id) => id !== 0)), [], `every thread keeps uid 0 and CapEff ${ours}`);
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'exit 0');
  });
});
