// The exec-state map (issue 13, item 4): a plain hash sized from the CPU count, and no entry left
// behind by any way an exec can end, after 100,000 of them.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultBpfObjectPath, loadNativeBinding } from '../src/capture/native.js';
import { Tracer } from '../src/capture/tracer.js';
import type { ExecEvent } from '../src/events/schema.js';
import { bpfMapIds, ensureTracefs, execStorm, kernelTest, marker, waitFor } from './helpers/kernel.js';

/** CPUs the kernel may ever bring up, from /sys/devices/system/cpu/possible ("0-63", "0,2-3"). */
function possibleCpus(): number {
  return readFileSync('/sys/devices/system/cpu/possible', 'utf8')
    .trim()
    .split(',')
    .map((range) => range.split('-').map(Number))
    .reduce((n, [lo, hi]) => n + (hi ?? lo ?? 0) - (lo ?? 0) + 1, 0);
}

interface MapInfo {
  id: number;
  type: string;
  name: string;
  max_entries: number;
}

const bpftool = <T>(...args: string[]): T =>
  JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 })) as T;

t.test('exec_state on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const storm = execStorm();
  let successes = 0;
  let failures = 0;
  let badElfFailures = 0;
  const m = marker('state');
  const mFull = marker('full');
  const mFullOk = marker('full-ok');
  const full: ExecEvent[] = [];
  const dir = t.testdir({});
  const missing = join(dir, 'missing');
  // Its exec dies after the point of no return: the event names it only by comm (the file's name).
  const badElf = join(dir, `bad${Math.random().toString(36).slice(2, 9)}`);
  execFileSync(storm, ['badelf', badElf]);
  const tracer = new Tracer(
    loadNativeBinding(),
    // A big ring: 100,000 events on two busy CPUs must not overflow it.
    { objectPath: defaultBpfObjectPath(), argvMaxBytes: 256, ringbufBytes: 64 << 20, node: 'test-node' },
    (e) => {
      if (e.kind !== 'exec') return;
      if (e.argv.includes(mFull) || e.argv.includes(mFullOk)) full.push(e);
      if (e.comm === badElf.slice(dir.length + 1) && e.retval < 0) badElfFailures += 1;
      else if (!e.argv.includes(m)) return;
      else if (e.retval === 0 && e.filename === storm && e.argv[1] === 'noop') successes += 1;
      else if (e.retval === -2 && e.filename === missing) failures += 1;
    },
    (err) => t.fail(`the sink threw: ${String(err)}`),
  );
  tracer.start();
  t.teardown(() => tracer.close());

  const maps = bpfMapIds(process.pid).map((id) => bpftool<MapInfo>('map', 'show', 'id', String(id)));
  const state = maps.find((map) => map.name === 'exec_state');
  if (!state) throw new Error('no exec_state map among the maps this process holds');
  const entries = () => bpftool<unknown[]>('map', 'dump', 'id', String(state.id)).length;

  t.test('a plain hash, sized from the CPU count', async (t) => {
    t.equal(state.type, 'hash', 'BPF_MAP_TYPE_HASH, not an LRU that evicts live entries');
    t.equal(state.max_entries, Math.max(32768, 1024 * possibleCpus()), 'max(32768, 1024 per possible CPU) entries');
  });

  t.test('an exec that finds the map full is counted: lost if it fails, reported if it succeeds', async (t) => {
    // The helper fills the map with keys no task_struct can have (kernel addresses are above
    // 2^63) until the kernel refuses one, and execs at once: execs of the machine free their
    // entries at any moment, so the fill is redone right before each of ours.
    const clear = () => execFileSync(storm, ['clear', String(state.id), String(state.max_entries)]);
    t.teardown(clear);
    const failed = join(dir, 'missing-when-full');
    const before = tracer.stats().counters.state_map_full;
    const seen = () => full.filter((e) => e.argv.includes(mFull) && e.filename === failed);
    const tries = 20;
    for (let i = 0; i < tries; i += 1) spawnSync(storm, ['full', String(state.id), failed, mFull], { stdio: 'ignore' });
    clear();
    spawnSync(storm, ['full', String(state.id), storm, 'noop', mFullOk], { stdio: 'ignore' });
    clear();
    await waitFor(() => full.some((e) => e.argv.includes(mFullOk)), 'the successful exec made while the map was full');
    const lost = tries - seen().length;
    const counted = tracer.stats().counters.state_map_full - before;
    t.ok(lost > 0, `${lost} of ${tries} failed execs found the map full and were not delivered`);
    t.ok(counted >= lost, `each of them was counted (state_map_full grew by ${counted}, other execs of the machine included)`);
    t.equal(full.find((e) => e.argv.includes(mFullOk))?.retval, 0, 'a successful exec is reported all the same');
    await waitFor(() => entries() === 0, 'an empty exec_state map again', 10_000).catch(() => {});
  });

  t.test('100,000 execs of every kind leave no entry behind', async (t) => {
    const rounds = 9804; // per worker: 5.1 execs a round, 2 workers
    const fullBefore = tracer.stats().counters.state_map_full;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(storm, ['run', String(rounds), '2', m, missing, badElf], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`exec-storm exited ${code}`))));
    });
    const made = Number(out.trim());
    t.ok(made >= 100_000, `${made} execs made`);
    const expect = { successes: 2 * 2 * rounds, failures: 2 * 3 * rounds, badElf: 2 * Math.ceil(rounds / 10) };
    await waitFor(
      () => successes >= expect.successes && failures >= expect.failures && badElfFailures >= expect.badElf,
      'every event of the storm',
      60_000,
    ).catch(() => {}); // the counts below say what is missing
    t.equal(successes, expect.successes, 'successful execs, from main threads and from second threads');
    t.equal(failures, expect.failures, 'failed execve and execveat, from main threads and from second threads');
    t.equal(badElfFailures, expect.badElf, 'execs from a second thread that failed after the point of no return');
    const counters = tracer.stats().counters;
    t.equal(counters.state_map_full - fullBefore, 0, 'no exec found the map full');
    t.equal(counters.ringbuf_full, 0, 'no ring loss');
    // Other execs of the machine may be in flight at any moment: none may stay.
    await waitFor(() => entries() === 0, 'an empty exec_state map', 10_000).catch(() => {});
    t.equal(entries(), 0, 'no entry left in exec_state');
  });
});
