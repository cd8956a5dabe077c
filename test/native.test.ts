// The native addon against the real kernel (privileged), and its loader (unprivileged).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import type { NativeError, NativeTracer } from '../src/capture/binding.js';
import { defaultBpfObjectPath, loadNativeBinding, nativeAddonPath } from '../src/capture/native.js';
import { CGROUP_STATS_SIZE, CgroupStatsReader } from '../src/capture/cgroup-stats.js';
import { packageRoot } from '../src/package.js';
import { buildScopeSlots, type ScopeEntry } from '../src/scope/table.js';
import { bpfProgIds, cgroup2Root, compatPathOf, COMPAT_PATHS, CORE_PROGRAMS, execHelper, finished, inCgroup, kernelTest, makeCgroup, progLoaded, repoRoot, waitFor } from './helpers/kernel.js';

const RECORD_LEN_OFFSET = 16;
/** enum execwatch_record_kind: exec records are 0; exits (1) have another layout past the pid. */
const KIND_OFFSET = 20;
const PID_OFFSET = 24;
const PPID_OFFSET = 32;
const OPTIONS = { argvMaxBytes: 4096, ringbufBytes: 1 << 20 } as const;

/** The records of a batch, following record_len: each one's offset and kind. */
function* recordsOf(batch: Buffer, length = batch.length): Generator<{ at: number; kind: number }> {
  for (let at = 0; at + PPID_OFFSET + 4 <= length; ) {
    const len = batch.readUInt32LE(at + RECORD_LEN_OFFSET);
    if (len < PPID_OFFSET + 4) throw new Error(`record at ${at} claims length ${len}`);
    yield { at, kind: batch.readUInt16LE(at + KIND_OFFSET) };
    at += len;
  }
}

/** The u32 at `field` of each exec record of a batch. */
const fieldOf = (batch: Buffer, field: number): number[] => [...recordsOf(batch)].filter((r) => r.kind === 0).map((r) => batch.readUInt32LE(r.at + field));
const pidsOf = (batch: Buffer) => fieldOf(batch, PID_OFFSET);

function thrown(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (err) {
    return err as NativeError;
  }
  throw new Error('expected a throw');
}

/**
 * Leaves only the top-level cgroups `dirs` in `tracer`'s scope: the cgroup v2 root out for itself,
 * every other top-level cgroup out with its subtree (those there now; call again for later ones).
 */
function scopeOnly(tracer: NativeTracer, dirs: string[]): void {
  const root = cgroup2Root();
  const others = new Map<bigint, ScopeEntry>([[BigInt(statSync(root).ino), { reason: 'host', subtree: false }]]);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const dir = join(root, entry.name);
    if (entry.isDirectory() && !dirs.includes(dir)) others.set(BigInt(statSync(dir).ino), { reason: 'host', subtree: true });
  }
  const { slots, entries, dropped } = buildScopeSlots(others);
  if (dropped > 0) throw new Error(`${dropped} cgroups found no slot in the scope table`);
  tracer.writeScope(slots, entries);
}

t.test('package layout', async (t) => {
  t.equal(defaultBpfObjectPath(), join(packageRoot(), 'build', 'execwatch.bpf.o'), 'the BPF object is under build/');
  t.equal(defaultBpfObjectPath('/r'), '/r/build/execwatch.bpf.o', 'the BPF object path follows the given root');
  t.equal(nativeAddonPath('/r'), '/r/native/build/Release/execwatch.node', 'the addon is node-gyp Release output');
});

t.test('loadNativeBinding', async (t) => {
  const dir = t.testdir({
    'fake.cjs': 'module.exports = { Tracer: function () {}, bootTimeOffsetNs() { return 0n; }, mountTracefs() {}, dropCapabilities() {}, switchUser() {} };',
    'stale.cjs': 'module.exports = { Tracer: function () {} };',
  });
  t.throws(() => loadNativeBinding(join(dir, 'none.node')), /native addon not built: run npm run build:addon/, 'a missing addon names the fix');
  t.equal(typeof loadNativeBinding(join(dir, 'fake.cjs')).bootTimeOffsetNs, 'function', 'a module with the surface loads');
  t.throws(
    () => loadNativeBinding(join(dir, 'stale.cjs')),
    /does not export bootTimeOffsetNs, mountTracefs, dropCapabilities, switchUser/,
    'a module missing functions is refused, naming them',
  );
});

t.test('scripts/build-addon.mjs', async (t) => {
  const script = join(repoRoot, 'scripts', 'build-addon.mjs');
  const dir = t.testdir({
    'fail.cjs': "console.log('compiler noise'); console.error('error: boom'); process.exit(3);",
    'killed.cjs': "process.kill(process.pid, 'SIGKILL');",
    'ok.cjs': "console.log('gyp info ok'); require('fs').writeFileSync(process.env.ARGS_OUT, JSON.stringify([...process.argv.slice(2), process.env.npm_config_nodedir]));",
  });
  const env: NodeJS.ProcessEnv = { ...process.env, ARGS_OUT: join(dir, 'args.json') };
  delete env.npm_config_node_gyp;
  delete env.npm_config_nodedir;
  delete env.EXECWATCH_BUILD_VERBOSE;
  const cases = [
    { gyp: '/nonexistent/node-gyp.js', status: 1, stderr: /^build-addon: npm's bundled node-gyp not found at \/nonexistent\/node-gyp.js\n$/ },
    { gyp: join(dir, 'fail.cjs'), status: 1, stderr: /^compiler noise\nerror: boom\nbuild-addon: node-gyp rebuild failed \(exit status 3\)\n$/ },
    { gyp: join(dir, 'killed.cjs'), status: 1, stderr: /node-gyp rebuild failed \(killed by SIGKILL\)/ },
    { gyp: join(dir, 'ok.cjs'), status: 0, stderr: /^$/ },
  ] as const;
  for (const c of cases) {
    const run = spawnSync(process.execPath, [script], { env: { ...env, npm_config_node_gyp: c.gyp, npm_config_nodedir: '/opt/headers' }, encoding: 'utf8' });
    t.equal(run.status, c.status, `${c.gyp}: exit status ${c.status}`);
    t.match(run.stderr, c.stderr, `${c.gyp}: stderr`);
    t.equal(run.stdout, '', `${c.gyp}: nothing on stdout`);
  }
  // Run directly (not by npm) and with no npm on PATH, there is no node-gyp to find.
  const noPath = { ...env };
  delete noPath.PATH;
  const lost = spawnSync(process.execPath, [script], { env: noPath, encoding: 'utf8' });
  t.equal(lost.status, 1, 'no npm on PATH: exit status 1');
  t.equal(lost.stderr, "build-addon: npm's bundled node-gyp not found: no npm on PATH\n", 'no npm on PATH: says so');
  t.same(
    JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8')),
    ['rebuild', '--directory', join(repoRoot, 'native'), `--nodedir=${join(dirname(process.execPath), '..')}`, join(dirname(process.execPath), '..')],
    "node-gyp rebuilds native/ against the headers of the Node that runs it, on its command line and in npm_config_nodedir (which node-gyp prefers), whatever npm's nodedir says",
  );

  // The real thing, on a copy of the sources so the addon other tests load is left alone.
  const copy = t.testdir({ native: {}, bpf: {} });
  for (const f of readdirSync(join(repoRoot, 'native')).filter((f) => /\.(cc|h|gyp)$/.test(f))) {
    cpSync(join(repoRoot, 'native', f), join(copy, 'native', f));
  }
  cpSync(join(repoRoot, 'bpf', 'execwatch.h'), join(copy, 'bpf', 'execwatch.h'));
  const build = spawnSync(process.execPath, [script, join(copy, 'native')], { env: { ...env, EXECWATCH_BUILD_VERBOSE: '1' }, encoding: 'utf8' });
  t.equal(build.status, 0, `the bundled node-gyp builds the addon: ${build.stderr}`);
  t.match(build.stderr, /^build-addon: built .*native\/build\/Release\/execwatch\.node in \d+ ms\n$/, 'reporting only the time');
  t.comment(build.stderr.trim());
  // In a child: a second copy of the addon in this process would take over libbpf's log callback.
  const probe = spawnSync(process.execPath, ['-p', 'Object.keys(require(process.argv[1])).sort().join()', join(copy, 'native', 'build', 'Release', 'execwatch.node')], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.equal(probe.stdout.trim(), 'Tracer,bootTimeOffsetNs,dropCapabilities,mountTracefs,switchUser', 'the built addon loads and exports the surface');
});

t.test('native addon on the real kernel', kernelTest(), async (t) => {
  if (!existsSync(nativeAddonPath())) execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-addon.mjs')]);
  if (!existsSync(defaultBpfObjectPath())) execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-bpf.mjs')]);
  const binding = loadNativeBinding();
  const objectPath = defaultBpfObjectPath();
  const open = (extra: Record<string, unknown> = {}): NativeTracer => new binding.Tracer({ objectPath, ...OPTIONS, ...extra } as never);

  t.test('options are validated, naming the option', async (t) => {
    const cases = [
      { options: undefined, type: TypeError, match: /^options must be an object/ },
      { options: { objectPath: '', ...OPTIONS }, type: TypeError, match: /options\.objectPath must be a non-empty string/ },
      { options: { objectPath: 7, ...OPTIONS }, type: TypeError, match: /options\.objectPath/ },
      { options: { objectPath, ...OPTIONS, argvMaxBytes: '4096' }, type: TypeError, match: /options\.argvMaxBytes must be an integer/ },
      { options: { objectPath, ...OPTIONS, argvMaxBytes: 1.5 }, type: TypeError, match: /options\.argvMaxBytes must be an integer/ },
      { options: { objectPath, ...OPTIONS, argvMaxBytes: 0 }, type: RangeError, match: /options\.argvMaxBytes must be between 1 and 32768, got 0/ },
      { options: { objectPath, ...OPTIONS, argvMaxBytes: 32769 }, type: RangeError, match: /options\.argvMaxBytes .* got 32769/ },
      { options: { objectPath, argvMaxBytes: 4096 }, type: TypeError, match: /options\.ringbufBytes must be an integer/ },
      { options: { objectPath, ...OPTIONS, ringbufBytes: 3 << 20 }, type: RangeError, match: /options\.ringbufBytes must be a power of two .* got 3145728/ },
      { options: { objectPath, ...OPTIONS, ringbufBytes: 4096 }, type: RangeError, match: /options\.ringbufBytes .* got 4096/ },
      { options: { objectPath, ...OPTIONS, ringbufBytes: 2 ** 31 }, type: RangeError, match: /options\.ringbufBytes .* got 2147483648/ },
      { options: { objectPath, ...OPTIONS, cgroupRate: -1 }, type: RangeError, match: /options\.cgroupRate must be between 0 and 1000000, got -1/ },
      { options: { objectPath, ...OPTIONS, cgroupRate: 0.5 }, type: TypeError, match: /options\.cgroupRate must be an integer/ },
      { options: { objectPath, ...OPTIONS, cgroupBurst: 0 }, type: RangeError, match: /options\.cgroupBurst must be between 1 and 10000000, got 0/ },
      { options: { objectPath, ...OPTIONS, wakeupBytes: 1.5 }, type: TypeError, match: /options\.wakeupBytes must be an integer/ },
      { options: { objectPath, ...OPTIONS, wakeupBytes: -1 }, type: RangeError, match: /options\.wakeupBytes must be between 0 and half of ringbufBytes \(524288\), got -1/ },
      { options: { objectPath, ...OPTIONS, wakeupBytes: (1 << 19) + 1 }, type: RangeError, match: /options\.wakeupBytes .* got 524289/ },
      { options: { objectPath, ...OPTIONS, flushIntervalMs: '25' }, type: TypeError, match: /options\.flushIntervalMs must be an integer/ },
      { options: { objectPath, ...OPTIONS, flushIntervalMs: 0 }, type: RangeError, match: /options\.flushIntervalMs must be between 1 and 1000, got 0/ },
      { options: { objectPath, ...OPTIONS, flushIntervalMs: 1001 }, type: RangeError, match: /options\.flushIntervalMs .* got 1001/ },
    ] as const;
    for (const c of cases) {
      const err = thrown(() => new binding.Tracer(c.options as never));
      t.type(err, c.type, `${JSON.stringify(c.options)} throws a ${c.type.name}`);
      t.match(err.message, c.match, `${JSON.stringify(c.options)}: ${err.message}`);
      t.equal(err.code, c.type === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE', 'with a Node-style code');
    }
  });

  t.test('objects that cannot be used say why', async (t) => {
    const dir = t.testdir({ 'not-elf.o': 'hello\n' });
    const missing = thrown(() => open({ objectPath: join(dir, 'missing.o') }));
    t.equal(missing.message, `open BPF object ${join(dir, 'missing.o')}: No such file or directory`, 'the message is operation: strerror');
    t.equal(missing.code, 'ENOENT', 'the code is the errno name');
    t.equal(missing.errno, 2, 'errno is positive');
    const notElf = thrown(() => open({ objectPath: join(dir, 'not-elf.o') }));
    t.equal(notElf.code, 'LIBBPF_ERRNO__FORMAT', "libbpf's own errors keep libbpf's name");
    t.match(notElf.message, /BPF object format invalid\nlibbpf: elf: .* is not a proper ELF object/, "with libbpf's explanation");

    const variants = [
      { flag: 'NO_ARGV_MAX', code: 'ENOENT', match: /^set argv_max_bytes in .*: No such file or directory\nno rodata variable 'argv_max_bytes'/ },
      { flag: 'ARGV_MAX_U64', code: 'EINVAL', match: /rodata variable 'argv_max_bytes' is not a u32/ },
      { flag: 'NO_SCRATCH', code: 'ENOENT', match: /^find map 'scratch' in .*: No such file or directory$/ },
      { flag: 'PERCPU_COUNTERS', code: 'EINVAL', match: /^map 'counters' in .* must be a BPF_F_MMAPABLE array: Invalid argument$/ },
      { flag: 'SCOPE_NOT_MMAPABLE', code: 'EINVAL', match: /^map 'scope' in .* must be a BPF_F_MMAPABLE array of one execwatch_scope_table: Invalid argument$/ },
      { flag: 'CGROUP_STATS_NOT_MMAPABLE', code: 'EINVAL', match: /^map 'cgroup_stats' in .* must be a BPF_F_MMAPABLE array of execwatch_cgroup_stats: Invalid argument$/ },
      { flag: 'REJECTED', code: 'EACCES', match: /^load BPF object .*: Permission denied\n[^]*invalid mem access 'map_value_or_null'/ },
    ] as const;
    const machine = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
    for (const v of variants) {
      const out = join(dir, `${v.flag}.o`);
      execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-D${v.flag}`, `-I${join(repoRoot, 'bpf')}`, `-I/usr/include/${machine}`,
        '-c', join(repoRoot, 'test', 'fixtures', 'native', 'variant.bpf.c'), '-o', out]);
      const err = thrown(() => open({ objectPath: out }));
      t.equal(err.code, v.code, `${v.flag}: code ${v.code}`);
      t.match(err.message, v.match, `${v.flag}: the message explains`);
    }
  });

  t.test('switchUser checks its arguments before any system call', async (t) => {
    // A valid call would switch this test process for good: test/privileges.test.ts runs it in the agent.
    const call = binding.switchUser as (...args: unknown[]) => void;
    t.throws(() => call('65534', 65534), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'uid must be an integer' }, 'a string uid is a TypeError');
    t.throws(() => call(65534, 1.5), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'gid must be an integer' }, 'a fractional gid is a TypeError');
    t.throws(() => call(-1, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, 'a negative uid is out of range');
    t.throws(() => call(0, 4294967295), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'gid must be between 0 and 4294967294' }, '(gid_t)-1 is out of range');
    t.equal(process.getuid?.(), 0, 'this process is still root');
  });

  t.test('bootTimeOffsetNs is wall clock minus boot time', async (t) => {
    const offset = binding.bootTimeOffsetNs();
    t.type(offset, 'bigint', 'a BigInt: nanoseconds since 1970 overflow a double');
    const uptimeS = Number((readFileSync('/proc/uptime', 'utf8').split(' ')[0]));
    const expected = Date.now() * 1e6 - uptimeS * 1e9;
    t.ok(Math.abs(Number(offset) - expected) < 50e6, `within 50 ms of Date.now() - /proc/uptime (off by ${(Number(offset) - expected) / 1e6} ms)`);
  });

  t.test('mountTracefs', async (t) => {
    const dir = t.testdir({ mnt: {} });
    const target = join(dir, 'mnt');
    binding.mountTracefs(target);
    try {
      t.ok(existsSync(join(target, 'events', 'syscalls')), 'a tracefs is mounted at the target');
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target) as string;
      t.match(line.split(' ')[5], /^ro,nosuid,nodev,noexec/, 'read-only, nosuid, nodev, noexec');
      t.equal(thrown(() => writeFileSync(join(target, 'kprobe_events'), 'p:execwatch_test do_sys_open\n')).code, 'EROFS', 'root cannot add a kprobe through it');
    } finally {
      execFileSync('umount', [target]);
    }
    const missing = thrown(() => binding.mountTracefs(join(dir, 'absent')));
    t.equal(missing.code, 'ENOENT', 'a missing target gives ENOENT');
    t.match(missing.message, /^mount tracefs on .*absent: No such file or directory$/, 'naming the target');
    t.throws(() => (binding.mountTracefs as (x: unknown) => void)(42), TypeError, 'a non-string target is a TypeError');
    // The syscall tracepoints need tracefs at the usual place; the CI machine boots without it.
    if (!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / - tracefs /.test(l) && l.split(' ')[4] === '/sys/kernel/tracing')) {
      binding.mountTracefs('/sys/kernel/tracing');
    }
  });

  t.test('attach, deliver, count, close', async (t) => {
    // Loading opens the program fds; attaching adds link fds, which also name their program.
    const baseline = new Set(bpfProgIds(process.pid));
    const tracer = open();
    t.teardown(() => tracer.close());
    const attached = [...tracer.attach()].sort();
    const path = compatPathOf(attached);
    t.not(path, null, `attach returns the core programs and one 32-bit exec path (${attached.join(', ')})`);
    t.same([...tracer.attach()].sort(), attached, 'attaching again changes nothing');
    const ours = [...new Set(bpfProgIds(process.pid).filter((id) => !baseline.has(id)))];
    t.equal(ours.length, attached.length, `the process holds the ${attached.length} programs`);

    t.throws(() => (tracer.start as (x: unknown) => void)('nope'), TypeError, 'start needs a function');
    const batches: Buffer[] = [];
    tracer.start((batch, length) => batches.push(Buffer.from(batch.subarray(0, length))));
    t.match(thrown(() => tracer.start(() => {})), { code: 'ERR_TRACER_STARTED' }, 'starting twice is refused');

    const child = spawnSync('/bin/true');
    await waitFor(() => batches.some((b) => pidsOf(b).includes(child.pid)), `a record with pid ${child.pid}`);
    t.ok(batches.every((b) => Buffer.isBuffer(b) && b.length % 8 === 0), 'batches are Buffers of whole 8-byte aligned records');

    // While JS is busy the ring fills; the next wake-up hands everything over in one call.
    batches.length = 0;
    const execs = 300;
    const loop = `i=0; while [ $i -lt ${execs} ]; do /bin/true; i=$((i+1)); done`;
    const blocked = spawnSync('/bin/sh', ['-c', loop]);
    const fromBlocked = () => batches.filter((b) => fieldOf(b, PPID_OFFSET).includes(blocked.pid));
    await waitFor(() => fromBlocked().reduce((n, b) => n + fieldOf(b, PPID_OFFSET).filter((p) => p === blocked.pid).length, 0) >= execs, `${execs} records`);
    t.equal(fromBlocked().length, 1, `${execs} execs made while the loop was blocked arrive in one batch`);
    t.comment(`loop blocked during ${execs} execs: ${batches.length} batch(es), largest ${Math.max(...batches.map((b) => b.length))} bytes`);

    batches.length = 0;
    const live = spawn('/bin/sh', ['-c', loop], { stdio: 'ignore' });
    const fromLive = () => batches.flatMap((b) => fieldOf(b, PPID_OFFSET)).filter((p) => p === live.pid).length;
    await waitFor(() => fromLive() >= execs, `${execs} records`);
    t.comment(`idle loop during ${execs} execs: ${batches.reduce((n, b) => n + pidsOf(b).length, 0)} records in ${batches.length} batches, largest ${Math.max(...batches.map((b) => b.length))} bytes`);

    const stats = tracer.stats();
    t.same(Object.keys(stats.counters).sort(), ['argv_read_error', 'events', 'excluded_host', 'excluded_namespace', 'excluded_pod', 'process_map_full', 'ringbuf_full', 'state_map_full', 'throttled'], 'the kernel counters');
    t.ok(Object.values(stats.counters).every((v) => Number.isInteger(v) && v >= 0), 'counters are non-negative integers');
    // Read from the counters map's mapping (BPF_F_MMAPABLE), summed over CPUs by the kernel's atomic adds.
    t.ok(stats.counters.events >= 2 * execs + 1, `the events counter saw every exec of this test (${stats.counters.events} ≥ ${2 * execs + 1})`);
    const counterMaps = readFileSync(`/proc/${process.pid}/maps`, 'utf8').split('\n').filter((l) => / r--s .*anon_inode:bpf-map/.test(l));
    t.ok(counterMaps.length >= 1, `the counters are mapped read-only into the process (${counterMaps.length} read-only bpf-map mappings)`);
    t.same([...stats.attached].sort(), attached, 'stats lists the attached programs');
    // The other 32-bit paths' programs are the unavailable ones (on this CI host: fentry's, as its
    // kernel gives BPF no trampolines; on most distribution kernels: the raw syscall pair).
    const others = (Object.keys(COMPAT_PATHS) as (keyof typeof COMPAT_PATHS)[]).filter((p) => p !== path).flatMap((p) => COMPAT_PATHS[p]);
    t.same([...stats.unavailable].sort(), others.sort(), `and only the other 32-bit paths' programs are unavailable (${path} in use)`);

    tracer.close();
    tracer.close();
    t.same(bpfProgIds(process.pid).filter((id) => !baseline.has(id)), [], 'close releases every program fd');
    await waitFor(() => !ours.some(progLoaded), 'the programs to be unloaded');
    t.pass('no program of ours remains loaded');
    for (const [method, call] of [['attach', () => tracer.attach()], ['start', () => tracer.start(() => {})], ['stats', () => tracer.stats()]] as const) {
      const err = thrown(call);
      t.equal(err.message, `${method}: tracer is closed`, `${method} after close says the tracer is closed`);
      t.equal(err.code, 'ERR_TRACER_CLOSED', `${method} after close has code ERR_TRACER_CLOSED`);
    }
  });

  t.test('ringbufWaitingBytes: what the kernel wrote and delivery has not consumed', async (t) => {
    const tracer = open();
    t.teardown(() => tracer.close());
    tracer.attach();
    // Attached, delivery not started: every exec on the machine stays in the ring.
    const empty = tracer.ringbufWaitingBytes();
    const pids = Array.from({ length: 20 }, () => spawnSync('/bin/true').pid);
    const waiting = tracer.ringbufWaitingBytes();
    // A record of /bin/true is its header plus the filename and argv, over 100 bytes.
    t.ok(waiting - empty >= 20 * 100, `20 execs wait in the ring (${empty} → ${waiting} bytes)`);
    const seen = new Set<number>();
    tracer.start((batch, length) => {
      for (const pid of pidsOf(batch.subarray(0, length))) seen.add(pid);
    });
    await waitFor(() => pids.every((pid) => seen.has(pid)), 'the 20 records delivered');
    await waitFor(() => tracer.ringbufWaitingBytes() < waiting - empty, 'the waiting bytes to fall');
    t.pass(`delivery consumed them (${tracer.ringbufWaitingBytes()} bytes waiting now)`);
    tracer.close();
    t.match(thrown(() => tracer.ringbufWaitingBytes()), { code: 'ERR_TRACER_CLOSED' }, 'closed: it throws like every method');
  });

  t.test('writeScope takes one copy of the slots; programIds names each attached program', async (t) => {
    const tracer = open();
    t.teardown(() => tracer.close());
    const attached = tracer.attach();
    const ids = tracer.programIds();
    t.same(Object.keys(ids).sort(), [...attached].sort(), 'an id for every attached program');
    t.equal(new Set(Object.values(ids)).size, attached.length, 'distinct ids');
    t.ok(Object.values(ids).every((id) => Number.isInteger(id) && id > 0), 'the kernel\'s ids, read at attach');
    const slots = Buffer.alloc(2048 * 16);
    t.doesNotThrow(() => tracer.writeScope(slots, 0), 'an empty table');
    t.match(thrown(() => tracer.writeScope(Buffer.alloc(16), 0)), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'slots must be a Buffer of 32768 bytes' }, 'a Buffer of the wrong size is refused');
    t.match(thrown(() => tracer.writeScope(slots, 2049)), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, 'more entries than slots is refused');
    tracer.close();
    t.match(thrown(() => tracer.writeScope(slots, 0)), { code: 'ERR_TRACER_CLOSED' }, 'closed: it throws like every method');
    t.match(thrown(() => tracer.programIds()), { code: 'ERR_TRACER_CLOSED' }, 'so does programIds');
  });

  t.test('cgroupStats copies every possible CPU\'s table of counts by cgroup', async (t) => {
    const tracer = open();
    t.teardown(() => tracer.close());
    tracer.attach();
    const possible = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',').reduce((n, range) => {
      const [a, b] = range.split('-').map(Number) as [number, number?];
      return n + (b === undefined ? 1 : b - a + 1);
    }, 0);
    const tables = tracer.cgroupStats();
    t.equal(tables.length, possible * CGROUP_STATS_SIZE, `${possible} tables of ${CGROUP_STATS_SIZE} bytes`);
    t.not(tracer.cgroupStats().buffer, tables.buffer, 'a copy each time');
    tracer.close();
    t.match(thrown(() => tracer.cgroupStats()), { code: 'ERR_TRACER_CLOSED' }, 'closed: it throws like every method');
  });

  t.test('one delivery Buffer, reused: grown for a batch that does not fit, replaced when detached', async (t) => {
    const tracer = open();
    t.teardown(() => tracer.close());
    tracer.attach();
    const calls: { buffer: Buffer; length: number; pids: number[]; ppids: number[] }[] = [];
    let detach = false;
    tracer.start((batch, length) => {
      const records = batch.subarray(0, length);
      calls.push({ buffer: batch, length, pids: pidsOf(records), ppids: fieldOf(records, PPID_OFFSET) });
      // A consumer that transfers the memory away: the addon must not write there again.
      if (detach) structuredClone(batch.buffer, { transfer: [batch.buffer] });
    });
    // 300 execs with 1 KiB of argv while the loop is blocked: one batch beyond the first 64 KiB.
    const loop = `i=0; while [ $i -lt 300 ]; do /bin/true ${'y'.repeat(1024)}; i=$((i+1)); done`;
    const blocked = spawnSync('/bin/sh', ['-c', loop]);
    const children = (pid: number) => calls.reduce((n, c) => n + c.ppids.filter((p) => p === pid).length, 0);
    const seen = (pid: number) => calls.some((c) => c.pids.includes(pid));
    await waitFor(() => children(blocked.pid) >= 300, '300 records');
    const big = calls.find((c) => c.ppids.includes(blocked.pid));
    t.ok(big !== undefined && big.length > 64 * 1024 && big.buffer.length >= big.length, `the large batch fits a grown Buffer (${big?.length} of ${big?.buffer.length} bytes)`);
    t.ok(calls.every((c) => c.length > 0 && c.length % 8 === 0 && c.length <= c.buffer.length), 'every call has whole records within the Buffer');
    for (let i = 0; i < 2; i++) {
      const child = spawnSync('/bin/true');
      await waitFor(() => seen(child.pid), `the record of pid ${child.pid}`);
    }
    const after = calls.slice(calls.indexOf(big as (typeof calls)[number]));
    t.ok(after.length >= 3 && after.every((c) => c.buffer === big?.buffer), `the ${after.length} batches from then on come in that same Buffer`);
    detach = true;
    const one = spawnSync('/bin/true');
    await waitFor(() => seen(one.pid), `the record of pid ${one.pid}`);
    detach = false;
    t.equal(big?.buffer.buffer.byteLength, 0, 'JS detached the Buffer (its memory is gone from JS)');
    const two = spawnSync('/bin/true');
    await waitFor(() => seen(two.pid), `the record of pid ${two.pid} after the detach`);
    const last = calls.at(-1);
    t.ok(last !== undefined && last.buffer !== big?.buffer && last.buffer.length >= last.length, 'the next batch comes in a new Buffer, not written into the detached memory');
  });

  t.test('close() from inside the callback stops delivery', async (t) => {
    const tracer = open();
    tracer.attach();
    let calls = 0;
    tracer.start(() => {
      calls++;
      tracer.close();
    });
    spawnSync('/bin/true');
    await waitFor(() => calls > 0, 'the first batch');
    spawnSync('/bin/true');
    await new Promise((r) => setTimeout(r, 200));
    t.equal(calls, 1, 'no batch arrives after close');
    t.match(thrown(() => tracer.stats()), { code: 'ERR_TRACER_CLOSED' }, 'the tracer is closed');
  });

  t.test('wake-up policy: a storm arrives in few batches, a lone exec within the flush interval', async (t) => {
    const run = async (extra: Record<string, unknown>) => {
      const tracer = open(extra);
      t.teardown(() => tracer.close());
      tracer.attach();
      const batches: Buffer[] = [];
      tracer.start((batch, length) => batches.push(Buffer.from(batch.subarray(0, length))));
      const loop = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' });
      const fromLoop = () => batches.filter((b) => fieldOf(b, PPID_OFFSET).includes(loop.pid as number));
      const records = () => fromLoop().reduce((n, b) => n + fieldOf(b, PPID_OFFSET).filter((p) => p === loop.pid).length, 0);
      await waitFor(() => records() >= 300, '300 records');
      const storm = fromLoop().length;
      const started = Date.now();
      const lone = spawnSync('/bin/true');
      await waitFor(() => batches.some((b) => pidsOf(b).includes(lone.pid)), `the record of pid ${lone.pid}`);
      tracer.close();
      return { storm, lone: Date.now() - started };
    };
    const everyRecord = await run({ wakeupBytes: 0 });
    const threshold = await run({ wakeupBytes: 1 << 16, flushIntervalMs: 100 });
    t.comment(`300 execs: ${everyRecord.storm} batches waking per record, ${threshold.storm} with a 64 KiB threshold`);
    t.ok(threshold.storm < everyRecord.storm, 'a wake-up threshold delivers a storm in fewer batches');
    t.ok(threshold.lone < 1000, `a lone exec below the threshold still arrives, by the flush timer (${threshold.lone} ms)`);
  });

  t.test('wake-up policy: after a quiet spell, a lone exec wakes delivery at once, not at the next flush', async (t) => {
    // A flush interval of a second: the kernel's quiet spell is half of it. Left to the timer,
    // each exec below would arrive up to a second after its spawn, half a second on average.
    const QUIET_NS = 500_000_000n;
    const tracer = open({ wakeupBytes: 1 << 16, flushIntervalMs: 1000 });
    t.teardown(() => tracer.close());
    tracer.attach();
    // Only this test's execs make records, so that the kernel is quiet when the test is: they run
    // in a cgroup of their own, and every other cgroup is out of scope (the root for itself, the
    // cgroups under it with their subtrees, listed again before each exec for those made since).
    const mine = join(cgroup2Root(), `execwatch-quiet-${process.pid}`);
    makeCgroup(mine);
    t.teardown(() => rmdirSync(mine));
    execHelper(); // compiled now, not in the first exec's time
    // Every record, of any kind, with its boot_ns (the first field of each), and when it arrived.
    const records: { stamp: bigint; pid: number | null; at: number }[] = [];
    tracer.start((batch, length) => {
      const at = performance.now();
      for (const r of recordsOf(batch, length)) records.push({ stamp: batch.readBigUInt64LE(r.at), pid: r.kind === 0 ? batch.readUInt32LE(r.at + PID_OFFSET) : null, at });
    });
    const delays: number[] = [];
    for (let attempt = 0; attempt < 10 && delays.length < 3; attempt++) {
      scopeOnly(tracer, [mine]);
      // Past the quiet spell; left to the timer, the exec would wait about 400 ms more.
      await waitFor(() => performance.now() - (records.at(-1)?.at ?? 0) > 600, 'no record for 600 ms');
      const started = performance.now();
      const lone = inCgroup(mine, ['/bin/true', 'true']);
      await finished(lone);
      await waitFor(() => records.some((r) => r.pid === lone.pid), `the record of pid ${lone.pid}`, 5_000);
      const own = records.find((r) => r.pid === lone.pid) as (typeof records)[number];
      // A record within the spell before it (of a cgroup made since the table was written): the
      // kernel rightly left this one to the timer; no sample, tried again.
      const before = records.reduce((latest, r) => (r.stamp < own.stamp && r.stamp > latest ? r.stamp : latest), 0n);
      if (own.stamp - before > QUIET_NS) delays.push(own.at - started);
    }
    t.equal(delays.length, 3, 'three execs that followed a quiet spell of the kernel');
    t.ok(delays.every((ms) => ms < 200), `each arrived within 200 ms of its spawn, the flush interval being 1000 ms (${delays.map((ms) => ms.toFixed(0)).join(', ')} ms)`);
  });

  t.test('a full ring: an exit that finds no room is counted lost for the cgroup of its process', async (t) => {
    // The smallest ring, never read (the tracer is not started), and only two cgroups in scope: a
    // sleeper's exec finds room, then a filler's execs fill the ring, then the sleeper exits. The
    // sleeper's cgroup name is long (200 bytes), so that its exit record (~290 bytes) is larger
    // than the filler's short execs (~200), and cannot fit in what the last of them left.
    const tracer = open({ ringbufBytes: 1 << 16 });
    t.teardown(() => tracer.close());
    tracer.attach();
    const sleeper = join(cgroup2Root(), `execwatch-lost-sleeper-${process.pid}-`.padEnd(200, 'x'));
    const filler = join(cgroup2Root(), `execwatch-lost-filler-${process.pid}`);
    for (const dir of [sleeper, filler]) {
      makeCgroup(dir);
      t.teardown(() => rmdirSync(dir));
    }
    scopeOnly(tracer, [sleeper, filler]);
    const helper = execHelper();
    const sleeping = inCgroup(sleeper, ['/bin/sleep', 'sleep', '60']);
    const ended = new Promise((resolve) => sleeping.on('close', resolve));
    t.teardown(() => sleeping.kill('SIGKILL'));
    await waitFor(() => tracer.ringbufWaitingBytes() > 0, "the sleeper's exec record in the ring");
    await finished(inCgroup(filler, [helper, 'exec-helper', 'burst', '400', '1', '/bin/true', 'true']));
    t.ok(tracer.stats().counters.ringbuf_full > 0, `the filler's execs overflowed the ring (${tracer.stats().counters.ringbuf_full} lost)`);
    sleeping.kill('SIGKILL');
    // The exit program ran before the sleeper's parent saw it end.
    await ended;
    const growth = new CgroupStatsReader().read(tracer.cgroupStats());
    const lostOf = (dir: string) => growth.find((g) => g.cgroupId === String(statSync(dir).ino))?.lost ?? 0;
    t.equal(lostOf(sleeper), 1, "the sleeper's cgroup: one lost, its exit (its exec had room)");
    t.ok(lostOf(filler) > 0, `the filler's cgroup: its execs that found no room (${lostOf(filler)})`);
    t.equal(lostOf(sleeper) + lostOf(filler), tracer.stats().counters.ringbuf_full, 'every loss charged to one of the two');
  });

  t.test('argvMaxBytes reaches the kernel through .rodata', async (t) => {
    const ARGV_LEN_OFFSET = 56;
    const tracer = open({ argvMaxBytes: 16 });
    t.teardown(() => tracer.close());
    tracer.attach();
    const batches: Buffer[] = [];
    tracer.start((batch, length) => batches.push(Buffer.from(batch.subarray(0, length))));
    const child = spawnSync('/bin/true', ['x'.repeat(100)]);
    const ours = () => batches.flatMap((b) => {
      const pids = pidsOf(b);
      const lens = fieldOf(b, ARGV_LEN_OFFSET);
      return pids.flatMap((pid, i) => (pid === child.pid ? [lens[i] as number] : []));
    });
    await waitFor(() => ours().length > 0, `the record of pid ${child.pid}`);
    t.ok(ours().every((len) => len > 0 && len <= 16), `argv was cut to the 16-byte budget (argv_len ${ours().join()})`);
  });

  t.test('the environment cleanup hook detaches a Worker tracer', async (t) => {
    const baseline = new Set(bpfProgIds(process.pid));
    // The worker counts for itself: once its script ends it is torn down before a message lands.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { readdirSync, readFileSync } = require('node:fs');
       const progFds = () => readdirSync('/proc/self/fdinfo').filter((fd) => {
         try { return /^prog_id:/m.test(readFileSync('/proc/self/fdinfo/' + fd, 'utf8')); } catch { return false; }
       }).length;
       const before = progFds();
       const tracer = new (require(workerData.addon).Tracer)(workerData.options);
       tracer.attach();
       tracer.start(() => {});
       parentPort.postMessage(progFds() - before);`,
      { eval: true, workerData: { addon: nativeAddonPath(), options: { objectPath, ...OPTIONS } } },
    );
    let held = 0;
    worker.on('message', (n: number) => (held = n));
    const exitCode = await new Promise<number>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', resolve);
    });
    t.ok(held >= CORE_PROGRAMS.length, `the worker's tracer held its program fds (${held})`);
    t.equal(exitCode, 0, 'a worker with a started tracer ends by itself');
    t.same(bpfProgIds(process.pid).filter((id) => !baseline.has(id)), [], 'its environment teardown closed every program fd');
  });

  const runNode = (args: string[], script: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [...args, '--input-type=module', '-e', script], {
        env: { ...process.env, ADDON: nativeAddonPath(), OBJECT: objectPath, NODE_OPTIONS: '' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const prelude = `import { createRequire } from 'node:module';
    import { spawnSync } from 'node:child_process';
    import { readdirSync, readFileSync } from 'node:fs';
    const b = createRequire(import.meta.url)(process.env.ADDON);
    const open = () => new b.Tracer({ objectPath: process.env.OBJECT, argvMaxBytes: 4096, ringbufBytes: 1 << 20 });
    const progFds = () => readdirSync('/proc/self/fdinfo').filter((fd) => {
      try { return /^prog_id:/m.test(readFileSync('/proc/self/fdinfo/' + fd, 'utf8')); } catch { return false; }
    }).length;`;

  t.test('a started tracer does not keep a process alive', async (t) => {
    const started = Date.now();
    const run = await runNode([], `${prelude}
      const tracer = open();
      tracer.attach();
      tracer.start(() => {});
      process.on('exit', () => console.log('exited'));`);
    t.equal(run.code, 0, `the process exits by itself with status 0 (${run.stderr})`);
    t.equal(run.stdout.trim(), 'exited', 'through a normal exit');
    t.ok(Date.now() - started < 10_000, 'promptly');
  });

  t.test('a throwing callback is an uncaught exception', async (t) => {
    const run = await runNode([], `${prelude}
      const tracer = open();
      tracer.attach();
      tracer.start(() => { throw new Error('boom from onBatch'); });
      process.on('uncaughtException', (err) => { console.log('uncaught: ' + err.message); tracer.close(); });
      spawnSync('/bin/true');
      setTimeout(() => {}, 2000);`);
    t.equal(run.code, 0, `the process survives through its handler (${run.stderr})`);
    t.equal(run.stdout.trim(), 'uncaught: boom from onBatch', 'the error reaches uncaughtException, once');
    const unhandled = await runNode([], `${prelude}
      const tracer = open();
      tracer.attach();
      tracer.start(() => { throw new Error('boom without handler'); });
      spawnSync('/bin/true');
      setTimeout(() => {}, 2000);`);
    t.equal(unhandled.code, 1, 'without a handler the process exits 1, as for any uncaught error');
    t.match(unhandled.stderr, /Error: boom without handler/, 'and prints the error');
  });

  t.test('the finalizer releases a dropped tracer', async (t) => {
    const run = await runNode(['--expose-gc'], `${prelude}
      const before = progFds();
      (() => { open().attach(); })();
      const attached = progFds() - before;
      for (let i = 0; i < 10 && progFds() > before; i++) {
        globalThis.gc();
        await new Promise((r) => setImmediate(r));
      }
      console.log(JSON.stringify({ attached, left: progFds() - before }));`);
    const fds = JSON.parse(run.stdout) as { attached: number; left: number };
    t.ok(fds.attached >= CORE_PROGRAMS.length, `the tracer held program fds (${fds.attached}) ${run.stderr}`);
    t.equal(fds.left, 0, 'garbage collection closed them all');
  });
});
