// 32-bit callers (issue 13, item 5): the syscall tracepoints skip compat syscalls, so without the
// raw-syscall programs a 32-bit process's failed exec would be invisible and its execveat unflagged.
import { spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { defaultBpfObjectPath, loadNativeBinding } from '../src/capture/native.js';
import { Tracer } from '../src/capture/tracer.js';
import type { ExecEvent } from '../src/events/schema.js';
import { ensureTracefs, exec32Helper, kernelTest, marker, refuses32Bit, waitFor } from './helpers/kernel.js';

const COMPAT_FENTRY = ['handle_enter_compat_execve', 'handle_enter_compat_execveat', 'handle_exit_compat_execve', 'handle_exit_compat_execveat'];
const COMPAT_RAW = ['handle_enter_compat', 'handle_exit_compat'];

t.test('execs of a 32-bit process on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const exec32 = exec32Helper();
  const events: ExecEvent[] = [];
  const tracer = new Tracer(
    loadNativeBinding(),
    { objectPath: defaultBpfObjectPath(), argvMaxBytes: 4096, ringbufBytes: 1 << 20, node: 'test-node' },
    (event) => {
      if (event.kind === 'exec') events.push(event);
    },
    (err) => t.fail(`the sink threw: ${String(err)}`),
  );
  const attached = tracer.start();
  t.teardown(() => tracer.close());

  // A kernel may refuse 32-bit binaries at run time: no 32-bit exec can happen there to be seen
  // (`npm run test:kernels` runs them in its guests). Any other answer (a helper that does not run
  // for another reason) fails below, as it should.
  const refused = refuses32Bit();
  const skip = refused ?? false;

  if (refused !== null) {
    // The addon asked the kernel (a 32-bit syscall from a child) and loaded neither path: the raw
    // one would run on every syscall of the node for execs that cannot happen.
    t.notOk([...COMPAT_FENTRY, ...COMPAT_RAW].some((p) => attached.includes(p)), `no compat program attached where ia32 is off (${attached.join(', ')})`);
    t.same(tracer.stats().unavailable, [...COMPAT_FENTRY, ...COMPAT_RAW], 'both paths unavailable');
  } else {
    // One path or the other, chosen by the addon: fentry where the kernel gives BPF trampolines,
    // the raw syscall tracepoints where it does not (the qemu guests of `npm run test:kernels`
    // take fentry).
    const fentry = attached.includes('handle_enter_compat_execve');
    const [used, other] = fentry ? [COMPAT_FENTRY, COMPAT_RAW] : [COMPAT_RAW, COMPAT_FENTRY];
    t.ok(
      used.every((p) => attached.includes(p)),
      `the ${fentry ? 'fentry' : 'raw syscall'} compat programs are attached on this x86-64 kernel`,
    );
    t.same(tracer.stats().unavailable, other, 'the other path is unavailable, and nothing else');
    t.notOk(
      other.some((p) => attached.includes(p)),
      'never both paths: a 32-bit exec would be reported twice',
    );
  }

  // Returns the pid of the 32-bit process and its exit status.
  const run = (args: string[]) =>
    new Promise<{ pid: number; code: number | null }>((resolve) => {
      const child = spawn(exec32, args, { stdio: 'ignore' });
      child.on('close', (code) => resolve({ pid: child.pid ?? -1, code }));
    });
  // Its own exec (Node spawning the helper, argv[0] its path) carries the marker too: only the
  // execs the 32-bit helper makes count.
  const mine = (m: string) => events.filter((e) => e.argv.includes(m) && e.argv[0] !== exec32);
  const one = async (t: Test, m: string, what: string): Promise<ExecEvent> => {
    await waitFor(() => mine(m).length > 0, what);
    t.equal(mine(m).length, 1, `${what}: one event`);
    return mine(m)[0] as ExecEvent;
  };

  t.test('a failed execve (ENOENT) is delivered with its errno, filename and argv', { skip }, async (t) => {
    const m = marker('c32-enoent');
    const missing = `/nonexistent/${m}`;
    const { pid, code } = await run(['execve', missing, 'arg0', m, 'two words']);
    t.equal(code, 127, 'the exec failed');
    const e = await one(t, m, 'the failed 32-bit execve');
    t.equal(e.retval, -2, 'ENOENT');
    t.equal(e.filename, missing, 'filename read through the 32-bit pointer');
    t.same(e.argv, ['arg0', m, 'two words'], 'argv read through 32-bit pointers');
    t.equal(e.argc, 3, 'argc');
    t.equal(e.pid, pid, 'pid of the 32-bit process');
    t.equal(e.tid, pid, 'tid');
    t.equal(e.ppid, process.pid, 'ppid');
    t.equal(e.comm, 'exec32', 'comm of the caller');
    t.notOk(e.execveat, 'not execveat');
    t.notOk(e.readError || e.argvTruncated, 'read completely');
  });

  t.test('a failed execveat is delivered with the execveat flag', { skip }, async (t) => {
    const m = marker('c32-at-fail');
    const { code } = await run(['execveat', '/usr/bin', m, 'x', m]);
    t.equal(code, 127, 'the exec failed');
    const e = await one(t, m, 'the failed 32-bit execveat');
    t.equal(e.retval, -2, 'ENOENT');
    t.ok(e.execveat, 'execveat flag');
    t.equal(e.filename, m, 'the name as passed (relative to the directory fd)');
    t.same(e.argv, ['x', m], 'argv');
  });

  t.test('a successful execveat keeps the execveat flag', { skip }, async (t) => {
    const m = marker('c32-at-ok');
    const { pid, code } = await run(['execveat', '/usr/bin', 'true', 'true', m]);
    t.equal(code, 0, '/usr/bin/true ran');
    const e = await one(t, m, 'the successful 32-bit execveat');
    t.equal(e.retval, 0, 'success');
    t.ok(e.execveat, 'execveat flag');
    t.match(e.filename, /^\/dev\/fd\/\d+\/true$/, 'the kernel names it /dev/fd/N/true');
    t.same(e.argv, ['true', m], 'argv from the new image');
    t.equal(e.pid, pid, 'pid');
    t.equal(e.comm, 'true', 'comm after exec');
  });

  t.test('a successful execve of a 32-bit binary', { skip }, async (t) => {
    const m = marker('c32-ok');
    // The 32-bit helper execs itself with a usage error: a 32-bit image from a 32-bit caller.
    const { code } = await run(['execve', exec32, 'exec32', 'usage', m]);
    t.equal(code, 2, 'the new image ran (and exited with its usage status)');
    const e = await one(t, m, 'the successful 32-bit execve');
    t.equal(e.retval, 0, 'success');
    t.equal(e.filename, exec32, 'filename');
    t.same(e.argv, ['exec32', 'usage', m], 'argv');
    t.notOk(e.execveat, 'not execveat');
  });

  t.test('nothing was lost', async (t) => {
    t.equal(tracer.stats().counters.state_map_full, 0, 'no state insert failed');
    t.equal(tracer.stats().counters.ringbuf_full, 0, 'no ring loss');
  });
});
