// The delivery watchdog behind /healthz: records waiting in the ring buffer with no batch
// delivered for --stall-timeout turn /healthz to 503, and delivery turns it back; an idle node
// stays healthy. The ring and the addon are a fake here (real-kernel: test/agent-health.test.ts).
import t from 'tap';
import type { NativeBinding, NativeTracer, NativeTracerOptions } from '../src/capture/binding.js';
import { Tracer } from '../src/capture/tracer.js';
import { DeliveryWatchdog, type DeliveryProgress } from '../src/capture/watchdog.js';
import { buildMetricsApp } from '../src/http/metrics-app.js';
import { idleMetrics } from './helpers/metrics.js';
import { encodeBatch } from './helpers/records.js';

const TIMEOUT_MS = 30_000;

t.test('the watchdog alone, on a fake clock', async (t) => {
  let now = 0;
  let progress: DeliveryProgress = { batches: 0, waitingBytes: 0 };
  const dog = new DeliveryWatchdog(() => progress, TIMEOUT_MS, () => now);
  const live = () => dog.check().live;

  t.ok(live(), 'nothing waiting: live');
  now = 3_600_000;
  t.ok(live(), 'an hour without a single exec: still live');

  progress = { batches: 0, waitingBytes: 512 };
  t.ok(live(), 'a record waiting: live (it may be inside the flush interval)');
  now += TIMEOUT_MS - 1;
  t.ok(live(), 'still waiting, not delivered, for just under the timeout: live');
  now += 1;
  t.same(dog.check(), {
    live: false,
    reasons: ['delivery stalled: 512 bytes wait in the ring buffer and nothing was delivered for 30.0 s (--stall-timeout 30 s)'],
  }, 'for the timeout: stalled, saying what and how long');

  progress = { batches: 1, waitingBytes: 1024 };
  t.ok(live(), 'a batch delivered: live again, though more records wait');
  now += TIMEOUT_MS / 2;
  progress = { batches: 2, waitingBytes: 256 };
  t.ok(live(), 'batches keep coming while records wait: live');
  now += TIMEOUT_MS / 2;
  progress = { batches: 3, waitingBytes: 256 };
  t.ok(live(), 'a busy node whose ring never empties is live as long as batches arrive');
  progress = { batches: 3, waitingBytes: 0 };
  t.ok(live(), 'drained: live');
  progress = { batches: 3, waitingBytes: 64 };
  now += TIMEOUT_MS * 10;
  t.ok(live(), 'records waiting after a long quiet spell, first seen now: live');
  now += TIMEOUT_MS;
  t.notOk(live(), 'and nothing delivered for the timeout since: stalled');

  const off = new DeliveryWatchdog(() => ({ batches: 0, waitingBytes: 512 }), 0, () => now);
  off.check();
  now += TIMEOUT_MS * 100;
  t.ok(off.check().live, '--stall-timeout 0: never stalled');
});

/** A binding whose ring holds `waitingBytes` and delivers only when told. */
function fakeBinding() {
  const ring = { waitingBytes: 0, deliver: (_batch: Buffer) => {} };
  class FakeTracer implements NativeTracer {
    constructor(_options: NativeTracerOptions) {}
    attach() {
      return ['handle_exec'];
    }
    start(onBatch: (batch: Buffer, length: number) => void) {
      ring.deliver = (batch) => onBatch(batch, batch.length);
    }
    stats() {
      return { counters: { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 }, attached: ['handle_exec'], unavailable: [] };
    }
    ringbufWaitingBytes() {
      return ring.waitingBytes;
    }
    writeScope() {}
    cgroupStats() {
      return Buffer.alloc(0);
    }
    programIds() {
      return {};
    }
    close() {}
  }
  const binding = {
    Tracer: FakeTracer,
    bootTimeOffsetNs: () => 0n,
    mountTracefs: () => {},
    dropCapabilities: () => ({ threads: 1, boundingSetCleared: true }),
    switchUser: () => {},
  } satisfies NativeBinding;
  return { binding, ring };
}

t.test('/healthz: 503 while delivery is stalled, 200 once a batch arrives; the gauge shows the bytes', async (t) => {
  const { binding, ring } = fakeBinding();
  const tracer = new Tracer(binding, { objectPath: '/x.o', argvMaxBytes: 4096, ringbufBytes: 1 << 16, node: 'n' }, () => {}, () => {});
  tracer.start();
  t.teardown(() => tracer.close());
  let now = 0;
  const dog = new DeliveryWatchdog(() => ({ batches: tracer.batches, waitingBytes: tracer.ringbufWaitingBytes() }), TIMEOUT_MS, () => now);
  const metrics = idleMetrics({ ringbufWaitingBytes: () => tracer.ringbufWaitingBytes() });
  const app = buildMetricsApp({ metrics, readiness: () => ({ ready: true, reasons: [] }), liveness: () => dog.check(), logLevel: 'fatal' });
  t.teardown(() => app.close());
  const healthz = async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    return { status: res.statusCode, body: res.json() as unknown };
  };
  const gauge = async () => /^execwatch_ringbuf_waiting_bytes (\d+)$/m.exec((await app.inject({ method: 'GET', url: '/metrics' })).body)?.[1];

  t.same(await healthz(), { status: 200, body: { status: 'ok' } }, 'idle: ok');
  t.equal(await gauge(), '0', 'execwatch_ringbuf_waiting_bytes 0');
  ring.waitingBytes = 4096;
  t.same(await healthz(), { status: 200, body: { status: 'ok' } }, 'records waiting: ok at first');
  t.equal(await gauge(), '4096', 'the gauge shows the bytes waiting');
  now += TIMEOUT_MS;
  t.same(await healthz(), {
    status: 503,
    body: { status: 'unhealthy', reasons: ['delivery stalled: 4096 bytes wait in the ring buffer and nothing was delivered for 30.0 s (--stall-timeout 30 s)'] },
  }, 'nothing delivered for the stall timeout: 503 with the reason');
  ring.deliver(encodeBatch({}));
  ring.waitingBytes = 0;
  t.same(await healthz(), { status: 200, body: { status: 'ok' } }, 'delivery resumed: ok again');
  t.equal(tracer.batches, 1, 'the tracer counted the batch');
  tracer.close();
  t.equal(tracer.ringbufWaitingBytes(), 0, 'closed: nothing is said to wait');
});
