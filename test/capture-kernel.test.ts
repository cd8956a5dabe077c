// The real kernel: load the real program, exec real binaries, assert on the decoded events.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import t from 'tap';
import { defaultBpfObjectPath, loadNativeBinding } from '../src/capture/native.js';
import { Tracer } from '../src/capture/tracer.js';
import type { ExecEvent, ExitEvent } from '../src/events/schema.js';
import { cgroup2Root, compatPathOf, ensureTracefs, execHelper, kernelTest, makeCgroup, marker, waitFor } from './helpers/kernel.js';

const ARGV_BUDGET = 4096;

t.test('exec capture on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const helper = execHelper();
  const events: ExecEvent[] = [];
  const exits: ExitEvent[] = [];
  /** Every event delivered, exits included (what the kernel's count is compared with). */
  let delivered = 0;
  const tracer = new Tracer(
    loadNativeBinding(),
    { objectPath: defaultBpfObjectPath(), argvMaxBytes: ARGV_BUDGET, ringbufBytes: 16 << 20, node: 'test-node' },
    (event) => {
      delivered += 1;
      if (event.kind === 'exec') events.push(event);
      else if (event.kind === 'exit') exits.push(event);
    },
    (err) => t.fail(`the sink threw: ${String(err)}`),
  );
  const attached = tracer.start();
  t.teardown(() => tracer.close());
  t.not(compatPathOf(attached), null, `the core programs and one 32-bit exec path are attached (${attached.join(', ')})`);

  // The exec helper itself is exec'd with the marker in its argv too: only the execs it makes count.
  const withMarker = (m: string) => events.filter((e) => e.argv.includes(m) && e.filename !== helper);
  const one = async (m: string, what: string): Promise<ExecEvent> => {
    await waitFor(() => withMarker(m).length > 0, what);
    return withMarker(m)[0] as ExecEvent;
  };
  const run = (cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}) =>
    new Promise<number>((resolve) => {
      const child = spawn(cmd, args, { stdio: 'ignore', ...opts });
      child.on('error', () => {});
      child.on('close', () => resolve(child.pid ?? -1));
    });
  const myComm = readFileSync('/proc/self/comm', 'utf8').trim();

  t.test('a successful exec carries who, what and where', async (t) => {
    const m = marker('ok');
    const before = Date.now();
    const pid = await run('/usr/bin/true', [m, 'two words', ''], { uid: 65534, gid: 65533 });
    const e = await one(m, 'the exec of /usr/bin/true');
    t.equal(e.pid, pid, 'pid is the child');
    t.equal(e.tid, pid, 'a single-threaded exec: tid is the pid');
    t.equal(e.ppid, process.pid, 'ppid is this test process');
    t.equal(e.uid, 65534, 'uid of the child');
    t.equal(e.gid, 65533, 'gid of the child');
    t.equal(e.comm, 'true', 'comm after exec');
    t.equal(e.parentComm, myComm, 'parent comm');
    t.equal(e.filename, '/usr/bin/true', 'filename as passed to exec');
    t.same(e.argv, ['/usr/bin/true', m, 'two words', ''], 'argv, with spaces and an empty argument kept');
    t.equal(e.argc, 4, 'argc');
    t.equal(e.retval, 0, 'success');
    t.notOk(e.argvTruncated || e.fileless || e.execveat || e.readError || e.drift, 'no flags');
    t.equal(e.node, 'test-node', 'node name');
    const ms = Date.parse(e.time);
    t.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, 'RFC 3339 with nanoseconds');
    t.ok(ms >= before - 1000 && ms <= Date.now() + 1000, `wall-clock time ${e.time} is now`);
  });

  t.test('failed execs carry the negative errno', async (t) => {
    const missing = `/nonexistent/${marker('enoent')}`;
    await run(missing, ['x']);
    await waitFor(() => events.some((e) => e.filename === missing), 'the failed exec of a missing file');
    const enoent = events.find((e) => e.filename === missing) as ExecEvent;
    t.equal(enoent.retval, -2, 'ENOENT');
    t.same(enoent.argv, [missing, 'x'], 'argv of the failed exec, read from the caller');
    t.equal(enoent.pid, enoent.tid, 'pid');
    t.equal(enoent.ppid, process.pid, 'ppid');

    const dir = t.testdir({});
    const noexec = join(dir, marker('eacces'));
    writeFileSync(noexec, '#!/bin/sh\n');
    chmodSync(noexec, 0o644);
    await run(noexec, ['y']);
    await waitFor(() => events.some((e) => e.filename === noexec), 'the failed exec of a non-executable file');
    t.equal((events.find((e) => e.filename === noexec) as ExecEvent).retval, -13, 'EACCES');
  });

  t.test('execveat with a directory fd and with AT_EMPTY_PATH', async (t) => {
    const m1 = marker('dirfd');
    await run(helper, ['dirfd', '/usr/bin', 'true', 'true', m1]);
    const e1 = await one(m1, 'execveat(dirfd, "true")');
    t.ok(e1.execveat, 'execveat flag');
    t.match(e1.filename, /^\/dev\/fd\/\d+\/true$/, 'the kernel names it /dev/fd/N/true');
    t.same(e1.argv, ['true', m1], 'argv');
    t.equal(e1.retval, 0, 'success');

    const m2 = marker('emptypath');
    await run(helper, ['emptypath', '/usr/bin/true', 'true', m2]);
    const e2 = await one(m2, 'execveat(fd, "", AT_EMPTY_PATH)');
    t.ok(e2.execveat, 'execveat flag');
    t.match(e2.filename, /^\/dev\/fd\/\d+$/, 'the kernel names it /dev/fd/N');
    t.notOk(e2.fileless, 'a linked file is not fileless');
  });

  t.test('an exec from a memfd is fileless', async (t) => {
    const m = marker('memfd');
    await run(helper, ['memfd', '/usr/bin/true', 'true', m]);
    const e = await one(m, 'the memfd exec');
    t.ok(e.fileless, 'fileless');
    t.ok(e.execveat, 'through execveat');
  });

  t.test('drift: a file on an overlay\'s upper layer, not one from its lower layers', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'execwatch-overlay-'));
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d)) as [string, string, string, string];
    for (const d of [lower, upper, work, merged]) mkdirSync(d);
    copyFileSync('/usr/bin/true', join(lower, 'from-image'));
    chmodSync(join(lower, 'from-image'), 0o755);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    t.teardown(() => {
      execFileSync('umount', [merged]);
      rmSync(dir, { recursive: true, force: true });
    });

    const m1 = marker('lower');
    await run(join(merged, 'from-image'), [m1]);
    const e1 = await one(m1, 'the exec of a lower-layer file');
    t.notOk(e1.drift, 'a file only in the lower layer (the image) is no drift');

    // Written into the container's tree: it lands on the upper layer.
    for (const name of ['written', 'deleted']) copyFileSync('/usr/bin/true', join(merged, name));
    for (const name of ['written', 'deleted']) chmodSync(join(merged, name), 0o755);
    const m2 = marker('upper');
    await run(join(merged, 'written'), [m2]);
    const e2 = await one(m2, 'the exec of an upper-layer file');
    t.ok(e2.drift, 'a file written after the overlay was mounted is drift');
    t.notOk(e2.fileless, 'and still linked');

    const m3 = marker('unlinked');
    await run(helper, ['unlinked', join(merged, 'deleted'), 'deleted', m3]);
    const e3 = await one(m3, 'the exec of an upper-layer file deleted before its exec');
    t.ok(e3.drift, 'deleted before the exec: still drift');
    t.ok(e3.fileless, 'and fileless');

    const m4 = marker('copied-up');
    chmodSync(join(merged, 'from-image'), 0o700);
    await run(join(merged, 'from-image'), [m4]);
    const e4 = await one(m4, 'the exec of a lower-layer file after a chmod');
    t.ok(e4.drift, 'a chmod in the container copies the file up: drift, as documented');
  });

  t.test('an exec from a non-main thread', async (t) => {
    const m = marker('thread');
    const r = spawnSync(helper, ['thread', '/usr/bin/true', 'true', m], { encoding: 'utf8' });
    const threadTid = Number(r.stdout.trim());
    const e = await one(m, 'the exec from a thread');
    t.equal(e.pid, r.pid, 'pid is the process');
    t.equal(e.tid, threadTid, 'tid is the thread that called exec');
    t.not(e.tid, e.pid, 'and differs from the pid');
    t.equal(e.comm, 'true', 'comm after exec');
    t.equal(e.retval, 0, 'success');
  });

  t.test('argv beyond the budget is cut and flagged', async (t) => {
    const m = marker('long');
    const long = 'x'.repeat(ARGV_BUDGET + 1000);
    await run('/usr/bin/true', [m, long]);
    const e = await one(m, 'the exec with a long argv');
    t.ok(e.argvTruncated, 'argvTruncated');
    t.equal(e.argc, 3, 'argc still counts every argument');
    t.equal(e.argv.join('\0').length, ARGV_BUDGET, 'exactly the budget was kept');
    t.ok((e.argv[2] as string).startsWith('xxxx'), 'the long argument is kept up to the budget');
  });

  t.test('an exec inside a new cgroup v2 directory carries its id and names', async (t) => {
    const root = cgroup2Root();
    const parent = join(root, marker('cgparent'));
    const leaf = join(parent, 'cri-containerd-test.scope');
    const ino = makeCgroup(leaf);
    t.teardown(() => {
      rmdirSync(leaf);
      rmdirSync(parent);
    });
    const m = marker('cgroup');
    await run(helper, ['cgroup', leaf, '/usr/bin/true', 'true', m]);
    const e = await one(m, 'the exec inside the cgroup');
    t.equal(e.cgroupId, String(ino), 'cgroup id is the directory inode');
    t.equal(e.cgroup, basename(leaf), 'leaf name');
    t.equal(e.cgroupParent, basename(dirname(leaf)), 'parent name');
  });

  t.test('the longest cgroup names: kept whole up to 255 bytes (leaf) and 127 (parent), a longer parent cut and flagged, the exec after them intact', async (t) => {
    const root = cgroup2Root();
    /** Runs an exec in a cgroup `leaf` under `parent` (both names), and returns it and its exit. */
    const execIn = async (parentName: string, leafName: string): Promise<[ExecEvent, ExitEvent, number]> => {
      const parent = join(root, parentName);
      const leaf = join(parent, leafName);
      const ino = makeCgroup(leaf);
      t.teardown(() => {
        rmdirSync(leaf);
        rmdirSync(parent);
      });
      const m = marker('cglong');
      const pid = await run(helper, ['cgroup', leaf, '/usr/bin/true', 'true', m, 'after']);
      const e = await one(m, 'the exec inside the cgroup');
      t.equal(e.cgroupId, String(ino), 'cgroup id');
      t.same([e.filename, e.argv], ['/usr/bin/true', ['true', m, 'after']], 'filename and argv follow the names unharmed');
      await waitFor(() => exits.some((x) => x.execId === e.execId), 'its exit');
      return [e, exits.find((x) => x.execId === e.execId) as ExitEvent, pid];
    };
    const whole = `${marker('cgp')}-`;
    const [e, x, pid] = await execIn(whole.padEnd(127, 'p'), 'l'.repeat(255));
    t.same([e.cgroup, e.cgroupParent, e.cgroupTruncated], ['l'.repeat(255), whole.padEnd(127, 'p'), false], 'a 255-byte leaf and a 127-byte parent: whole, not flagged');
    t.same([x.pid, x.cgroupId, x.cgroup, x.cgroupParent, x.cgroupTruncated, x.status], [pid, e.cgroupId, e.cgroup, e.cgroupParent, false, 'ok'], 'the exit record carries the same names');
    const long = `${marker('cgp')}-${'p'.repeat(180)}`;
    const [cut, cutExit] = await execIn(long, 'l'.repeat(255));
    t.same([cut.cgroup, cut.cgroupParent, cut.cgroupTruncated], ['l'.repeat(255), long.slice(0, 127), true], 'a longer parent: its first 127 bytes, flagged');
    t.same([cutExit.cgroupParent, cutExit.cgroupTruncated], [long.slice(0, 127), true], 'in its exit too');
  });

  t.test('a burst of 2,000 execs is seen in full', async (t) => {
    const m = marker('burst');
    const lostBefore = tracer.stats().counters;
    const r = spawnSync(helper, ['burst', '2000', '2', '/usr/bin/true', 'true', m]);
    t.equal(r.status, 0, 'the burst ran');
    await waitFor(() => withMarker(m).length >= 2000, '2,000 events', 30_000);
    t.equal(withMarker(m).length, 2000, 'every exec arrived, once');
    t.equal(new Set(withMarker(m).map((e) => e.pid)).size, 2000, '2,000 distinct processes');
    const lost = tracer.stats().counters;
    t.equal(lost.ringbuf_full - lostBefore.ringbuf_full, 0, 'no ring buffer loss');
    t.equal(lost.state_map_full - lostBefore.state_map_full, 0, 'no state map loss');
    t.equal(tracer.stats().decodeErrors, 0, 'no decode error');
  });

  t.test('the kernel counts every event it produces; here all of them are delivered', async (t) => {
    // Machine-wide: every exec and exit on the machine is an event of this tracer, so compare everything.
    // Records still in the ring are counted but not delivered yet: the two agree once it is drained.
    const m = marker('counted');
    const countedBefore = tracer.stats().counters.events;
    spawnSync(helper, ['burst', '200', '2', '/usr/bin/true', 'true', m]);
    await waitFor(() => withMarker(m).length >= 200, '200 events');
    let exceeded = 0;
    const gap = (): number => {
      // stats() reads the kernel count last, and no event can be delivered before `delivered`.
      const s = tracer.stats();
      const accounted = delivered + s.counters.ringbuf_full + s.decodeErrors + s.pipelineErrors;
      if (accounted > s.counters.events) exceeded += 1;
      return s.counters.events - accounted;
    };
    await waitFor(() => gap() === 0, 'kernel events = delivered + lost, with the ring drained', 20_000);
    t.equal(exceeded, 0, 'delivered + lost never exceeded what the kernel counted');
    const s = tracer.stats();
    t.equal(s.counters.ringbuf_full, 0, 'nothing was lost');
    // The burst's events reached the kernel count: it grew by at least as many as were delivered.
    const burst = withMarker(m).length;
    t.ok(burst >= 200 && s.counters.events - countedBefore >= burst, `kernel events grew by ${s.counters.events - countedBefore}, ${burst} of the burst delivered`);
  });
});
