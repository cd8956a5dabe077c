// Start-up requirement checks on fake /proc and /sys trees: one clear line per unmet requirement.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { checkRequirements, findMount, parseCapEff, parseKernelRelease, parseMountinfo } from '../src/capture/requirements.js';

const CAPS = {
  all: '000001ffffffffff',
  bpfAndPerfmon: '000000c000000000',
  bpfOnly: '0000008000000000',
  perfmonOnly: '0000004000000000',
  sysAdminOnly: '0000000000200000',
  none: '0000000000000000',
} as const;

const ROOT_FS = '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw';
const HYBRID_CGROUPS = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const UNIFIED_CGROUP = '31 23 0:28 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate';
const TRACEFS = '43 23 0:13 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime - tracefs tracefs rw';
const DEBUG_TRACEFS = '50 45 0:13 / /sys/kernel/debug/tracing rw,relatime - tracefs tracefs rw';

interface Tree {
  caps?: string | null;
  release?: string | null;
  btf?: boolean;
  mountinfo?: string | null;
}

/** A fake root: /proc/self/{status,mountinfo}, /proc/sys/kernel/osrelease, /sys/kernel/btf/vmlinux. */
function fakeRoot(t: Test, tree: Tree = {}): string {
  const { caps = CAPS.all, release = '6.18.44-fc-v669', btf = true, mountinfo = [ROOT_FS, HYBRID_CGROUPS, TRACEFS].join('\n') } = tree;
  const self: Record<string, string> = {};
  if (caps !== null) self.status = `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t${caps}\nCapEff:\t${caps}\n`;
  if (mountinfo !== null) self.mountinfo = `${mountinfo}\n`;
  return t.testdir({
    proc: { self, sys: { kernel: release === null ? {} : { osrelease: `${release}\n` } } },
    sys: { kernel: { btf: btf ? { vmlinux: 'BTF' } : {}, tracing: {} } },
  });
}

t.test('a complete, privileged host passes', async (t) => {
  const root = fakeRoot(t);
  const report = await checkRequirements({ root, uid: 0, mountTracefs: () => t.fail('must not mount') });
  t.same(
    report,
    { ok: true, problems: [], notes: [], cgroup2Mount: '/sys/fs/cgroup/unified', cgroup2Path: join(root, '/sys/fs/cgroup/unified'), tracefs: '/sys/kernel/tracing', kernelRelease: '6.18.44-fc-v669' },
    'nothing to report, and the kernel release read',
  );
});

t.test('privileges: CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN', async (t) => {
  const advice = "to load eBPF programs — run as root (sudo npm start), or in Kubernetes with the chart's securityContext";
  const cases = [
    ['all capabilities', CAPS.all, null],
    ['CAP_BPF and CAP_PERFMON', CAPS.bpfAndPerfmon, null],
    ['CAP_SYS_ADMIN alone', CAPS.sysAdminOnly, null],
    ['no capabilities', CAPS.none, `missing privileges: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) are required ${advice}`],
    ['CAP_BPF without CAP_PERFMON', CAPS.bpfOnly, `missing privileges: CAP_PERFMON (or CAP_SYS_ADMIN) is required ${advice}`],
    ['CAP_PERFMON without CAP_BPF', CAPS.perfmonOnly, `missing privileges: CAP_BPF (or CAP_SYS_ADMIN) is required ${advice}`],
  ] as const;
  for (const [name, caps, want] of cases) {
    const report = await checkRequirements({ root: fakeRoot(t, { caps }), uid: 1000 });
    t.same(report.problems, want === null ? [] : [want], name);
    t.equal(report.ok, want === null, `${name}: ok`);
  }
  const unreadable = await checkRequirements({ root: fakeRoot(t, { caps: null }), uid: 0 });
  t.same(unreadable.problems, ["cannot tell the process's capabilities from /proc/self/status (ENOENT)"], 'no status file');
  const noLine = fakeRoot(t);
  const status = join(noLine, 'proc/self/status');
  writeFileSync(status, 'Name:\tnode\n');
  t.same((await checkRequirements({ root: noLine, uid: 0 })).problems, ["cannot tell the process's capabilities from /proc/self/status (no CapEff line)"], 'no CapEff line');
});

t.test('kernel version: 5.8 or newer', async (t) => {
  const cases = [
    ['6.18.44-fc-v669', null],
    ['5.8.0', null],
    ['5.15.0-91-generic', null],
    ['10.0.0', null],
    ['5.4.0-150-generic', 'Linux 5.4.0-150-generic is too old: execwatch needs Linux 5.8 or newer (BPF ring buffer and CAP_BPF)'],
    ['4.19.0-xyz', 'Linux 4.19.0-xyz is too old: execwatch needs Linux 5.8 or newer (BPF ring buffer and CAP_BPF)'],
    ['5.7.19', 'Linux 5.7.19 is too old: execwatch needs Linux 5.8 or newer (BPF ring buffer and CAP_BPF)'],
    ['weird', 'unrecognised kernel release "weird": execwatch needs Linux 5.8 or newer (BPF ring buffer and CAP_BPF)'],
  ] as const;
  for (const [release, want] of cases) {
    const report = await checkRequirements({ root: fakeRoot(t, { release }), uid: 0 });
    t.same(report.problems, want === null ? [] : [want], release);
  }
  const unreadable = await checkRequirements({ root: fakeRoot(t, { release: null }), uid: 0 });
  t.same(unreadable.problems, ['cannot read the kernel version from /proc/sys/kernel/osrelease (ENOENT)'], 'no osrelease');
  t.equal(unreadable.kernelRelease, '', 'no kernel release when osrelease is unreadable');
  t.same(parseKernelRelease('6.18.44-fc-v669'), [6, 18], 'major and minor');
});

t.test('kernel BTF', async (t) => {
  const report = await checkRequirements({ root: fakeRoot(t, { btf: false }), uid: 0 });
  t.same(report.problems, ['kernel BTF is missing (/sys/kernel/btf/vmlinux): the kernel must be built with CONFIG_DEBUG_INFO_BTF=y'], 'names the config option');
});

t.test('tracefs: found, mounted by the agent, or a line saying which mount is missing', async (t) => {
  const debugOnly = await checkRequirements({ root: fakeRoot(t, { mountinfo: [ROOT_FS, DEBUG_TRACEFS].join('\n') }), uid: 0 });
  t.equal(debugOnly.tracefs, '/sys/kernel/debug/tracing', 'the debugfs location counts');
  t.same(debugOnly.problems, [], 'no problem');

  const root = fakeRoot(t, { mountinfo: ROOT_FS });
  const targets: string[] = [];
  const mounted = await checkRequirements({ root, uid: 0, mountTracefs: (target) => targets.push(target) });
  t.same(targets, [join(root, 'sys/kernel/tracing')], 'mounts at /sys/kernel/tracing under the root');
  t.same([mounted.ok, mounted.tracefs], [true, '/sys/kernel/tracing'], 'then it is there');
  t.ok(mounted.notes.includes('mounted tracefs read-only at /sys/kernel/tracing'), 'and says so');

  const bySysAdmin: string[] = [];
  await checkRequirements({ root: fakeRoot(t, { mountinfo: ROOT_FS, caps: CAPS.sysAdminOnly }), uid: 1000, mountTracefs: (x) => bySysAdmin.push(x) });
  t.equal(bySysAdmin.length, 1, 'CAP_SYS_ADMIN without uid 0 may mount too');

  const fix = 'mount -t tracefs tracefs /sys/kernel/tracing';
  const failures = [
    ['an errno', Object.assign(new Error('mount: Operation not permitted'), { code: 'EPERM', errno: 1 }), 'EPERM'],
    ['an Error without code', new Error('mount: boom'), 'mount: boom'],
    ['a non-Error', 'weird', 'weird'],
  ] as const;
  for (const [name, thrown, why] of failures) {
    const report = await checkRequirements({ root: fakeRoot(t, { mountinfo: ROOT_FS }), uid: 0, mountTracefs: () => {
      throw thrown;
    } });
    t.same(report.problems, [`tracefs is not mounted at /sys/kernel/tracing and could not be mounted (${why}): ${fix}`], `mount fails with ${name}`);
    t.equal(report.tracefs, null, `${name}: no tracefs`);
  }

  const unprivileged = await checkRequirements({ root: fakeRoot(t, { mountinfo: ROOT_FS, caps: CAPS.bpfAndPerfmon }), uid: 1000, mountTracefs: () => t.fail('must not try') });
  t.same(unprivileged.problems, [`tracefs is not mounted at /sys/kernel/tracing and execwatch is not privileged to mount it: ${fix}`], 'not privileged: no attempt');

  const noMounter = await checkRequirements({ root: fakeRoot(t, { mountinfo: ROOT_FS }), uid: 0 });
  t.same(noMounter.problems, [`tracefs is not mounted at /sys/kernel/tracing: ${fix}`], 'no mounter given');

  const noMountinfo = await checkRequirements({ root: fakeRoot(t, { mountinfo: null }), uid: 0 });
  t.same(noMountinfo.problems, [`tracefs is not mounted at /sys/kernel/tracing: ${fix}`], 'unreadable mountinfo: tracefs not found');
});

t.test('cgroup v2: found on unified and hybrid hosts, a note when absent', async (t) => {
  const cases = [
    ['hybrid', [ROOT_FS, HYBRID_CGROUPS, TRACEFS], '/sys/fs/cgroup/unified'],
    ['unified', [ROOT_FS, UNIFIED_CGROUP, TRACEFS], '/sys/fs/cgroup'],
    ['v1 only', [ROOT_FS, HYBRID_CGROUPS.split('\n').slice(0, 2).join('\n'), TRACEFS], null],
  ] as const;
  for (const [name, lines, want] of cases) {
    const root = fakeRoot(t, { mountinfo: lines.join('\n') });
    const report = await checkRequirements({ root, uid: 0 });
    t.equal(report.cgroup2Mount, want, `${name}: cgroup2 at ${want}`);
    t.equal(report.cgroup2Path, want === null ? null : join(root, want), `${name}: read under the root given`);
    t.equal(report.ok, true, `${name}: not fatal`);
    t.same(report.notes, want ? [] : ['no cgroup v2 mount in /proc/self/mountinfo: pods are resolved from the cgroup names the kernel reports only'], `${name}: notes`);
  }
});

t.test('every problem is reported, privileges first', async (t) => {
  const report = await checkRequirements({ root: fakeRoot(t, { caps: CAPS.none, release: '4.19.0-xyz', btf: false, mountinfo: ROOT_FS }), uid: 1000 });
  t.equal(report.ok, false, 'not ok');
  t.same(report.problems.map((p) => p.split(/[: ]/)[0]), ['missing', 'Linux', 'kernel', 'tracefs'], 'four lines, the privilege line first');
  t.ok(report.problems.every((p) => !p.includes('\n')), 'each problem is one line');
});

t.test('mountinfo parsing', async (t) => {
  const text = [
    '36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:2 - ext3 /dev/my\\134disk rw,errors=continue',
    'garbage line',
    '',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  t.same(
    parseMountinfo(text),
    [
      { mountPoint: '/mnt with space', fstype: 'ext3', source: '/dev/my\\disk' },
      { mountPoint: '/sys/fs/cgroup/unified', fstype: 'cgroup2', source: 'cgroup2' },
    ],
    'optional fields skipped, octal escapes decoded, bad lines ignored',
  );
  t.equal(findMount(text, 'ext3'), '/mnt with space', 'findMount by type');
  t.equal(findMount(text, 'tracefs'), null, 'null when absent');
  t.equal(parseCapEff('CapEff:\t000001ffffffffff\n'), 0x1ffffffffffn, 'CapEff in hex');
  t.equal(parseCapEff('CapEff:\t000001FFFFFFFFFF\n'), 0x1ffffffffffn, 'upper-case hex too');

  // The real host: whatever it has, the checks must agree with its own mountinfo.
  const real = await checkRequirements({ uid: 0, mountTracefs: () => {} });
  t.equal(real.cgroup2Mount, findMount(readFileSync('/proc/self/mountinfo', 'utf8'), 'cgroup2'), 'on this host, cgroup2 as mountinfo says');
  const defaultUid = await checkRequirements({ root: fakeRoot(t, { mountinfo: ROOT_FS, caps: CAPS.bpfAndPerfmon }) });
  const privileged = process.getuid?.() === 0;
  t.match(defaultUid.problems[0], privileged ? /^tracefs is not mounted at \/sys\/kernel\/tracing: / : /not privileged/, 'uid defaults to the process uid');
});
