// Shutdown and restart (issue 7, item 5) on the real kernel, with the execwatch command as a
// user runs it. "Loses nothing already read" means: every exec whose record reached the ring
// buffer before the programs were detached (so at least every exec that had finished when
// SIGTERM was sent) is printed by --log-events before the process exits.
import { spawn, spawnSync } from 'node:child_process';
import t from 'tap';
import { loggedEvents, startCommand, type RunningAgent } from './helpers/command.js';
import { bpfProgIds, ensureTracefs, execHelper, kernelTest, marker, stillLoaded, waitFor } from './helpers/kernel.js';

/** The logged execs of /usr/bin/true carrying `m` (the helper that made them carries it too). */
const trues = (agent: RunningAgent, m: string) => loggedEvents(agent.out(), m).filter((e) => e.argv[0] === '/usr/bin/true');

/** Sends SIGTERM and resolves with the exit code and how long the exit took, in ms. */
async function terminate(agent: RunningAgent): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  agent.child.kill('SIGTERM');
  const code = await agent.exited;
  return { code, ms: Date.now() - t0 };
}

t.test('shutdown and restart on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();

  t.test('SIGTERM right after a burst: every exec of it is printed before exit', async (t) => {
    const agent = await startCommand();
    const progs = bpfProgIds(agent.pid);
    t.ok(progs.length >= 5, `the agent holds its programs (${progs.length} ids)`);
    const m = marker('burst');
    const n = 2000;
    // The burst ends well inside one flush interval (25 ms) of the SIGTERM below: the last
    // records are still in the ring then, and only the drain at close delivers them.
    spawnSync(execHelper(), ['burst', String(n), '4', '/usr/bin/true', '/usr/bin/true', m]);
    const { code, ms } = await terminate(agent);
    t.equal(code, 0, 'exit 0');
    t.ok(ms < 2000, `detached within 2 s (${ms} ms)`);
    t.equal(trues(agent, m).length, n, `all ${n} execs are in the --log-events output`);
    t.same(await stillLoaded(progs), [], 'no program of ours is left loaded');
  });

  let restartAfter = 0;
  t.test('SIGTERM during an exec storm: detached within 2 s, nothing already read is lost', async (t) => {
    const agent = await startCommand();
    const progs = bpfProgIds(agent.pid);
    t.ok(progs.length >= 5, `the agent holds its programs (${progs.length} ids)`);
    const m = marker('storm');
    // One exec after another, each numbered, and the number printed once it has finished.
    const storm = spawn('/bin/sh', ['-c', `i=0; while :; do i=$((i+1)); /usr/bin/true ${m} $i || exit 1; echo $i; done`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let progress = '';
    storm.stdout.on('data', (d: Buffer) => (progress += d.toString()));
    const stormExited = new Promise((resolve) => storm.on('exit', resolve));
    await waitFor(() => trues(agent, m).length >= 500, 'the storm to be under way', 30_000);
    const finished = Number(progress.slice(0, progress.lastIndexOf('\n')).split('\n').pop());
    const { code, ms } = await terminate(agent);
    storm.kill('SIGKILL');
    await stormExited;

    t.equal(code, 0, 'exit 0');
    t.ok(ms < 2000, `detached within 2 s (${ms} ms)`);
    const seen = trues(agent, m).map((e) => Number(e.argv[2]));
    const distinct = new Set(seen);
    const last = Math.max(...seen);
    const missing = Array.from({ length: last }, (_, i) => i + 1).filter((i) => !distinct.has(i));
    t.ok(finished >= 500, `${finished} execs had finished when SIGTERM was sent`);
    t.ok(last >= finished, `every one of them is in the output (up to #${last})`);
    t.same(missing, [], 'and none between is missing');
    t.equal(seen.length, last, 'each exactly once');
    t.same(await stillLoaded(progs), [], 'no program of ours is left loaded');
    restartAfter = Date.now();
  });

  t.test('a restart right after is clean', async (t) => {
    const agent = await startCommand();
    t.comment(`started ${Date.now() - restartAfter} ms after the previous agent exited`);
    t.notMatch(agent.err(), /error|warn/i, `start-up says nothing is wrong: ${agent.err()}`);
    const m = marker('restart');
    spawnSync('/usr/bin/true', [m]);
    await waitFor(() => agent.out().includes(m), 'the exec in --log-events');
    t.equal(loggedEvents(agent.out(), m).length, 1, 'captures execs');
    t.equal((await terminate(agent)).code, 0, 'exit 0');
  });

  t.test('two agents on one node: each has its own programs and ring, both capture every exec', async (t) => {
    const [a, b] = await Promise.all([startCommand(['--node-name', 'agent-a']), startCommand(['--node-name', 'agent-b'])]);
    const [pa, pb] = [new Set(bpfProgIds(a.pid)), new Set(bpfProgIds(b.pid))];
    t.ok(pa.size >= 5 && pb.size >= 5, `each agent holds its programs (${pa.size} and ${pb.size} ids)`);
    t.same([...pa].filter((id) => pb.has(id)), [], 'no program is shared');
    const progs = [...pa, ...pb];
    const m = marker('two');
    const child = spawnSync('/usr/bin/true', [m]);
    t.equal(child.status, 0, 'the exec ran');
    await waitFor(() => a.out().includes(m) && b.out().includes(m), 'the exec in both outputs');
    const [ea, eb] = [loggedEvents<{ pid: number; node: string }>(a.out(), m), loggedEvents<{ pid: number; node: string }>(b.out(), m)];
    t.equal(ea.length, 1, 'the first agent saw it once');
    t.equal(eb.length, 1, 'the second agent saw it once');
    t.equal(ea[0]?.pid, eb[0]?.pid, 'the same process');
    t.same([ea[0]?.node, eb[0]?.node], ['agent-a', 'agent-b'], 'each under its own node name');
    const codes = await Promise.all([terminate(a), terminate(b)]);
    t.same(codes.map((c) => c.code), [0, 0], 'both exit 0');
    t.same(await stillLoaded(progs), [], 'no program of either is left loaded');
  });
});
