// Least privilege (issue 7, item 4): once attached, every thread of the agent gives up every
// capability; --keep-capabilities opts out. The TS side on fake /proc trees, then the real addon
// in a child process, then the execwatch command looked at from outside.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  CAP_BPF,
  CAP_PERFMON,
  CAP_SYS_ADMIN,
  CAPABILITY_NAMES,
  capabilityNames,
  describeDrop,
  dropCapabilities,
  parseCapabilityField,
  threadCapabilities,
  type DropReport,
} from '../src/capture/capabilities.js';
import { defaultBpfObjectPath } from '../src/capture/native.js';
import { loggedEvents, startCommand } from './helpers/command.js';
import { bpfProgIds, ensureTracefs, kernelTest, marker, stillLoaded, repoRoot, waitFor } from './helpers/kernel.js';

const ALL = 0x1ffffffffffn;
const hex = (mask: bigint) => mask.toString(16).padStart(16, '0');
const status = (name: string, eff: bigint, prm: bigint, bnd: bigint) =>
  `${name ? `Name:\t${name}\n` : ''}Umask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t${hex(prm)}\nCapEff:\t${hex(eff)}\nCapBnd:\t${hex(bnd)}\nCapAmb:\t0000000000000000\n`;

t.test('capabilityNames names each bit, unknown ones by number', async (t) => {
  const cases = [
    { mask: 0n, names: [] },
    { mask: 1n << 39n, names: ['CAP_BPF'] },
    { mask: (1n << 38n) | (1n << 21n) | 1n, names: ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_PERFMON'] },
    { mask: (1n << 41n) | (1n << 40n), names: ['CAP_CHECKPOINT_RESTORE', 'CAP_41'] },
  ] as const;
  for (const c of cases) t.same(capabilityNames(c.mask), c.names, `0x${c.mask.toString(16)}`);
  t.equal(capabilityNames(ALL).length, 41, 'every capability of Linux 6.x has a name');
  t.same(
    [CAPABILITY_NAMES[CAP_SYS_ADMIN], CAPABILITY_NAMES[CAP_PERFMON], CAPABILITY_NAMES[CAP_BPF]],
    ['CAP_SYS_ADMIN', 'CAP_PERFMON', 'CAP_BPF'],
    'the named numbers agree with the table',
  );
});

t.test('parseCapabilityField reads a mask line in hex of either case', async (t) => {
  const text = 'Name:\tnode\nCapPrm:\t000001FFFFFFFFFF\nCapEff:\t000000c000000000\n';
  t.equal(parseCapabilityField(text, 'CapPrm'), ALL, 'upper-case hex');
  t.equal(parseCapabilityField(text, 'CapEff'), (1n << 39n) | (1n << 38n), 'lower-case hex');
  t.equal(parseCapabilityField(text, 'CapBnd'), null, 'null when the line is absent');
});

/** A fake /proc/self/task with these threads (tid → status text, or {} for one that ended). */
function fakeTasks(t: Test, threads: Record<string, string | Record<string, never>>): string {
  const task: Record<string, { status: string } | Record<string, never>> = {};
  for (const [tid, text] of Object.entries(threads)) task[tid] = typeof text === 'string' ? { status: text } : {};
  return t.testdir({ proc: { self: { task } } });
}

t.test('threadCapabilities reads every thread of /proc/PID/task', async (t) => {
  const root = fakeTasks(t, { '10': status('node', ALL, ALL, ALL), '11': status('libuv-worker', 0n, 0n, 0n), '12': {}, '13': status('', 0n, 0n, 0n) });
  const threads = threadCapabilities('self', root).sort((a, b) => a.tid - b.tid);
  t.same(
    threads,
    [
      { tid: 10, name: 'node', effective: ALL, permitted: ALL },
      { tid: 11, name: 'libuv-worker', effective: 0n, permitted: 0n },
      { tid: 13, name: '', effective: 0n, permitted: 0n },
    ],
    'one entry per thread; a thread gone since the listing is skipped; a missing name is empty',
  );
  const bad = fakeTasks(t, { '10': 'Name:\tnode\n' });
  t.throws(() => threadCapabilities('self', bad), /no CapEff line/, 'a status without capability lines is an error');
  t.ok(threadCapabilities().some((th) => th.tid === process.pid), 'the real /proc lists the main thread');
});

t.test('dropCapabilities', async (t) => {
  /** A binding whose drop rewrites the fake status files, as the kernel would, except for `stubborn`. */
  function fake(root: string, opts: { refuses: boolean; stubborn?: string }) {
    const calls: bigint[] = [];
    const binding = {
      bpfRefusesUnprivileged: () => opts.refuses,
      dropCapabilities: (keep: bigint) => {
        calls.push(keep);
        for (const tid of ['10', '11']) {
          if (tid === opts.stubborn) continue;
          const file = join(root, 'proc', 'self', 'task', tid, 'status');
          const old = readFileSync(file, 'utf8');
          writeFileSync(file, status(/^Name:\s*(.*)$/m.exec(old)?.[1] as string, ALL & keep, ALL & keep, 0n));
        }
        return { threads: 2, boundingSetCleared: true };
      },
    };
    return { binding, calls };
  }
  const threads = () => ({ '10': status('node', ALL, ALL, ALL), '11': status('libuv-worker', ALL, ALL, ALL) });

  t.test('drops everything where bpf(2) serves unprivileged callers', async (t) => {
    const root = fakeTasks(t, threads());
    const { binding, calls } = fake(root, { refuses: false });
    const report = dropCapabilities(binding, root);
    t.same(calls, [0n], 'asks the addon to keep nothing');
    t.same(report, { threads: 2, dropped: capabilityNames(ALL), kept: [], boundingSetCleared: true }, 'reports every capability dropped');
  });

  t.test('keeps CAP_BPF alone where the loss counters need it', async (t) => {
    const root = fakeTasks(t, threads());
    const { binding, calls } = fake(root, { refuses: true });
    const report = dropCapabilities(binding, root);
    t.same(calls, [1n << 39n], 'asks the addon to keep CAP_BPF');
    t.notOk(report.dropped.includes('CAP_BPF'), 'CAP_BPF is not reported dropped');
    t.equal(report.dropped.length, 40, 'every other one is');
    t.match(report.kept, [/^CAP_BPF \(.*loss counters/], 'says why CAP_BPF stays');
  });

  t.test('a thread still holding a capability afterwards is an error naming it', async (t) => {
    const root = fakeTasks(t, threads());
    const { binding } = fake(root, { refuses: false, stubborn: '11' });
    t.throws(() => dropCapabilities(binding, root), { code: 'ERR_CAPABILITIES_HELD', message: /thread 11 \(libuv-worker\): CAP_CHOWN,.*CAP_BPF/ }, 'names the thread and what it holds');
  });
});

t.test('describeDrop says what was dropped, kept and whether the bounding set went', async (t) => {
  const cases: { report: DropReport; line: RegExp }[] = [
    {
      report: { threads: 11, dropped: ['CAP_CHOWN', 'CAP_BPF'], kept: [], boundingSetCleared: true },
      line: /^dropped capabilities on all 11 threads: 2 \(CAP_CHOWN,CAP_BPF\); kept none; bounding set emptied$/,
    },
    {
      report: { threads: 3, dropped: [], kept: ['CAP_BPF (why)'], boundingSetCleared: false },
      line: /^dropped capabilities on all 3 threads: none \(none were held\); kept CAP_BPF \(why\); bounding set left as is \(no CAP_SETPCAP\)$/,
    },
  ];
  for (const c of cases) t.match(describeDrop(c.report), c.line, c.line.source);
});

/** CapEff, CapPrm, CapBnd and SigBlk of every thread of `pid`, read from outside. */
function capsOf(pid: number) {
  return threadCapabilities(pid).map((th) => {
    const text = readFileSync(`/proc/${pid}/task/${th.tid}/status`, 'utf8');
    return { ...th, bounding: parseCapabilityField(text, 'CapBnd'), sigBlk: /^SigBlk:\s*(\S+)$/m.exec(text)?.[1] };
  });
}

t.test('on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const ours = threadCapabilities('self')[0]?.effective as bigint;

  t.test('the addon drops every capability on every thread, the inspector watchdog included', async (t) => {
    // A file only its owner may read: root without CAP_DAC_OVERRIDE is refused.
    const dir = t.testdir({ secret: 'sekrit' });
    const secret = join(dir, 'secret');
    chownSync(secret, 65534, 65534);
    spawnSync('chmod', ['600', secret]);
    const child = spawn(process.execPath, [...process.execArgv, join(repoRoot, 'test', 'fixtures', 'drop-capabilities.ts'), secret, defaultBpfObjectPath()], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await waitFor(() => out.includes('\n'), 'the child to report', 30_000);
    const { before, after, report } = JSON.parse(out) as {
      before: Record<string, string>;
      after: Record<string, string>;
      report: DropReport;
    };
    const threads = capsOf(child.pid as number);
    child.stdin.end();
    await exited;

    t.same(before, { poolRead: 'ok', workerRead: 'ok' }, 'before: the libuv pool and a worker thread read a file of another user');
    t.same(after, { poolRead: 'EACCES', workerRead: 'EACCES', loadBpf: 'EPERM' }, 'after: neither can, and loading BPF is refused');
    t.ok(threads.length >= 8, `the child runs Node's threads (${threads.length})`);
    t.ok(report.threads >= threads.length, `the drop reached every thread (${report.threads} ≥ ${threads.length})`);
    const held = threads.filter((th) => th.effective !== 0n || th.permitted !== 0n || th.bounding !== 0n);
    t.same(held, [], 'CapEff, CapPrm and CapBnd are 0 on every thread');
    // Node's SIGUSR1 watchdog blocks every signal it may: the reason for borrowing SIGCANCEL.
    t.ok(
      threads.some((th) => th.sigBlk === 'fffffffe7ffbfeff'),
      `one of them blocks every signal but glibc's own (${threads.map((th) => th.sigBlk).join(' ')})`,
    );
    t.equal(report.dropped.length, capabilityNames(ours).length, `dropped all ${report.dropped.length} held`);
    t.ok(report.boundingSetCleared, 'the bounding set was emptied');
  });

  t.test('the addon refuses a keep mask that is not a bigint', async (t) => {
    const { loadNativeBinding } = await import('../src/capture/native.js');
    const binding = loadNativeBinding();
    t.throws(() => binding.dropCapabilities(1 as unknown as bigint), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, 'a number is a TypeError');
    t.throws(() => binding.dropCapabilities(-1n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, 'a negative mask is out of range');
    t.equal(binding.bpfRefusesUnprivileged(), false, 'this kernel (6.5 or newer) lets bpf(2) serve a held map descriptor without CAP_BPF');
    t.same(capabilityNames(threadCapabilities('self')[0]?.effective as bigint), capabilityNames(ours), 'the probe left this process its capabilities');
  });

  t.test('the agent: no capability left on any thread, and it still captures, serves and detaches', async (t) => {
    const agent = await startCommand(['--node-name', 'caps-test']);
    t.match(agent.err(), /execwatch: dropped capabilities on all \d+ threads: \d+ \(CAP_CHOWN,.*CAP_BPF.*\); kept none; bounding set emptied\n/, 'one start-up line says what was dropped');
    const threads = capsOf(agent.pid);
    t.comment(`threads: ${threads.length}; CapEff before: ${hex(ours)}; after: ${[...new Set(threads.map((th) => hex(th.effective)))].join(',')}`);
    t.same(threads.filter((th) => th.effective !== 0n || th.permitted !== 0n), [], 'CapEff 0 and CapPrm 0 on every thread');
    const progs = bpfProgIds(agent.pid);
    t.ok(progs.length >= 5, `the agent holds its programs (${progs.length} ids)`);

    const m = marker('caps');
    spawnSync('/usr/bin/true', [m]);
    await waitFor(() => agent.out().includes(m), 'the exec in --log-events');
    t.same(loggedEvents(agent.out(), m)[0]?.argv, ['/usr/bin/true', m], 'still captures execs');
    const metrics = await (await fetch(agent.metricsUrl)).text();
    t.match(metrics, /^execwatch_events_lost_total\{stage="ringbuf_full"\} 0$/m, 'a scrape still reads the kernel counters');
    const api = (await (await fetch(`${agent.apiUrl}/api/events?q=${m}`)).json()) as { events: unknown[] };
    t.equal(api.events.length, 1, 'the events API still serves');

    const t0 = Date.now();
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'SIGTERM: exit 0');
    t.ok(Date.now() - t0 < 2000, `detached within 2 s without capabilities (${Date.now() - t0} ms)`);
    t.same(await stillLoaded(progs), [], 'no program of ours is left loaded');
  });

  t.test('--keep-capabilities keeps them', async (t) => {
    const agent = await startCommand(['--keep-capabilities']);
    t.match(agent.err(), /execwatch: --keep-capabilities: every capability is kept\n/, 'the start-up line says so');
    const threads = capsOf(agent.pid);
    t.same(threads.filter((th) => th.effective !== ours || th.permitted !== ours), [], `every thread keeps CapEff ${hex(ours)}`);
    agent.child.kill('SIGTERM');
    t.equal(await agent.exited, 0, 'exit 0');
  });
});
