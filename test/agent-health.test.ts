// /healthz and /readyz of the whole agent on the real kernel: delivery that stops while the event
// loop still turns (here: delivery held back after the programs are attached, so the real ring
// fills) turns /healthz to 503 after --stall-timeout and back once batches flow; an API server
// gone for longer than --kube-unready-after turns /readyz to 503 and back when it returns.
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent } from '../src/agent.js';
import type { NativeBinding, NativeTracer, NativeTracerOptions } from '../src/capture/binding.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { startApiServer } from './helpers/apiserver.js';
import { ensureTracefs, kernelTest, marker } from './helpers/kernel.js';
import { configOf, events, kubeconfigFor, sampleValue } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

const LISTEN_ANYWHERE = ['--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', '--log-level', 'fatal'];
const discard = () => new Writable({ write: (_c, _e, done) => done() });

/** The real binding, whose delivery starts only when `release()` is called. */
function heldBinding(real: NativeBinding): { binding: NativeBinding; release: () => void } {
  let release = () => {};
  class HeldTracer implements NativeTracer {
    readonly #inner: NativeTracer;
    constructor(options: NativeTracerOptions) {
      this.#inner = new real.Tracer(options);
    }
    attach() {
      return this.#inner.attach();
    }
    start(onBatch: (batch: Buffer, length: number) => void) {
      release = () => this.#inner.start(onBatch);
    }
    stats() {
      return this.#inner.stats();
    }
    ringbufWaitingBytes() {
      return this.#inner.ringbufWaitingBytes();
    }
    writeScope(slots: Buffer, entries: number) {
      this.#inner.writeScope(slots, entries);
    }
    cgroupStats() {
      return this.#inner.cgroupStats();
    }
    programIds() {
      return this.#inner.programIds();
    }
    close() {
      this.#inner.close();
    }
  }
  return { binding: { ...real, Tracer: HeldTracer }, release: () => release() };
}

const status = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as { status: string; reasons?: string[] } };
};

t.test('the agent on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const real = loadNativeBinding();

  t.test('delivery stalled: /healthz 503 after --stall-timeout, 200 once batches flow', async (t) => {
    const { binding, release } = heldBinding(real);
    const agent = await startAgent(configOf([...LISTEN_ANYWHERE, '--stall-timeout', '1s']), { binding, stdout: discard(), version: '0.0.0-test' });
    t.teardown(() => agent.close());
    const m = marker('stall');
    spawnSync('/usr/bin/true', [m]);
    const waiting = await sampleValue(agent.metricsUrl, 'execwatch_ringbuf_waiting_bytes');
    t.ok(waiting > 0, `execwatch_ringbuf_waiting_bytes: the exec waits in the ring (${waiting} bytes)`);
    t.same(await status(`${agent.metricsUrl}/healthz`), { status: 200, body: { status: 'ok' } }, '/healthz: ok when records start waiting');
    let health = await status(`${agent.metricsUrl}/healthz`);
    await eventually(async () => (health = await status(`${agent.metricsUrl}/healthz`)).status === 503, '/healthz 503', 10_000);
    t.match(health.body, { status: 'unhealthy', reasons: [/^delivery stalled: \d+ bytes wait in the ring buffer and nothing was delivered for [\d.]+ s \(--stall-timeout 1 s\)$/] },
      '503 once nothing was delivered for the stall timeout, saying why');
    t.same((await status(`${agent.metricsUrl}/readyz`)).status, 200, '/readyz is not what says so: the programs are attached');

    release();
    await eventually(async () => (await events(agent.apiUrl, { q: m })).length === 1, 'the held exec delivered');
    await eventually(async () => (await status(`${agent.metricsUrl}/healthz`)).status === 200, '/healthz 200 again');
    t.pass('/healthz: ok again once batches flow');
    const after = await sampleValue(agent.metricsUrl, 'execwatch_ringbuf_waiting_bytes');
    t.ok(after < waiting, `execwatch_ringbuf_waiting_bytes fell (${waiting} → ${after})`);
  });

  t.test('API server gone: /readyz 503 after --kube-unready-after, 200 once it answers', async (t) => {
    const api = await startApiServer();
    t.teardown(() => api.close());
    const agent = await startAgent(
      configOf([...LISTEN_ANYWHERE, '--kubeconfig', kubeconfigFor(t, api), '--node-name', 'health-node', '--kube-unready-after', '1s']),
      { binding: real, stdout: discard(), version: '0.0.0-test' },
    );
    t.teardown(() => agent.close());
    await eventually(async () => (await status(`${agent.metricsUrl}/readyz`)).status === 200, 'ready once the pods are listed');
    await api.stopListening();
    const gone = Date.now();
    let ready = await status(`${agent.metricsUrl}/readyz`);
    t.equal(ready.status, 200, 'still ready just after the API server went away');
    await eventually(async () => (ready = await status(`${agent.metricsUrl}/readyz`)).status === 503, '/readyz 503', 20_000);
    t.ok(Date.now() - gone >= 1000, `not ready only after --kube-unready-after (${Date.now() - gone} ms)`);
    t.match(ready.body, { status: 'not ready', reasons: [/^pod watch: failing for [\d.]+s, the cached pods may be out of date: connect ECONNREFUSED/] },
      'saying how long the API server has been gone and why');
    t.equal((await status(`${agent.metricsUrl}/healthz`)).status, 200, '/healthz stays 200: a restart would not bring the API server back');
    await api.listen();
    await eventually(async () => (await status(`${agent.metricsUrl}/readyz`)).status === 200, '/readyz 200 again', 30_000);
    t.pass('ready again once the API server answers');
  });
});
