// The /proc scan that seeds the process table at start: a fake /proc tree for every case, and this
// machine's /proc for the ids.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { containerOf, parseStat, scanProcesses, stillRuns } from '../src/capture/proc-scan.js';
import { execIdOfTicks } from '../src/events/exec-id.js';

const scope = { node: 'n', bootId: '0'.repeat(32) };
const CONTAINER = 'c'.repeat(64);

/** /proc/PID/stat with the given name, parent and start time (field 22). */
const stat = (pid: number, comm: string, ppid: number, start: number) =>
  `${pid} (${comm}) S ${ppid} ${Array.from({ length: 17 }, () => '0').join(' ')} ${start} 0 0\n`;

t.test('parseStat: the name in parentheses whatever it holds, the parent, the start time', async (t) => {
  t.same(parseStat(stat(7, 'a) b (c', 1, 12345)), { comm: 'a) b (c', ppid: 1, startTicks: '12345' }, 'a name with parentheses and spaces');
  t.equal(parseStat('garbage'), null, 'no parentheses');
  t.equal(parseStat('1 (x) S'), null, 'cut short');
});

t.test('containerOf: the v2 line, else the memory controller\'s', async (t) => {
  t.equal(containerOf(`0::/kubepods.slice/kubepods-besteffort-pod1.slice/cri-containerd-${CONTAINER}.scope\n`), CONTAINER, 'cgroup v2');
  t.equal(containerOf(`12:pids:/x\n4:cpu,memory:/kubepods/besteffort/pod1/${CONTAINER}\n`), CONTAINER, 'cgroup v1 (cgroupfs driver)');
  t.equal(containerOf('0::/user.slice/user-0.slice/session-1.scope\n'), null, 'a host process');
  t.equal(containerOf(''), null, 'nothing');
});

t.test('scanProcesses: user-space processes with ids, parents, argv, exe and container', async (t) => {
  const root = t.testdir({
    proc: {
      1: { stat: stat(1, 'systemd', 0, 5), cmdline: '/sbin/init\0splash\0', cgroup: '0::/init.scope\n' },
      2: { stat: stat(2, 'kthreadd', 0, 6), cmdline: '', cgroup: '0::/\n' },
      3: { stat: stat(3, 'kworker/0:0', 2, 7), cmdline: '', cgroup: '0::/\n' },
      40: { stat: stat(40, 'app', 1, 900), cmdline: 'app\0--port\x0080\0', cgroup: `0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-${CONTAINER}.scope\n` },
      41: { stat: stat(41, 'orphan', 99, 901), cmdline: 'orphan\0', cgroup: '0::/x.scope\n' },
      42: { stat: 'gone', cmdline: 'x\0' },
      43: { stat: stat(43, 'vanished', 1, 902) },
      44: { cmdline: 'no-stat\0' },
      45: { stat: stat(45, 'zombie', 1, 903), cmdline: '' },
      self: { stat: 'not a pid' },
    },
  });
  const found = scanProcesses(scope, `${root}/`);
  t.same(found.map((p) => p.pid).sort((a, b) => a - b), [1, 40, 41, 45], 'kernel threads, unreadable and vanished processes left out');
  t.same(found.find((p) => p.pid === 45), {
    execId: execIdOfTicks(scope, 903, 45), parentExecId: execIdOfTicks(scope, 5, 1), pid: 45, comm: 'zombie', filename: '', argv: [], containerId: null,
  }, 'a zombie: no argv, no exe, no cgroup file');
  const app = found.find((p) => p.pid === 40);
  t.same(app, {
    execId: execIdOfTicks(scope, 900, 40),
    parentExecId: execIdOfTicks(scope, 5, 1),
    pid: 40,
    comm: 'app',
    filename: 'app',
    argv: ['app', '--port', '80'],
    containerId: CONTAINER,
  }, 'every field (no exe link here: argv[0] stands in)');
  t.equal(found.find((p) => p.pid === 1)?.parentExecId, null, 'pid 1 has no parent');
  t.equal(found.find((p) => p.pid === 41)?.parentExecId, null, 'a parent not in the scan: none');
});

t.test('this machine: this process, with its exe, under the id its stat gives', async (t) => {
  const found = scanProcesses(scope);
  const me = found.find((p) => p.pid === process.pid);
  const start = (parseStat(readFileSync('/proc/self/stat', 'utf8')) as { startTicks: string }).startTicks;
  t.equal(me?.execId, execIdOfTicks(scope, start, process.pid), 'the id from field 22');
  t.equal(me?.filename, process.execPath, 'the exe link');
});

t.test('stillRuns: a process runs while its pid has the same start time', async (t) => {
  const ticks = BigInt(parseStat(readFileSync('/proc/self/stat', 'latin1'))?.startTicks as string);
  t.ok(stillRuns(process.pid, ticks), 'this process');
  t.notOk(stillRuns(process.pid, ticks + 1n), 'another process of its pid (a pid reused)');
  t.notOk(stillRuns(4_194_305, 1n), 'a pid above any pid_max');
});
