#!/usr/bin/env node
// npm run test:kernels: the kernel matrix. For each kernel and cgroup layout below, boots Debian's
// own kernel package under qemu (software emulation: no KVM here) from an initramfs built from
// this checkout's build, laid out as the image's runtime stage, and runs the kernel test set
// (test/kernels/guest.mjs) inside; the host kernel runs the same set directly. Prints one table
// of cases by kernel and ends with "kernel matrix: N passed, N failed"; exits 1 on any failure.
//
//   npm run test:kernels [-- --only 6.12/v2] [-- --keep]     (root; after npm test or npm run build)
//
// Kernel packages are downloaded once into .cache/kernels/ (newest of each series the configured
// Debian sources offer); the initramfs is rebuilt every run (build/kernels/).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(root, '.cache', 'kernels');
const workDir = join(root, 'build', 'kernels');

/**
 * The matrix. Debian 12 ships 6.1 (its own series) and 6.12 (from bookworm's security updates);
 * no 5.x package is reachable from its sources, so 5.8-6.0 stay untested here (README). v1 means
 * cgroup v1 controllers mounted and no cgroup2 mount: the names then come only from the BPF
 * program's v1 fallback.
 */
const MATRIX = [
  { series: '6.1', layout: 'v2', pattern: /^linux-image-6\.1\.0-(\d+)-amd64$/ },
  { series: '6.12', layout: 'v2', pattern: /^linux-image-6\.12\.(\d+)\+deb12-amd64$/ },
  { series: '6.1', layout: 'v1', pattern: /^linux-image-6\.1\.0-(\d+)-amd64$/ },
];

/** Longest a guest may take from boot to power-off (a run takes ~1.5 min of emulation). */
const GUEST_TIMEOUT_MS = 8 * 60_000;

const { values: args } = parseArgs({ options: { only: { type: 'string' }, keep: { type: 'boolean', default: false } } });

function say(line) {
  console.error(`test:kernels: ${line}`);
}

function fail(line) {
  say(line);
  process.exit(1);
}

function sh(cmd, cmdArgs, opts = {}) {
  return execFileSync(cmd, cmdArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function preconditions() {
  if (process.getuid?.() !== 0) fail('needs root: qemu is not, but the host row loads BPF programs and the guest image holds root-only files');
  for (const tool of ['qemu-system-x86_64', 'cpio', 'bpftool', 'clang', 'gcc', 'dpkg-deb', 'apt-get']) {
    if (!which(tool)) fail(`${tool} is missing: run \`node scripts/setup.mjs --for test\` (it installs the test packages)`);
  }
  if (!existsSync('/bin/busybox') || !sh('file', ['-L', '/bin/busybox']).includes('statically linked')) {
    fail('/bin/busybox is not the static busybox: apt-get install busybox-static');
  }
  for (const built of ['dist/main.js', 'build/execwatch.bpf.o', 'native/build/Release/execwatch.node']) {
    if (!existsSync(join(root, built))) fail(`${built} is missing: run npm run build (or npm test) first`);
  }
}

/** The newest package of a series the apt sources offer (apt-get update once if none is listed). */
function kernelPackage(pattern) {
  const newest = () => {
    const names = sh('apt-cache', ['pkgnames', 'linux-image-6.']).split('\n').filter((n) => pattern.test(n));
    return names.sort((a, b) => Number(pattern.exec(b)[1]) - Number(pattern.exec(a)[1]))[0];
  };
  let name = newest();
  if (!name) {
    say('updating the apt package lists to find the kernel packages');
    sh('apt-get', ['update', '-qq']);
    name = newest();
  }
  if (!name) fail(`no package matches ${pattern} in the configured Debian sources`);
  return name;
}

/** The kernel image of a package, downloaded and extracted once into .cache/kernels/NAME/. */
function kernelImage(name) {
  const dir = join(cacheDir, name);
  const done = join(dir, 'vmlinuz');
  if (existsSync(done)) return done;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  say(`downloading ${name}`);
  sh('apt-get', ['download', '-qq', '-o', 'APT::Sandbox::User=root', name], { cwd: dir });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  sh('sh', ['-c', `dpkg-deb -x '${deb}' extracted && mv extracted/boot/vmlinuz-* vmlinuz.part && rm -rf extracted '${deb}' && mv vmlinuz.part vmlinuz`], { cwd: dir });
  return done;
}

/** Shared libraries a binary loads (ldd), the loader included. */
function librariesOf(binary) {
  return sh('ldd', [binary])
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter(Boolean);
}

/** Copies a file to the same absolute path under `rootfs` (symlinks resolved). */
function place(rootfs, path, as = path) {
  const target = join(rootfs, as);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(path, target);
  chmodSync(target, statSync(path).mode & 0o7777);
}

/** The guest's /init: mounts, the cgroup layout asked for on the kernel command line, the test set. */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
ip link set lo up
case " $(cat /proc/cmdline) " in
*" execwatch.cgroup=v1 "*)
  mount -t tmpfs cgroup /sys/fs/cgroup
  for c in memory pids cpu,cpuacct; do mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done ;;
*)
  mount -t cgroup2 cgroup2 /sys/fs/cgroup ;;
esac
node /app/test/kernels/guest.mjs --app /app --helper /usr/local/bin/exec-helper --exec32 /usr/local/bin/exec32 --compat fentry \
  --bpftool /usr/sbin/bpftool
echo "GUEST-EXIT $?"
poweroff -f
`;

/**
 * The initramfs: busybox, Node and the libraries, bpftool, the exec helpers (exec32 static: the
 * guest has no 32-bit libraries), and /app as the image lays it out.
 */
function buildInitramfs(helper, exec32) {
  const rootfs = join(workDir, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  for (const dir of ['proc', 'sys', 'dev', 'tmp', 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin']) mkdirSync(join(rootfs, dir), { recursive: true });
  place(rootfs, '/bin/busybox');
  writeFileSync(join(rootfs, 'init'), INIT, { mode: 0o755 });
  const node = process.execPath;
  const bpftool = which('bpftool');
  const addon = join(root, 'native/build/Release/execwatch.node');
  place(rootfs, node, '/usr/local/bin/node');
  place(rootfs, bpftool, '/usr/sbin/bpftool');
  place(rootfs, helper, '/usr/local/bin/exec-helper');
  place(rootfs, exec32, '/usr/local/bin/exec32');
  for (const lib of new Set([node, bpftool, addon, helper].flatMap(librariesOf))) place(rootfs, lib);
  // /lib64/ld-linux-x86-64.so.2 is the interpreter every binary names; Debian links it to /lib.
  if (!existsSync(join(rootfs, 'lib64/ld-linux-x86-64.so.2'))) place(rootfs, '/lib64/ld-linux-x86-64.so.2');

  // /app as the Dockerfile's runtime stage has it, plus the test set.
  const appDir = join(rootfs, 'app');
  for (const path of ['package.json', 'dist', 'src/http/page', 'build/execwatch.bpf.o', 'native/build/Release/execwatch.node', 'test/kernels/guest.mjs']) {
    cpSync(join(root, path), join(appDir, path), { recursive: true });
  }
  const production = sh('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root }).split('\n').filter((p) => p.startsWith(join(root, 'node_modules')));
  for (const dir of production) cpSync(dir, join(appDir, relative(root, dir)), { recursive: true, dereference: false, filter: (src) => !src.slice(dir.length).includes('/node_modules/') });

  const image = join(workDir, 'initramfs.cpio');
  sh('sh', ['-c', `cd '${rootfs}' && find . | cpio -o -H newc --quiet > '${image}'`]);
  return image;
}

/** Boots one kernel and collects the test set's lines; resolves with the parsed result. */
function boot(vmlinuz, initramfs, layout) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Two CPUs emulated by one host thread (thread=single), not one thread each: with a thread
    // each, a CPU once ran kernel code another had just patched (an int3 oops in 6.12's boot). One
    // thread makes every code change seen at once by both (guests took 73-133 s so, 62-105 s before).
    const qemu = spawn(
      'qemu-system-x86_64',
      ['-accel', 'tcg,thread=single', '-cpu', 'max', '-smp', '2', '-m', '2048', '-nodefaults', '-display', 'none', '-serial', 'stdio', '-no-reboot',
        '-kernel', vmlinuz, '-initrd', initramfs, '-append', `console=ttyS0 quiet panic=-1 execwatch.cgroup=${layout}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    qemu.stdout.on('data', (d) => (out += d));
    qemu.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n(killed after ${GUEST_TIMEOUT_MS / 1000} s)`;
      qemu.kill('SIGKILL');
    }, GUEST_TIMEOUT_MS);
    qemu.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parse(out), seconds: Math.round((Date.now() - started) / 1000), log: out });
    });
  });
}

/**
 * Why a guest that did not finish failed for the emulator's sake, not ours, or undefined. Under
 * emulation without KVM a CPU can stall long enough for the kernel's watchdog to report a soft
 * lockup (seen once in about five runs, while the agent detached its fentry programs at SIGTERM),
 * or the kernel can oops while it boots, before the test set has printed a line (seen once, with a
 * host thread per CPU: an int3 trap in sched_clock_cpu, see boot()). Such a guest is booted once
 * more; the first boot's last lines are printed, so that the failure is not hidden.
 */
function emulatorFailure(result) {
  if (result.done) return undefined;
  if (/soft lockup/.test(result.log)) return 'stalled (soft lockup)';
  if (result.kernel === undefined) return 'failed in the kernel before the test set started';
  return undefined;
}

/** The test set's lines, wherever they sit among the kernel's (serial lines end in \r\n). */
function parse(out) {
  const lines = out.split(/\r?\n/);
  const value = (tag) => lines.map((l) => new RegExp(`^${tag} (.*)$`).exec(l.trim())?.[1]).find((v) => v !== undefined);
  const cases = new Map();
  for (const line of lines) {
    const m = /^CASE (\S+) (PASS|FAIL) ?(.*)$/.exec(line.trim());
    if (m) cases.set(m[1], { ok: m[2] === 'PASS', detail: m[3] });
  }
  return { kernel: value('KERNEL'), layout: value('LAYOUT'), programs: value('PROGRAMS'), compat: value('COMPAT'), done: value('DONE') !== undefined, cases };
}

/** The host row: the same test set, run directly. */
function hostRun(helper, exec32) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(root, 'test/kernels/guest.mjs'), '--app', root, '--helper', helper, '--exec32', exec32], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', () => resolve({ ...parse(out), seconds: Math.round((Date.now() - started) / 1000), log: out }));
  });
}

preconditions();
mkdirSync(workDir, { recursive: true });
const helper = join(workDir, 'exec-helper');
sh('clang', ['-O2', '-Wall', '-pthread', '-o', helper, join(root, 'test/fixtures/exec-helper.c')]);
// A 32-bit (ia32) caller of exec, as test/helpers/kernel.ts builds it (gcc-multilib).
const exec32 = join(workDir, 'exec32');
sh('gcc', ['-m32', '-static', '-O2', '-Wall', '-o', exec32, join(root, 'test/fixtures/exec32.c')]);

const wanted = MATRIX.filter((m) => !args.only || args.only === `${m.series}/${m.layout}`);
const columns = [];
columns.push({ name: 'host', result: await hostRun(helper, exec32) });
if (wanted.length > 0) {
  const images = wanted.map((m) => kernelImage(kernelPackage(m.pattern)));
  say('building the initramfs');
  const initramfs = buildInitramfs(helper, exec32);
  say(`initramfs: ${Math.round(statSync(initramfs).size / 2 ** 20)} MiB`);
  for (const [i, m] of wanted.entries()) {
    say(`booting ${relative(cacheDir, dirname(images[i]))} with cgroup ${m.layout}`);
    let result = await boot(images[i], initramfs, m.layout);
    const why = emulatorFailure(result);
    if (why !== undefined) {
      say(`${m.series}/${m.layout}: the guest ${why} after ${result.seconds} s; its last lines:\n${result.log.split(/\r?\n/).filter((l) => l.trim() !== '').slice(-15).join('\n')}\nbooting it once more`);
      result = { ...(await boot(images[i], initramfs, m.layout)), firstBoot: `the first boot ${why} after ${result.seconds} s` };
    }
    columns.push({ name: `${m.series}/${m.layout}`, result });
  }
}

// The table: one row per case, one column per kernel; then what each column ran on.
const caseNames = [...new Set(columns.flatMap((c) => [...c.result.cases.keys()]))];
let passed = 0;
let failed = 0;
const rows = [['case', ...columns.map((c) => c.name)]];
for (const name of caseNames) {
  rows.push([name, ...columns.map((c) => {
    const r = c.result.cases.get(name);
    if (r?.ok) passed += 1;
    else failed += 1;
    return r === undefined ? 'missing' : r.ok ? 'pass' : 'FAIL';
  })]);
}
for (const c of columns) {
  // A guest that died before the end (panic, verifier error, timeout) fails as a whole.
  if (!c.result.done) failed += 1;
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (r) => `| ${r.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
console.log(line(rows[0]));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows.slice(1)) console.log(line(r));
console.log('');
for (const c of columns) {
  const stalled = c.result.firstBoot === undefined ? '' : ` (booted twice: ${c.result.firstBoot})`;
  console.log(`${c.name}: kernel ${c.result.kernel ?? '?'}, cgroup ${c.result.layout ?? '?'}, programs ${c.result.programs ?? '?'}, ia32 execs by ${c.result.compat ?? '?'}, ${c.result.seconds} s${c.result.done ? '' : ', DID NOT FINISH'}${stalled}`);
}
for (const c of columns) {
  const bad = [...c.result.cases].filter(([, r]) => !r.ok);
  if (bad.length > 0 || !c.result.done) {
    console.log(`\n--- ${c.name}: ${bad.map(([n, r]) => `${n}: ${r.detail}`).join('\n') || 'no result'}`);
    if (!c.result.done) console.log(c.result.log.split(/\r?\n/).slice(-40).join('\n'));
  }
}
if (!args.keep) rmSync(join(workDir, 'rootfs'), { recursive: true, force: true });
console.log(`kernel matrix: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
