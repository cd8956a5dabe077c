// The life of a process on the real kernel: its exit (one record per process whose exec was
// reported, sent by its last thread, with the wait status and the time since the exec), its ids,
// and the effective ids of its image.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { defaultBpfObjectPath, loadNativeBinding } from '../src/capture/native.js';
import { scanProcesses } from '../src/capture/proc-scan.js';
import { Tracer } from '../src/capture/tracer.js';
import { readBootId } from '../src/events/exec-id.js';
import type { ExecEvent, ExitEvent } from '../src/events/schema.js';
import { eventOf } from '../src/events/record.js';
import { createPipeline } from '../src/pipeline.js';
import { idleMetrics } from './helpers/metrics.js';
import { PassThrough } from 'node:stream';
import { cgroup2Root, ensureTracefs, execHelper, finished, inCgroup, kernelTest, makeCgroup, marker, waitFor } from './helpers/kernel.js';
import type { Test } from './helpers/poll.js';

/** How far the kernel's duration may be from the one seen here (spawn to 'exit'). */
const SLACK_MS = 50;

t.test('the life of a process on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const helper = execHelper();
  const execs: ExecEvent[] = [];
  const exits: ExitEvent[] = [];
  const tracer = new Tracer(
    loadNativeBinding(),
    { objectPath: defaultBpfObjectPath(), argvMaxBytes: 4096, ringbufBytes: 16 << 20, node: 'test-node' },
    (event) => {
      if (event.kind === 'exec') execs.push(event);
      else if (event.kind === 'exit') exits.push(event);
    },
    (err) => t.fail(`the sink threw: ${String(err)}`),
  );
  tracer.start();
  t.teardown(() => tracer.close());

  /**
   * Runs `cmd`, whose argv holds `m`, under the exec helper's `timed` mode, which forks, execs it and
   * waits for it, and says when it started the fork and when its wait returned: the wall clock of
   * the child's life, taken by a small C process rather than by this test's event loop, which on a
   * busy machine notices a child's end tens of milliseconds late. `act` may act on the child once
   * its exec is seen. Returns its exec event, every exit event of its execId (waiting 200 ms more
   * for a duplicate), and the wall-clock times (ms) of its start and of its end.
   */
  const life = async (m: string, cmd: string, args: string[], opts: { cwd?: string; act?: (pid: number) => void } = {}) => {
    const timer = spawn(helper, ['timed', cmd, ...args], { stdio: ['pipe', 'pipe', 'ignore'], cwd: opts.cwd });
    let out = '';
    timer.stdout.on('data', (d: Buffer) => (out += d));
    const ended = new Promise<void>((resolve) => timer.on('exit', () => resolve()));
    const execOf = () => execs.find((e) => e.argv.includes(m) && e.ppid === timer.pid && e.retval === 0);
    await waitFor(() => execOf() !== undefined, `the exec of ${cmd}`);
    const exec = execOf() as ExecEvent;
    opts.act?.(exec.pid);
    await ended;
    const [startedNs, endedNs] = out.trim().split(' ').map(BigInt) as [bigint, bigint];
    await waitFor(() => exits.some((x) => x.execId === exec.execId), `the exit of ${cmd}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { exec, mine: exits.filter((x) => x.execId === exec.execId), startedAt: Number(startedNs) / 1e6, endedAt: Number(endedNs) / 1e6 };
  };

  /**
   * The kernel's times against the helper's wall clock: the exec comes just after its start, and
   * the end a little before the wait returns.
   */
  const checkTiming = (t: Test, exit: ExitEvent, exec: ExecEvent, timing: { startedAt: number; endedAt: number }) => {
    const ms = exit.duration * 1000;
    const wallMs = timing.endedAt - timing.startedAt;
    t.ok(Math.abs(ms - wallMs) <= SLACK_MS, `duration ${ms.toFixed(1)} ms within ${SLACK_MS} ms of the wall clock's ${wallMs.toFixed(1)} ms`);
    // Both times come from kernel stamps, through a clock offset read per batch: equal to the µs.
    t.ok(Math.abs(Date.parse(exit.execTime) - Date.parse(exec.time)) <= 1, `execTime ${exit.execTime} is the exec event's time ${exec.time}`);
    t.ok(Math.abs(Date.parse(exit.time) - timing.endedAt) <= SLACK_MS, `exit time ${exit.time} is when the child ended`);
  };

  t.test('exit 3: status error, code 3, once, the time since exec', async (t) => {
    const m = marker('exit3');
    const { exec, mine, ...timing } = await life(m, '/bin/sh', ['-c', 'sleep 0.3; exit 3', m]);
    t.equal(mine.length, 1, 'one exit');
    const exit = mine[0] as ExitEvent;
    t.same([exit.status, exit.code, exit.signal, exit.coreDumped], ['error', 3, null, false], 'code 3');
    t.equal(exit.pid, exec.pid, 'same pid');
    t.equal(exit.comm, 'sh', 'comm');
    t.equal(exit.node, 'test-node', 'node');
    t.ok(exit.duration >= 0.3, `at least the 0.3 s slept (${exit.duration})`);
    checkTiming(t, exit, exec, timing);
  });

  t.test('exit 0 is ok', async (t) => {
    const m = marker('exit0');
    const { mine } = await life(m, '/bin/sh', ['-c', 'exit 0', m]);
    t.same(mine.map((x) => [x.status, x.code]), [['ok', 0]], 'one exit, ok');
  });

  t.test('an exit names the cgroup its process ended in: its exec\'s, or the one it moved to', async (t) => {
    const base = join(cgroup2Root(), marker('life'));
    const [here, there] = [join(base, 'here'), join(base, 'there')];
    makeCgroup(here);
    makeCgroup(there);
    t.teardown(() => {
      for (const dir of [here, there, base]) rmdirSync(dir);
    });
    const endIn = async (m: string, script: string) => {
      await finished(inCgroup(here, ['/bin/sh', 'sh', '-c', script, m]));
      await waitFor(() => execs.some((e) => e.argv[0] === 'sh' && e.argv.includes(m)), 'its exec');
      const exec = execs.find((e) => e.argv[0] === 'sh' && e.argv.includes(m)) as ExecEvent;
      await waitFor(() => exits.some((x) => x.execId === exec.execId), 'its exit');
      return { exec, exit: exits.find((x) => x.execId === exec.execId) as ExitEvent };
    };
    const stayed = await endIn(marker('stayed'), 'exit 0');
    t.match(stayed.exec, { cgroup: 'here', cgroupParent: basename(base), cgroupId: String(statSync(here).ino) }, 'the exec names its cgroup');
    t.match(stayed.exit, { cgroup: 'here', cgroupParent: basename(base), cgroupId: stayed.exec.cgroupId, cgroupTruncated: false }, 'an exit where its exec was: the same (the kernel sent none, the exec\'s apply)');
    const moved = await endIn(marker('moved'), `echo $$ > ${there}/cgroup.procs; exit 0`);
    t.match(moved.exec, { cgroup: 'here' }, 'a process that moves after its exec');
    t.match(moved.exit, { cgroup: 'there', cgroupParent: basename(base), cgroupId: String(statSync(there).ino) }, 'ends where it moved to');
  });

  t.test('killed by SIGKILL: status signal, signal 9', async (t) => {
    const m = marker('kill');
    const { exec, mine, ...timing } = await life(m, '/bin/sh', ['-c', 'read x', m], {
      act: (pid) => setTimeout(() => process.kill(pid, 'SIGKILL'), 150),
    });
    t.equal(mine.length, 1, 'one exit');
    const exit = mine[0] as ExitEvent;
    t.same([exit.status, exit.code, exit.signal, exit.coreDumped], ['signal', null, 9, false], 'SIGKILL, no core');
    checkTiming(t, exit, exec, timing);
  });

  t.test('SIGSEGV with a core dump', async (t) => {
    const dir = t.testdir({});
    const m = marker('segv');
    const { exec, mine, ...timing } = await life(m, '/bin/sh', ['-c', 'ulimit -c unlimited; kill -SEGV $$', m], { cwd: dir });
    t.equal(mine.length, 1, 'one exit');
    const exit = mine[0] as ExitEvent;
    t.same([exit.status, exit.code, exit.signal], ['signal', null, 11], 'SIGSEGV');
    // core_pattern is "core" here: the dump is written to the working directory.
    const cores = readdirSync(dir).filter((f) => f.startsWith('core'));
    t.ok(cores.length > 0, `a core was written (${cores.join(', ') || 'none'})`);
    t.equal(exit.coreDumped, true, 'coreDumped');
    checkTiming(t, exit, exec, timing);
  });

  t.test('a non-leader thread calls exit_group: one exit for the process, its code', async (t) => {
    const m = marker('threadexit');
    const { exec, mine, ...timing } = await life(m, helper, ['threadexit', '4', '200', m]);
    t.equal(mine.length, 1, 'one exit, whichever thread left last');
    const exit = mine[0] as ExitEvent;
    t.same([exit.status, exit.code, exit.signal], ['error', 4, null], 'the code given to exit_group');
    t.equal(exit.pid, exec.pid, 'the process');
    checkTiming(t, exit, exec, timing);
  });

  t.test('orphans: the processes it forked still running at its exit', async (t) => {
    const m = marker('orphans');
    // Two subshells backgrounded and left running, one waited for: two orphans. Each execs at
    // once, so that no fork of theirs is running yet when the shell ends.
    const { exec, mine } = await life(m, '/bin/sh', ['-c', `(exec /bin/sh -c "sleep 0.3; exec /bin/true ${m}") & (exec sleep 0.3) & (exit 0); exit 0`, m]);
    t.same(mine.map((x) => x.orphans), [2], 'the shell left two');
    await waitFor(() => execs.some((e) => e.filename === '/bin/true' && e.argv.includes(m)), 'the orphan\'s exec');
    const orphan = execs.find((e) => e.filename === '/bin/true' && e.argv.includes(m)) as ExecEvent;
    t.equal(orphan.parentExecId, exec.execId, 'whose exec names it');
    await waitFor(() => exits.some((x) => x.execId === orphan.execId), 'the orphan\'s exit');
    t.equal(exits.find((x) => x.execId === orphan.execId)?.orphans, 0, 'and which left none');
  });

  t.test('orphans: a process forked by its subshell counts, and its exec names the shell', async (t) => {
    const m = marker('forkorphan');
    // The subshell never execs; the shell it forked from waits 0.5 s (its sleep has ended by its
    // exit), then ends while the subshell and the shell the subshell started still run.
    const { exec, mine } = await life(m, '/bin/sh', ['-c', `( /bin/sh -c "sleep 1" ${m}-inner; true ) & sleep 0.5; exit 0`, m]);
    const innerOf = () => execs.find((e) => e.filename === '/bin/sh' && e.argv.includes(`${m}-inner`));
    await waitFor(() => innerOf() !== undefined, 'the inner shell\'s exec');
    const inner = innerOf() as ExecEvent;
    t.not(inner.ppid, exec.pid, `its ppid is the subshell (${inner.ppid})`);
    t.equal(inner.parentExecId, exec.execId, 'its exec names the shell, whose image the subshell runs');
    t.same(mine.map((x) => x.orphans), [2], 'the shell left two: the subshell and the shell it started');
  });

  t.test('no exit for a process whose exec was never seen', async (t) => {
    // The subshell is a fork that never execs: its end is no exit event.
    const m = marker('fork');
    const { exec, mine } = await life(m, '/bin/sh', ['-c', '(exit 7); exit 0', m]);
    t.same(mine.map((x) => x.code), [0], 'the shell\'s own exit only');
    const seen = new Set(execs.map((e) => e.execId));
    const strays = exits.filter((x) => !seen.has(x.execId));
    t.same(strays.map((x) => `${x.comm}/${x.pid}`), [], 'no exit of a process whose exec was not reported (machine-wide, this run)');
    // Other tests' processes may exit 7 too: only a shell ending while this one ran could be it
    // (the times are fixed-width RFC 3339 texts, ordered as they read).
    const end = (mine[0] as ExitEvent).time;
    const subshell = exits.filter((x) => x.code === 7 && x.comm === 'sh' && x.pid !== exec.pid && x.time >= exec.time && x.time <= end);
    t.same(subshell.map((x) => `${x.comm}/${x.pid}`), [], 'the subshell\'s exit 7 is not reported');
  });

  t.test('the kernel\'s execId and parentExecId are the ones a /proc scan computes', async (t) => {
    const m = marker('ids');
    const child = spawn('/bin/sh', ['-c', 'read x', m], { stdio: ['pipe', 'ignore', 'ignore'] });
    t.teardown(() => child.kill('SIGKILL'));
    await waitFor(() => execs.some((e) => e.pid === child.pid && e.argv.includes(m)), 'the exec of sh');
    const exec = execs.find((e) => e.pid === child.pid && e.argv.includes(m)) as ExecEvent;
    const seen = scanProcesses({ node: 'test-node', bootId: readBootId() });
    t.equal(seen.find((p) => p.pid === child.pid)?.execId, exec.execId, 'the process');
    t.equal(seen.find((p) => p.pid === process.pid)?.execId, exec.parentExecId, 'its parent, this test');
    t.equal(exec.ppid, process.pid, 'which is its ppid');
  });

  t.test('a setuid binary run by an unprivileged user: uid is the user, euid the owner', async (t) => {
    const user = `ew${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
    t.teardown(() => execFileSync('userdel', [user]));
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    // Outside the checkout, whose parents the user may not be able to enter.
    const dir = mkdtempSync(join(tmpdir(), 'execwatch-setuid-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    const id = join(dir, 'setuid-id');
    copyFileSync('/usr/bin/id', id);
    chmodSync(id, 0o4755);
    const m = marker('setuid');
    const out = execFileSync(id, [], { uid, gid, encoding: 'utf8' });
    t.match(out, new RegExp(`uid=${uid}\\b.*euid=0\\b`), `id itself says uid ${uid}, euid 0 (${out.trim()})`);
    spawn(id, ['-u', m], { uid, gid, stdio: 'ignore' });
    await waitFor(() => execs.some((e) => e.filename === id && e.argv.includes(m)), 'the exec of the setuid binary');
    const e = execs.find((x) => x.filename === id && x.argv.includes(m)) as ExecEvent;
    t.same([e.uid, e.euid, e.gid, e.egid, e.euidDiffers], [uid, 0, gid, gid, true], 'uid the user, euid root, flagged');
    const plain = execs.filter((x) => x.uid === x.euid);
    t.ok(plain.length > 0 && plain.every((x) => !x.euidDiffers), `ordinary execs are not flagged (${plain.length})`);
  });

  t.test('the kernel counts execs and exits alike; here all are delivered', async (t) => {
    await waitFor(() => tracer.stats().counters.events === execs.length + exits.length, 'every event the kernel counted to be delivered');
    const { counters } = tracer.stats();
    t.equal(counters.ringbuf_full, 0, 'none lost');
    t.equal(counters.process_map_full, 0, 'the process map never filled');
    t.ok(exits.length > 0 && counters.events === execs.length + exits.length, `kernel events ${counters.events} = ${execs.length} execs + ${exits.length} exits`);
  });
});

t.test('lineage on the real kernel, as the agent wires it: ancestors from exec events and /proc', kernelTest(), async (t) => {
  ensureTracefs();
  const helper = execHelper();
  const metrics = idleMetrics();
  const pipeline = createPipeline(
    { recentEvents: 50_000, redact: [], defaultRedaction: true, enrichWaitMs: 0, logEvents: false, ancestors: 4 },
    { metrics, podCache: null, stdout: new PassThrough() },
  );
  const bootId = readBootId();
  const tracer = new Tracer(
    loadNativeBinding(),
    { objectPath: defaultBpfObjectPath(), argvMaxBytes: 4096, ringbufBytes: 16 << 20, node: 'test-node', bootId },
    pipeline.sink,
    (err) => t.fail(`the pipeline threw: ${String(err)}`),
  );
  tracer.start();
  t.teardown(() => tracer.close());
  // As the agent does: after attach, the processes already running.
  pipeline.processes.seed(scanProcesses({ node: 'test-node', bootId }));
  const held = () => pipeline.store.query(() => true, 50_000).map(eventOf);

  t.test('a three-level chain: the process, both shells, then this test (known from /proc)', async (t) => {
    const m = marker('chain');
    // `; true` keeps each shell from exec'ing its last command in place.
    spawn('/bin/sh', ['-c', `/bin/sh -c "/bin/true ${m}; true"; true`, 'outer'], { stdio: 'ignore' });
    await waitFor(() => held().some((e) => e.filename === '/bin/true' && e.argv.includes(m)), 'the exec of /bin/true');
    const events = held();
    const leaf = events.find((e) => e.filename === '/bin/true' && e.argv.includes(m)) as ExecEvent;
    const inner = events.find((e) => e.execId === leaf.parentExecId) as ExecEvent;
    const outer = events.find((e) => e.execId === inner?.parentExecId) as ExecEvent;
    t.ok(inner && outer, 'both shells\' exec events are in the ring');
    t.same(leaf.ancestors.map((a) => a.execId), [inner.execId, outer.execId, outer.parentExecId, leaf.ancestors[3]?.execId], 'nearest first: inner shell, outer shell, this test, its parent');
    t.same(leaf.ancestors.slice(0, 3).map((a) => [a.pid, a.comm]), [[inner.pid, 'sh'], [outer.pid, 'sh'], [process.pid, (outer.parentComm)]], 'pids and names');
    t.same(leaf.ancestors[1]?.argv, ['/bin/sh', '-c', `/bin/sh -c "/bin/true ${m}; true"; true`, 'outer'], 'with their argv');
    t.equal(leaf.ancestors.length, 4, 'at most --ancestors');
  });

  t.test('a parent that exited before its child exec\'d: the child\'s ancestors still name it, and its parents', async (t) => {
    const m = marker('orphan');
    // The shell backgrounds a subshell and exits at once; the subshell, given to pid 1 (or a
    // subreaper) by then, execs /bin/true 0.3 s later.
    const shell = spawn('/bin/sh', ['-c', `(sleep 0.3; exec /bin/true ${m}) & exit`, 'orphaner'], { stdio: 'ignore' });
    const leafOf = () => held().find((e) => e.filename === '/bin/true' && e.argv.includes(m));
    await waitFor(() => leafOf() !== undefined, 'the exec of /bin/true');
    const leaf = leafOf() as ExecEvent;
    const outer = held().find((e) => e.pid === shell.pid && e.argv.includes(`(sleep 0.3; exec /bin/true ${m}) & exit`)) as ExecEvent;
    t.ok(outer, 'the shell\'s exec event is in the ring');
    t.ok(outer.exit !== undefined && outer.exit.time < leaf.time, `the shell had ended (${outer.exit?.time}) before the exec (${leaf.time})`);
    t.not(leaf.ppid, outer.pid, `ppid is the parent the kernel gave it since (${leaf.ppid}, ${leaf.parentComm})`);
    t.equal(leaf.parentExecId, outer.execId, 'parentExecId: the shell that forked it');
    t.same(leaf.ancestors.slice(0, 2).map((a) => [a.execId, a.pid, a.comm]), [[outer.execId, outer.pid, 'sh'], [outer.parentExecId, process.pid, outer.parentComm]], 'ancestors: the exited shell, then this test');
    t.same(leaf.ancestors[0]?.argv, ['/bin/sh', '-c', `(sleep 0.3; exec /bin/true ${m}) & exit`, 'orphaner'], 'with its argv');
    await waitFor(() => leafOf()?.exit !== undefined, 'the exit of /bin/true');
    t.equal(pipeline.processes.get(outer.execId), undefined, 'the shell\'s entry left with its orphan\'s exit');
  });

  t.test('a child of a fork that never exec\'d (a subshell): its lineage names the shell whose image that fork runs', async (t) => {
    const m = marker('subshell');
    // The subshell forks for /bin/true (not its last command) and never execs itself; the nested
    // one forks again, so two forks without an exec lie between the shell and /bin/true.
    const shell = spawn('/bin/sh', ['-c', `( ( /bin/true ${m}; true ); true ); true`, 'forker'], { stdio: 'ignore' });
    const leafOf = () => held().find((e) => e.filename === '/bin/true' && e.argv.includes(m));
    await waitFor(() => leafOf() !== undefined, 'the exec of /bin/true');
    const leaf = leafOf() as ExecEvent;
    const outer = held().find((e) => e.pid === shell.pid && e.argv.includes('forker')) as ExecEvent;
    t.ok(outer, 'the shell\'s exec event is in the ring');
    t.not(leaf.ppid, outer.pid, `ppid is the nested subshell that forked it (${leaf.ppid})`);
    t.equal(leaf.parentComm, 'sh', 'which runs the shell\'s image');
    t.equal(leaf.parentExecId, outer.execId, 'parentExecId: the shell, whose image the subshells run');
    t.same(leaf.ancestors.slice(0, 2).map((a) => [a.execId, a.pid]), [[outer.execId, outer.pid], [outer.parentExecId, process.pid]], 'ancestors: the shell, then this test');
    await waitFor(() => leafOf()?.exit !== undefined && held().find((e) => e.execId === outer.execId)?.exit !== undefined, 'the exits of /bin/true and the shell');
    t.equal(pipeline.processes.get(outer.execId), undefined, 'the shell\'s entry left with its exit');
  });

  t.test('after a burst, the table holds no entry of a process that has exited', async (t) => {
    const m = marker('burst');
    execFileSync(helper, ['burst', '500', '2', '/usr/bin/true', 'true', m]);
    const mine = () => held().filter((e) => e.argv.includes(m) && e.filename === '/usr/bin/true');
    await waitFor(() => mine().length === 500 && mine().every((e) => e.exit !== undefined), 'the 500 execs and their exits');
    t.same(mine().filter((e) => pipeline.processes.get(e.execId) !== undefined).map((e) => e.pid), [], 'none of them left in the table');
    t.ok(mine().every((e) => e.exit?.status === 'ok'), 'each exec shows its exit');
  });
});
