// The process table: ancestors from it, entries gone with their exits (an exited parent kept while
// a child lives), and a bound that holds under a storm.
import t from 'tap';
import { firstArguments, ProcessTable, type ProcessInfo } from '../src/events/processes.js';
import { execIdFor, makeHostEvent } from './helpers/events.js';

/** The exec of `pid` whose parent is `ppid`, delivered as `seq`. */
const exec = (pid: number, ppid: number, overrides = {}) =>
  makeHostEvent({ seq: pid, pid, execId: execIdFor(pid), parentExecId: execIdFor(ppid), comm: `c${pid}`, filename: `/bin/c${pid}`, argv: [`c${pid}`], ...overrides });

t.test('ancestors: nearest first, bounded, stopping at pid 1, at an unknown process, at the container\'s edge', async (t) => {
  const table = new ProcessTable({ maxEntries: 100 });
  for (const [pid, ppid] of [[1, 0], [10, 1], [20, 10], [30, 20]] as const) table.exec(exec(pid, ppid));
  const child = exec(40, 30);
  t.same(table.ancestors(child, 10).map((a) => a.pid), [30, 20, 10, 1], 'up to pid 1, which is listed');
  t.same(table.ancestors(child, 2).map((a) => a.pid), [30, 20], 'at most the number asked');
  t.same(table.ancestors(exec(41, 999), 4), [], 'an unknown parent: none');
  t.same(table.ancestors(child, 1)[0], { execId: execIdFor(30), pid: 30, comm: 'c30', filename: '/bin/c30', argv: ['c30'] }, 'each with its id, pid, comm, filename, argv');
  // A container: its first process (pid 50, under the runtime's shim 45) is the last listed.
  const inContainer = { containerId: 'k'.repeat(64) };
  table.exec(exec(45, 1));
  table.exec(exec(50, 45, inContainer));
  table.exec(exec(60, 50, inContainer));
  t.same(table.ancestors(exec(70, 60, inContainer), 10).map((a) => a.pid), [60, 50], 'stops at the container\'s first process');
});

t.test('exits: an entry leaves with its exit, or once its last child has left', async (t) => {
  const table = new ProcessTable({ maxEntries: 100 });
  table.exec(exec(10, 1));
  table.exec(exec(20, 10));
  t.equal(table.exit(execIdFor(10))?.seq, 10, 'the exit finds the exec\'s seq');
  t.equal(table.size, 2, 'the exited parent stays while its child lives');
  t.same(table.ancestors(exec(30, 20), 4).map((a) => a.pid), [20, 10], 'and still shows in the lineage');
  t.equal(table.exit(execIdFor(20))?.exited, true, 'the child exits');
  t.equal(table.size, 0, 'both gone');
  t.equal(table.exit(execIdFor(20)), undefined, 'a second exit finds nothing');
  // A chain of exited ancestors goes with the last child.
  for (const [pid, ppid] of [[1, 0], [2, 1], [3, 2]] as const) table.exec(exec(pid, ppid));
  table.exit(execIdFor(1));
  table.exit(execIdFor(2));
  t.equal(table.size, 3, 'exited grandparent and parent kept for the live child');
  table.exit(execIdFor(3));
  t.equal(table.size, 0, 'all three gone with it');
});

t.test('orphans: a parent that exits before its forked child execs stays for that child\'s lineage', async (t) => {
  const table = new ProcessTable({ maxEntries: 100 });
  table.exec(exec(1, 0));
  table.exec(exec(10, 1));
  // The shell 10 forked 20 and 21, then exited before either exec'd (its exit counts them).
  t.equal(table.exit(execIdFor(10), 2)?.exited, true, 'the shell exits with two orphans');
  t.same(table.ancestors(exec(20, 10), 4).map((a) => a.pid), [10, 1], 'the first orphan\'s exec: the shell and its parent');
  table.exec(exec(20, 10));
  table.exit(execIdFor(20));
  t.equal(table.get(execIdFor(10))?.orphans, 1, 'after the first orphan\'s exit, one left to wait for');
  t.same(table.ancestors(exec(21, 10), 4).map((a) => a.pid), [10, 1], 'the second one\'s exec, later still');
  table.exec(exec(21, 10));
  table.exit(execIdFor(21));
  t.equal(table.get(execIdFor(10)), undefined, 'gone once both have exited');
  t.equal(table.size, 1, 'only pid 1 left');
  // An orphan that exits before its parent's exit is seen: the kernel no longer counts it then.
  table.exec(exec(30, 1));
  table.exec(exec(31, 30));
  table.exit(execIdFor(31));
  table.exit(execIdFor(30), 0);
  t.equal(table.size, 1, 'nothing kept without orphans');
  // An orphan still running that had exec'd before its parent ended: kept for it, by both counts.
  table.exec(exec(40, 1));
  table.exec(exec(41, 40));
  table.exit(execIdFor(40), 1);
  table.exit(execIdFor(41));
  t.equal(table.size, 1, 'gone with it');
});

t.test('orphans that never exec end unseen: at most maxWaiting parents wait for them, the oldest going first', async (t) => {
  const table = new ProcessTable({ maxEntries: 100, maxWaiting: 2 });
  table.exec(exec(1, 0));
  for (const pid of [10, 11, 12]) {
    table.exec(exec(pid, 1));
    table.exit(execIdFor(pid), 1);
  }
  t.same([10, 11, 12].map((pid) => table.get(execIdFor(pid)) !== undefined), [false, true, true], 'the oldest stopped waiting and left');
  // A waiting parent whose exec'd child still lives stays for that child when pushed out.
  table.exec(exec(13, 1));
  table.exec(exec(23, 13));
  table.exit(execIdFor(13), 2);
  table.exec(exec(14, 1));
  table.exit(execIdFor(14), 1);
  table.exec(exec(15, 1));
  table.exit(execIdFor(15), 1);
  t.equal(table.get(execIdFor(13))?.orphans, 0, 'pushed out: waits no more');
  t.same(table.ancestors(exec(33, 23), 4).map((a) => a.pid), [23, 13, 1], 'but stays for its live child');
  table.exit(execIdFor(23));
  t.equal(table.get(execIdFor(13)), undefined, 'and leaves with it');
  t.equal(table.size, 3, 'pid 1 and the two parents still waiting');
});

t.test('another image of the same process replaces the entry, keeping its children', async (t) => {
  const table = new ProcessTable({ maxEntries: 100 });
  table.exec(exec(10, 1));
  table.exec(exec(20, 10));
  table.exec(exec(10, 1, { seq: 99, comm: 'again' }));
  t.equal(table.get(execIdFor(10))?.seq, 99, 'the latest exec\'s seq');
  t.equal(table.ancestors(exec(30, 20), 4)[1]?.comm, 'again', 'the current image in the lineage');
  // Reparented (the kernel gave it a new parent) between two images.
  table.exec(exec(5, 1));
  table.exec(exec(20, 5, { seq: 100 }));
  table.exit(execIdFor(10));
  t.equal(table.get(execIdFor(10)), undefined, 'the old parent, childless once its child moved, leaves with its exit');
  t.equal(table.exit(execIdFor(5))?.children, 1, 'the new parent stays for its child');
});

t.test('seeding from /proc: in any order, never over an exec event\'s entry', async (t) => {
  const table = new ProcessTable({ maxEntries: 100 });
  table.exec(exec(7, 1, { comm: 'fresh' }));
  const seen = (pid: number, ppid: number): ProcessInfo => ({ execId: execIdFor(pid), parentExecId: ppid === 0 ? null : execIdFor(ppid), pid, comm: `s${pid}`, filename: '', argv: ['x'.repeat(300)], containerId: null });
  table.seed([seen(3, 2), seen(2, 1), seen(1, 0), seen(7, 1)]);
  t.equal(table.get(execIdFor(7))?.ancestor.comm, 'fresh', 'the exec event\'s entry stays');
  t.same(table.ancestors(exec(4, 3), 5).map((a) => a.pid), [3, 2, 1], 'the seeded chain, linked');
  t.equal(table.get(execIdFor(3))?.ancestor.argv[0]?.length, 256, 'argv bounded');
  table.exit(execIdFor(1));
  t.equal(table.get(execIdFor(1))?.exited, true, 'a seeded parent with children stays after its exit');
  table.exit(execIdFor(2));
  table.exit(execIdFor(3));
  t.same([1, 2, 3].map((pid) => table.get(execIdFor(pid))), [undefined, undefined, undefined], 'the chain goes up to pid 1, which has no parent');
});

t.test('firstArguments: at most the budget, the last argument cut', async (t) => {
  t.same(firstArguments(['ab', 'cd', 'ef'], 3), ['ab', 'c'], 'cut inside the second');
  t.same(firstArguments(['ab', 'cd'], 4), ['ab', 'cd'], 'exactly the budget');
  t.same(firstArguments([], 4), [], 'none');
});

t.test('bounded: past maxEntries the oldest goes', async (t) => {
  const table = new ProcessTable({ maxEntries: 3 });
  for (const pid of [10, 11, 12, 13]) table.exec(exec(pid, 1));
  t.equal(table.size, 3, 'three held');
  t.equal(table.get(execIdFor(10)), undefined, 'the oldest went');
});

t.test('bounded: an entry the bound pushes out lets go of its parent and stops waiting for orphans', async (t) => {
  const table = new ProcessTable({ maxEntries: 4, maxWaiting: 1 });
  table.exec(exec(10, 1));
  table.exec(exec(20, 10));
  // 10 exits while its child 20 lives: kept, exited.
  table.exit(execIdFor(10));
  // 30 exits leaving an orphan: kept, waiting.
  table.exec(exec(30, 1));
  table.exit(execIdFor(30), 1);
  t.equal(table.size, 3, 'the exited parent, its child and the process waiting for its orphan');
  // The bound pushes out 10 (the oldest), then 20: 20's going no longer finds 10.
  table.exec(exec(40, 1));
  table.exec(exec(50, 1));
  t.equal(table.get(execIdFor(10)), undefined, 'the oldest entry went, exited parent or not');
  table.exec(exec(60, 1));
  t.equal(table.get(execIdFor(20)), undefined, 'then its child');
  // Next out is 30, the one waiting: its orphan's exec finds no lineage, and nothing breaks.
  table.exec(exec(70, 1));
  t.equal(table.get(execIdFor(30)), undefined, 'the waiting entry went too');
  t.same(table.ancestors(exec(31, 30), 4), [], 'its orphan has no lineage left');
  table.exec(exec(31, 30));
  t.equal(table.exit(execIdFor(31))?.exited, true, 'the orphan\'s exit finds its own entry');
  t.same([40, 50, 60, 70].map((pid) => table.get(execIdFor(pid)) !== undefined), [false, true, true, true], 'the orphan\'s exec pushed out 40; its exit left the other three');
  // Another process waits for an orphan: the one waiting before it went with the bound, not with this.
  table.exec(exec(80, 1));
  table.exit(execIdFor(80), 1);
  t.equal(table.get(execIdFor(80))?.orphans, 1, 'the new one waits for its orphan');
});

t.test('a storm of 100,000 processes leaves only the live ones', async (t) => {
  const table = new ProcessTable({ maxEntries: 65_536 });
  // 100 long-lived shells, each running 1,000 short children; every tenth child runs a grandchild.
  const live = new Set<number>();
  for (let shell = 0; shell < 100; shell += 1) {
    table.exec(exec(1_000_000 + shell, 1));
    live.add(1_000_000 + shell);
  }
  let pid = 2;
  let keptParents = 0;
  for (let i = 0; i < 100_000; i += 1, pid += 1) {
    const parent = 1_000_000 + (i % 100);
    table.exec(exec(pid, parent));
    if (i % 10 === 0) {
      table.exec(exec(pid + 5_000_000, pid));
      // The child exits before its own child: kept while the grandchild lives.
      table.exit(execIdFor(pid));
      if (table.get(execIdFor(pid))?.exited === true) keptParents += 1;
      table.exit(execIdFor(pid + 5_000_000));
    } else {
      table.exit(execIdFor(pid));
    }
    if (i === 50_000) t.ok(table.size <= 200, `mid-storm, the table holds the live processes and little more (${table.size})`);
  }
  t.equal(keptParents, 10_000, 'every exited parent stayed while its child lived');
  t.equal(table.size, live.size, `after the storm: exactly the ${live.size} live processes`);
  for (const shell of live) table.exit(execIdFor(shell));
  t.equal(table.size, 0, 'and none once they have exited too');
});

t.test('a storm of 100,000 processes whose parents exit before they exec: only the live ones stay', async (t) => {
  const table = new ProcessTable({ maxEntries: 65_536 });
  table.exec(exec(1, 0));
  // `sh -c 'cmd & exit'` 50,000 times: the shell exits leaving its fork, which then execs and ends.
  // Every hundredth shell also leaves a fork that never execs (its end is never seen).
  let pid = 2;
  let bounded = 0;
  for (let i = 0; i < 50_000; i += 1, pid += 2) {
    table.exec(exec(pid, 1));
    table.exit(execIdFor(pid), i % 100 === 0 ? 2 : 1);
    const orphan = exec(pid + 1, pid);
    if (table.ancestors(orphan, 4).map((a) => a.pid).join() !== `${pid},1`) t.fail(`orphan ${pid + 1}: lineage lost`);
    table.exec(orphan);
    table.exit(execIdFor(pid + 1));
    if (i === 25_000) bounded = table.size;
  }
  t.ok(bounded <= 1 + 251, `mid-storm, the table holds pid 1 and the shells still waiting for a fork that never execs (${bounded})`);
  t.equal(table.size, 1 + 500, 'after: pid 1 and the 500 shells waiting, under the bound');
  const small = new ProcessTable({ maxEntries: 65_536, maxWaiting: 100 });
  small.exec(exec(1, 0));
  for (let i = 0; i < 50_000; i += 1) {
    small.exec(exec(i + 2, 1));
    small.exit(execIdFor(i + 2), 1);
  }
  t.equal(small.size, 1 + 100, 'parents of forks that never exec: at most maxWaiting kept');
});
