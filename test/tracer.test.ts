// The owner of the native tracer, with a fake binding: start and close, batches to events, and what
// happens when the native side or the pipeline fails.
import { PassThrough } from 'node:stream';
import t from 'tap';
import { sinkErrorReporter } from '../src/agent.js';
import type { NativeBinding, NativeCounters, NativeTracer, NativeTracerOptions } from '../src/capture/binding.js';
import { Tracer } from '../src/capture/tracer.js';
import type { ExecEvent } from '../src/events/schema.js';
import { encodeBatch, encodeCgroupStats, encodeRecord } from './helpers/records.js';

const PROGRAMS = ['handle_enter_execve', 'handle_exec'];

interface FakeNative extends NativeTracer {
  options: NativeTracerOptions;
  closes: number;
  deliver(batch: Buffer, length?: number): void;
  counters: NativeCounters;
  statsThrows: boolean;
}

function fakeBinding(opts: { attachThrows?: Error; offsetNs?: bigint; unavailable?: string[] } = {}) {
  const made: FakeNative[] = [];
  class Tracer implements FakeNative {
    closes = 0;
    counters: NativeCounters = { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
    statsThrows = false;
    #onBatch: ((batch: Buffer, length: number) => void) | null = null;
    #attached: string[] = [];
    constructor(readonly options: NativeTracerOptions) {
      made.push(this);
    }
    attach(): string[] {
      if (opts.attachThrows) throw opts.attachThrows;
      this.#attached = [...PROGRAMS];
      return this.#attached;
    }
    start(onBatch: (batch: Buffer, length: number) => void): void {
      this.#onBatch = onBatch;
    }
    deliver(batch: Buffer, length = batch.length): void {
      (this.#onBatch as (batch: Buffer, length: number) => void)(batch, length);
    }
    ringbufWaitingBytes(): number {
      return 0;
    }
    scopeWrites: { slots: Buffer; entries: number }[] = [];
    writeScope(slots: Buffer, entries: number): void {
      this.scopeWrites.push({ slots, entries });
    }
    /** What cgroupStats() returns: every CPU's table, as the addon copies them. */
    cgroupTables = Buffer.alloc(0);
    cgroupStats(): Buffer {
      return Buffer.from(this.cgroupTables);
    }
    programIds(): Record<string, number> {
      return Object.fromEntries(this.#attached.map((name, i) => [name, i + 1]));
    }
    stats() {
      if (this.statsThrows) throw new Error('stats: Bad file descriptor');
      // A fresh array each call, as the addon returns.
      return { counters: { ...this.counters }, attached: [...this.#attached], unavailable: [...(opts.unavailable ?? [])] };
    }
    close(): void {
      this.closes += 1;
      this.#attached = [];
    }
  }
  const binding: NativeBinding = {
    Tracer,
    bootTimeOffsetNs: () => opts.offsetNs ?? 0n,
    mountTracefs: () => {},
    dropCapabilities: () => ({ threads: 1, boundingSetCleared: true }),
    switchUser: () => {},
  };
  return { binding, made };
}

const OPTIONS = { objectPath: '/x/execwatch.bpf.o', argvMaxBytes: 4096, ringbufBytes: 1 << 20, cgroupRate: 1000, cgroupBurst: 2000, node: 'node-a' };
const noSinkError = (t: { fail: (message: string) => unknown }) => (err: unknown) => t.fail(`unexpected sink error: ${String(err)}`);

t.test('start opens the object with the options, attaches, and returns the programs', async (t) => {
  const { binding, made } = fakeBinding();
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  t.same(tracer.start(), PROGRAMS, 'the attached programs');
  t.same(made[0]?.options, { objectPath: '/x/execwatch.bpf.o', argvMaxBytes: 4096, ringbufBytes: 1 << 20, cgroupRate: 1000, cgroupBurst: 2000 }, 'native options');
  const { binding: unlimited, made: made2 } = fakeBinding();
  new Tracer(unlimited, { objectPath: '/x/execwatch.bpf.o', argvMaxBytes: 4096, ringbufBytes: 1 << 20, node: 'node-a' }, () => {}, noSinkError(t)).start();
  t.match(made2[0]?.options, { cgroupRate: 0, cgroupBurst: 1 }, 'without a rate: no limit');
  t.same(tracer.stats().attached, PROGRAMS, 'stats list them');
  t.same(tracer.attached, PROGRAMS, 'and so does attached, without a stats read');
  t.equal(tracer.stats().attached, tracer.attached, 'the very list attached returns: /metrics and /readyz agree');
  t.throws(() => tracer.start(), /already started/, 'a second start is refused');
  tracer.close();
  t.same(tracer.attached, [], 'nothing attached after close');
  t.throws(() => tracer.start(), /already started or closed/, 'a start after close is refused');
  t.equal(made.length, 1, 'only one native tracer was ever opened');
});

t.test('an attach failure closes the native tracer and surfaces the error', async (t) => {
  const failure = Object.assign(new Error('attach handle_exec: Operation not permitted'), { code: 'EPERM', errno: 1 });
  const { binding, made } = fakeBinding({ attachThrows: failure });
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  t.throws(() => tracer.start(), failure, 'the native error, unchanged');
  t.equal(made[0]?.closes, 1, 'the half-open tracer was closed');
  t.same(tracer.stats().attached, [], 'nothing reported attached');
  tracer.close();
  t.equal(made[0]?.closes, 1, 'closing again does not touch it');
});

t.test('each batch becomes events in order, stamped with the node and the delay', async (t) => {
  const offsetNs = 1_700_000_000_000_000_000n;
  const { binding, made } = fakeBinding({ offsetNs });
  const got: { event: ExecEvent; delay: number }[] = [];
  const tracer = new Tracer(binding, OPTIONS, (event, delay) => got.push({ event: event as ExecEvent, delay }), noSinkError(t));
  tracer.start();
  // Boot-time stamps half a second and two seconds before now.
  const nowBootNs = BigInt(Date.now()) * 1_000_000n - offsetNs;
  made[0]?.deliver(
    encodeBatch(
      { bootNs: nowBootNs - 500_000_000n, pid: 10, argv: ['a'] },
      { bootNs: nowBootNs - 2_000_000_000n, pid: 11, argv: ['b'] },
    ),
  );
  made[0]?.deliver(encodeRecord({ bootNs: nowBootNs, pid: 12 }));
  t.same(
    got.map((g) => [g.event.pid, g.event.node]),
    [
      [10, 'node-a'],
      [11, 'node-a'],
      [12, 'node-a'],
    ],
    'three events in kernel order (seq is given at delivery, after enrichment)',
  );
  t.ok(Math.abs((got[0]?.delay ?? 0) - 0.5) < 0.25, `delay of the first ≈ 0.5 s (${got[0]?.delay})`);
  t.ok(Math.abs((got[1]?.delay ?? 0) - 2) < 0.25, `delay of the second ≈ 2 s (${got[1]?.delay})`);
  t.ok(Math.abs(new Date(got[0]?.event.time as string).getTime() - (Date.now() - 500)) < 250, 'wall-clock time from the offset');
  tracer.close();
});

t.test('a reused delivery Buffer: only its first `length` bytes are records, and events keep nothing of it', async (t) => {
  const { binding, made } = fakeBinding();
  const got: ExecEvent[] = [];
  const tracer = new Tracer(binding, OPTIONS, (event) => got.push(event as ExecEvent), noSinkError(t));
  tracer.start();
  const fresh = encodeRecord({ pid: 21, argv: ['fresh', 'args'], filename: '/bin/fresh' });
  // The Buffer as the addon leaves it: this wake-up's record, then a stale one of an earlier wake-up.
  const reused = Buffer.concat([fresh, encodeRecord({ pid: 20, argv: ['stale'] })]);
  made[0]?.deliver(reused, fresh.length);
  t.same(got.map((e) => e.pid), [21], 'the stale record past `length` is not decoded');
  reused.fill(0x41);
  t.same([got[0]?.filename, got[0]?.argv, got[0]?.comm], ['/bin/fresh', ['fresh', 'args'], 'true'], 'overwriting the Buffer after the call changes no event');
  tracer.close();
});

t.test('a delay is never negative, even for a stamp slightly ahead of the clock read', async (t) => {
  const { binding, made } = fakeBinding();
  const delays: number[] = [];
  const tracer = new Tracer(binding, OPTIONS, (_e, d) => delays.push(d), noSinkError(t));
  tracer.start();
  made[0]?.deliver(encodeRecord({ bootNs: BigInt(Date.now() + 60_000) * 1_000_000n }));
  t.same(delays, [0], 'clamped to 0');
  tracer.close();
});

t.test('a malformed batch is counted as a decode error and what came before it is kept', async (t) => {
  const { binding, made } = fakeBinding();
  const pids: number[] = [];
  const tracer = new Tracer(binding, OPTIONS, (e) => pids.push(e.pid), noSinkError(t));
  tracer.start();
  made[0]?.deliver(Buffer.concat([encodeRecord({ pid: 1 }), encodeRecord({ pid: 2, recordLen: 12 })]));
  t.same(pids, [1], 'the well-formed record before it was delivered');
  t.equal(tracer.stats().decodeErrors, 1, 'one decode error');
  t.equal(tracer.stats().pipelineErrors, 0, 'no pipeline error');
  tracer.close();
});

t.test('an event the pipeline throws on is counted and reported; the rest of the batch flows', async (t) => {
  const { binding, made } = fakeBinding();
  const pids: number[] = [];
  const errors: unknown[] = [];
  const boom = new Error('enricher bug');
  const tracer = new Tracer(
    binding,
    OPTIONS,
    (e) => {
      if (e.pid === 2) throw boom;
      pids.push(e.pid);
    },
    (err) => errors.push(err),
  );
  tracer.start();
  t.doesNotThrow(() => made[0]?.deliver(encodeBatch({ pid: 1 }, { pid: 2 }, { pid: 3 })), 'the native callback never sees a throw');
  t.same(pids, [1, 3], 'the other events of the batch were delivered');
  t.same(errors, [boom], 'the failure was reported once, with the error');
  t.equal(tracer.stats().pipelineErrors, 1, 'counted as one pipeline error');
  t.equal(tracer.stats().decodeErrors, 0, 'not a decode error');
  tracer.close();
});

t.test('programs the kernel has nothing for are reported from the start, and after close', async (t) => {
  const { binding } = fakeBinding({ unavailable: ['handle_enter_compat', 'handle_exit_compat'] });
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  t.same(tracer.stats().unavailable, [], 'none known before the object is opened');
  tracer.start();
  t.same(tracer.stats().unavailable, ['handle_enter_compat', 'handle_exit_compat'], 'read once the object is open');
  tracer.close();
  t.same(tracer.stats().unavailable, ['handle_enter_compat', 'handle_exit_compat'], 'still known after close');
});

t.test('counters survive close, including a close whose last read fails', async (t) => {
  const { binding, made } = fakeBinding();
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  t.same(tracer.stats().counters, { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, 'zero before anything');
  tracer.start();
  const native = made[0] as FakeNative;
  native.counters = { ringbuf_full: 3, state_map_full: 1, argv_read_error: 2, events: 10, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
  tracer.stats();
  native.counters = { ringbuf_full: 7, state_map_full: 1, argv_read_error: 2, events: 20, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
  tracer.close();
  t.same(tracer.stats(), { counters: { ringbuf_full: 7, state_map_full: 1, argv_read_error: 2, events: 20, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, attached: [], unavailable: [], decodeErrors: 0, pipelineErrors: 0 }, 'read at close, kept after');
  tracer.close();
  t.equal(native.closes, 1, 'close is idempotent');

  const second = fakeBinding();
  const other = new Tracer(second.binding, OPTIONS, () => {}, noSinkError(t));
  other.start();
  const n2 = second.made[0] as FakeNative;
  n2.counters = { ringbuf_full: 5, state_map_full: 0, argv_read_error: 0, events: 5, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
  t.equal(other.stats().counters.ringbuf_full, 5, 'read while open');
  n2.counters = { ringbuf_full: 9, state_map_full: 0, argv_read_error: 0, events: 9, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };
  n2.statsThrows = true;
  t.doesNotThrow(() => other.close(), 'close goes on when the last read fails');
  t.equal(n2.closes, 1, 'and still closes the native tracer');
  t.equal(other.stats().counters.ringbuf_full, 5, 'the last successful reading stands');
});

t.test('pipeline failures are logged once in full, then once per thousand', async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const report = sinkErrorReporter(out);
  report(new Error('enricher bug'));
  for (let i = 2; i <= 2500; i++) report('again');
  await new Promise((r) => setImmediate(r));
  const lines = text.trim().split('\n');
  t.match(lines[0], /^execwatch: an event was lost in the pipeline: Error: enricher bug/, 'the first with its stack');
  t.ok(lines.some((l) => l.startsWith('    at ')), 'the stack is there');
  t.same(
    lines.filter((l) => /so far/.test(l)),
    ['execwatch: 1000 events lost in the pipeline so far', 'execwatch: 2000 events lost in the pipeline so far'],
    'then a count per thousand, not a line each',
  );

  const plain = new PassThrough();
  let plainText = '';
  plain.on('data', (d: Buffer) => (plainText += d.toString()));
  sinkErrorReporter(plain)('not an Error');
  const stackless = new Error('no stack here');
  delete stackless.stack;
  sinkErrorReporter(plain)(stackless);
  await new Promise((r) => setImmediate(r));
  t.equal(
    plainText,
    'execwatch: an event was lost in the pipeline: not an Error\nexecwatch: an event was lost in the pipeline: no stack here\n',
    'a non-Error is shown as is, an Error without a stack by its message',
  );
});

t.test('the scope table and the program ids go to and come from the native tracer while it is open', async (t) => {
  const { binding, made } = fakeBinding();
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  const slots = Buffer.alloc(16);
  tracer.writeScope(slots, 0);
  t.same(tracer.programIds(), {}, 'no ids before start');
  tracer.start();
  const native = made[0] as FakeNative & { scopeWrites: { slots: Buffer; entries: number }[] };
  tracer.writeScope(slots, 1);
  t.same(native.scopeWrites, [{ slots, entries: 1 }], 'written once open, not before');
  t.same(Object.keys(tracer.programIds()), [...PROGRAMS], 'the ids of the attached programs');
  tracer.close();
  tracer.writeScope(slots, 2);
  t.equal(native.scopeWrites.length, 1, 'nothing written after close');
  t.same(tracer.programIds(), {}, 'no ids after close');
});

t.test('readCgroups: what the counts by cgroup grew by, with ringbuf_full and the boot clock; null when not open', async (t) => {
  const { binding, made } = fakeBinding({ offsetNs: 5_000_000_000n });
  const tracer = new Tracer(binding, OPTIONS, () => {}, noSinkError(t));
  t.equal(tracer.readCgroups(), null, 'not open: nothing to read');
  tracer.start();
  const native = made[0] as FakeNative & { cgroupTables: Buffer; counters: { ringbuf_full: number } };
  native.cgroupTables = encodeCgroupStats(1, [[0, 3, { cgroupId: 9n, throttled: 4n, lastNs: 7n }]]);
  native.counters.ringbuf_full = 2;
  Object.assign(native.counters, { excluded_host: 1, excluded_namespace: 2, excluded_pod: 3 });
  const first = tracer.readCgroups();
  t.same({ ...first, nowNs: undefined }, { growth: [{ cgroupId: '9', throttled: 4, lost: 0, lastNs: 7n }], ringbufFull: 2, excluded: { host: 1, namespace: 2, pod: 3 }, bootOffsetNs: 5_000_000_000n, nowNs: undefined }, 'the growth, the node\'s counts (ring full, out of scope by reason) and the clock offset');
  const wallNs = BigInt(Date.now()) * 1_000_000n;
  t.ok((first?.nowNs ?? 0n) > wallNs - 5_000_000_000n - 1_000_000_000n && (first?.nowNs ?? 0n) < wallNs, 'boot ns now: the wall clock less the offset');
  t.same(tracer.readCgroups()?.growth, [], 'read again: nothing grew');
  tracer.close();
  t.equal(tracer.readCgroups(), null, 'closed: null');
});
