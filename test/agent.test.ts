/// <reference lib="dom" />
// The whole agent (issue 3, "Serve it") on the real kernel, started in-process as main.ts starts
// it and once as the real command: /readyz, /metrics (checked by promtool), the JSON API and its
// filters, the SSE stream, --redact and the built-in redaction rules, the browse page in
// Chromium, and a shutdown that detaches every program and frees both ports. Then the ways
// start-up can fail.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { notReadyReasons, startAgent, type Agent } from '../src/agent.js';
import type { NativeBinding, NativeTracer, NativeTracerOptions } from '../src/capture/binding.js';
import { loadNativeBinding } from '../src/capture/native.js';
import { ConfigError } from '../src/config.js';
import type { ExecEvent } from '../src/events/schema.js';
import { packageVersion } from '../src/package.js';
import { StartupError } from '../src/startup-error.js';
import { startApiServer } from './helpers/apiserver.js';
import { bpfProgIds, compatPathOf, CORE_PROGRAMS, ensureTracefs, execHelper, kernelTest, marker, stillLoaded, repoRoot, waitFor } from './helpers/kernel.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { configOf } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';
import { openSse, type SseClient } from './helpers/sse.js';

const PROGRAMS = [...CORE_PROGRAMS];
const LISTEN_ANYWHERE = ['--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0'];

/** Runs a command to its end; resolves with its pid (undefined when it could not be started). */
function run(cmd: string, args: string[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', () => {});
    child.on('close', () => resolve(child.pid));
  });
}

/**
 * The sum of the samples of `name` whose labels include `labels` (exposition text), or NaN when
 * there is none.
 */
function sampleSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = Number.NaN;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = `,${m[2] ?? ''},`;
    if (Object.entries(labels).every(([k, v]) => have.includes(`,${k}="${v}",`))) sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[3]);
  }
  return sum;
}

/** A stdout that keeps the --log-events lines containing any of `keep`. */
function lineSink(keep: () => string[]): Writable & { lines: string[] } {
  const lines: string[] = [];
  let rest = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() as string;
      for (const line of parts) if (keep().some((k) => line.includes(k))) lines.push(line);
      done();
    },
  });
  return Object.assign(sink, { lines });
}

/** A stderr that collects everything written. */
function textSink(): Writable & { text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(sink, { text: () => text });
}

/**
 * The real binding, recording the ids of the BPF programs (and links) each tracer put in this
 * process, so a test can ask the kernel whether they are gone.
 */
function recordingBinding(real: NativeBinding): { binding: NativeBinding; loaded: number[][] } {
  const loaded: number[][] = [];
  class RecordingTracer implements NativeTracer {
    readonly #inner: NativeTracer;
    readonly #before: Set<number>;
    constructor(options: NativeTracerOptions) {
      this.#before = new Set(bpfProgIds(process.pid));
      this.#inner = new real.Tracer(options);
    }
    attach(): string[] {
      const names = this.#inner.attach();
      loaded.push(bpfProgIds(process.pid).filter((id) => !this.#before.has(id)));
      return names;
    }
    start(onBatch: (batch: Buffer, length: number) => void): void {
      this.#inner.start(onBatch);
    }
    stats() {
      return this.#inner.stats();
    }
    ringbufWaitingBytes(): number {
      return this.#inner.ringbufWaitingBytes();
    }
    writeScope(slots: Buffer, entries: number): void {
      this.#inner.writeScope(slots, entries);
    }
    cgroupStats(): Buffer {
      return this.#inner.cgroupStats();
    }
    programIds(): Record<string, number> {
      return this.#inner.programIds();
    }
    close(): void {
      this.#inner.close();
    }
  }
  return {
    binding: { ...real, Tracer: RecordingTracer },
    loaded,
  };
}

/** Resolves with the error code of connecting to `url`'s port ('ECONNREFUSED' once it is closed), or 'connected'. */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(String(err.code)));
  });
}

/** A TCP server on an ephemeral port of 127.0.0.1 (to hold a port, or to find a free one). */
async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as AddressInfo).port };
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

const getJson = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

const eventsOf = async (url: string): Promise<ExecEvent[]> => {
  const { status, body } = await getJson(url);
  if (status !== 200) throw new Error(`${url}: HTTP ${status} ${JSON.stringify(body)}`);
  return body.events as ExecEvent[];
};

t.test('/readyz says why it is not ready: programs detached, pod cache not synced', async (t) => {
  const synced = { readiness: () => ({ ready: true, reasons: [] }) };
  const waiting = { readiness: () => ({ ready: false, reasons: ['pod watch: waiting for the first list of pods on node n'] }) };
  t.same(notReadyReasons(PROGRAMS, null), [], 'standalone, attached: ready');
  t.same(notReadyReasons(PROGRAMS, synced), [], 'with Kubernetes, synced: ready');
  t.same(notReadyReasons([], null), ['BPF programs are not attached'], 'detached');
  t.same(
    notReadyReasons([], waiting),
    ['BPF programs are not attached', 'pod watch: waiting for the first list of pods on node n'],
    'every reason at once',
  );
});

t.test('start-up fails with every unmet requirement and loads nothing', async (t) => {
  // A host with a too-old kernel, no BTF and no tracefs, where mounting tracefs fails.
  const root = t.testdir({
    proc: {
      self: { status: 'Name:\tnode\nCapEff:\t000001ffffffffff\n', mountinfo: '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n' },
      sys: { kernel: { osrelease: '5.4.0-150-generic\n' } },
    },
    sys: { kernel: { tracing: {} } },
  });
  const mountedAt: string[] = [];
  const binding = {
    Tracer: () => {
      throw new Error('must not load a program');
    },
    bootTimeOffsetNs: () => 0n,
    mountTracefs: (target: string) => {
      mountedAt.push(target);
      throw Object.assign(new Error('mount: Operation not permitted'), { code: 'EPERM', errno: 1 });
    },
  } as unknown as NativeBinding;
  const err: unknown = await startAgent(configOf(LISTEN_ANYWHERE), { binding, stdout: new Writable(), root, version: '0.0.0' }).catch((e: unknown) => e);
  t.type(err, StartupError, 'a StartupError');
  t.same(
    (err as StartupError).problems,
    [
      'Linux 5.4.0-150-generic is too old: execwatch needs Linux 5.8 or newer (BPF ring buffer and CAP_BPF)',
      'kernel BTF is missing (/sys/kernel/btf/vmlinux): the kernel must be built with CONFIG_DEBUG_INFO_BTF=y',
      'tracefs is not mounted at /sys/kernel/tracing and could not be mounted (EPERM): mount -t tracefs tracefs /sys/kernel/tracing',
    ],
    'one line per unmet requirement',
  );
  t.equal((err as Error).message, (err as StartupError).problems.join('\n'), 'the message is those lines');
  t.equal((err as StartupError).exitCode, 1, 'exit 1: not a configuration error');
  t.same(mountedAt, [join(root, 'sys/kernel/tracing')], 'the mount was tried under the given root, not on the host');
});

t.test('an unusable --api-token-file stops start-up before anything is loaded', async (t) => {
  const dir = t.testdir({ empty: '\n' });
  const binding = {
    Tracer: () => {
      throw new Error('must not load a program');
    },
    bootTimeOffsetNs: () => 0n,
    mountTracefs: () => {
      throw new Error('must not mount');
    },
  } as unknown as NativeBinding;
  for (const file of ['empty', 'absent']) {
    const path = join(dir, file);
    const config = configOf([...LISTEN_ANYWHERE, '--api-token-file', path]);
    // With a stderr of its own (where later warnings about the file go) and with the default.
    const stderr = file === 'empty' ? textSink() : undefined;
    const err: unknown = await startAgent(config, { binding, stdout: new Writable(), stderr, root: dir, version: '0.0.0' }).catch((e: unknown) => e);
    t.type(err, ConfigError, `${file}: a ConfigError (exit 2)`);
    t.match((err as Error).message, `--api-token-file: ${JSON.stringify(path)}`, `${file}: names the flag and the file`);
    if (stderr) t.equal(stderr.text(), '', `${file}: the ConfigError is the only report, nothing is written to stderr`);
  }
});

t.test('an unusable --kubeconfig stops start-up before the requirements are checked or anything is loaded', async (t) => {
  // A root where every requirement is unmet: checked first, they would end start-up with exit 1.
  const root = t.testdir({ proc: { self: { status: 'Name:\tnode\nCapEff:\t0000000000000000\n' } } });
  const touched: string[] = [];
  const binding = {
    Tracer: () => {
      touched.push('Tracer');
      throw new Error('must not load a program');
    },
    bootTimeOffsetNs: () => 0n,
    mountTracefs: () => {
      touched.push('mountTracefs');
      throw new Error('must not mount');
    },
  } as unknown as NativeBinding;
  const path = join(root, 'missing-kubeconfig');
  const err: unknown = await startAgent(configOf([...LISTEN_ANYWHERE, '--kubeconfig', path]), { binding, stdout: new Writable(), root, version: '0.0.0' })
    .catch((e: unknown) => e);
  t.type(err, ConfigError, 'a ConfigError, not the unmet requirements');
  t.equal((err as StartupError).exitCode, 2, 'exit 2');
  t.equal((err as Error).message, `--kubeconfig: ${JSON.stringify(path)} cannot be loaded (ENOENT: no such file or directory, open '${path}')`,
    'one line naming the flag and the file');
  t.same(touched, [], 'nothing was mounted or loaded');
});

t.test('a failing read of the counts by cgroup is said once and stops nothing', kernelTest(), async (t) => {
  ensureTracefs();
  const real = loadNativeBinding();
  class Failing extends real.Tracer {
    override cgroupStats(): Buffer {
      throw new Error('cgroupStats: Bad file descriptor');
    }
  }
  const stderr = textSink();
  const agent = await startAgent(
    configOf(['--metrics-address', '127.0.0.1:0', '--api-address', '127.0.0.1:0', '--log-level', 'fatal', '--node-name', 'n']),
    { binding: { ...real, Tracer: Failing }, stdout: new Writable({ write: (_c, _e, done) => done() }), stderr, version: '0.0.0' },
  );
  t.teardown(() => agent.close());
  await new Promise((r) => setTimeout(r, 2500));
  const said = stderr.text().split('\n').filter((l) => l.includes('counts by cgroup failed'));
  t.same(said, ['execwatch: reading the kernel\'s counts by cgroup failed (throttle stops, gaps and the by-pod counts wait for it): cgroupStats: Bad file descriptor'], 'said once, with the reason');
  t.equal((await fetch(`${agent.metricsUrl}/metrics`)).status, 200, 'scrapes go on');
  t.equal((await fetch(`${agent.apiUrl}/api/excluded`)).status, 200, 'so do the counts of what was excluded, as last read');
});

t.test('the agent on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  const real = loadNativeBinding();

  t.test('serves what a user looks at', async (t) => {
    const dir = t.testdir({});
    // A copy of true under a name no one else runs: its comm picks out this test's execs.
    const comm = `ew${Math.random().toString(36).slice(2, 9)}`;
    const bin = join(dir, comm);
    copyFileSync('/usr/bin/true', bin);
    chmodSync(bin, 0o755);
    const secret = `sekrit${Math.random().toString(36).slice(2, 10)}`;
    const runTag = `-${process.pid}-`;
    const stdout = lineSink(() => [comm, runTag]);
    const stderr = textSink();
    const { binding, loaded } = recordingBinding(real);
    const agent: Agent = await startAgent(
      configOf([...LISTEN_ANYWHERE, '--node-name', 'agent-test', '--log-events', '--redact', 'sekrit[a-z0-9]+', '--recent-events', '100000', '--log-level', 'warn']),
      { binding, stdout, stderr, version: packageVersion() },
    );
    t.teardown(() => agent.close());
    const progs = loaded[0] as number[];
    const { metricsUrl, apiUrl } = agent;
    const logged = (m: string) => stdout.lines.filter((l) => l.includes(m)).map((l) => JSON.parse(l) as ExecEvent);

    t.test('start: every program attached, both listeners on the ports chosen, ready', async (t) => {
      t.not(compatPathOf(agent.attached), null, `the core programs and one 32-bit exec path attached (${agent.attached.join(', ')})`);
      t.ok(new Set(progs).size >= agent.attached.length, `the kernel holds the programs (${[...new Set(progs)].join(',')})`);
      t.match(metricsUrl, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/, 'port 0 became a real metrics port');
      t.match(apiUrl, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/, 'port 0 became a real API port');
      t.not(metricsUrl, apiUrl, 'two listeners');
      t.same(await getJson(`${metricsUrl}/readyz`), { status: 200, body: { status: 'ready' } }, '/readyz: ready');
      t.same(await getJson(`${metricsUrl}/healthz`), { status: 200, body: { status: 'ok' } }, '/healthz: ok');
      t.equal((await fetch(`${apiUrl}/metrics`)).status, 404, 'the API listener does not serve metrics');
      t.equal((await fetch(`${metricsUrl}/api/events`)).status, 404, 'nor the metrics listener events');
    });

    t.test('/metrics counts real execs and passes promtool', async (t) => {
      const scrape = async () => (await fetch(`${metricsUrl}/metrics`)).text();
      const hostSuccess = { pod: '', result: 'success' };
      const before = sampleSum(await scrape(), 'execwatch_execs_total', hostSuccess);
      t.ok(before >= 0, `execwatch_execs_total of host processes is exposed (${before})`);
      const m = marker('burst');
      await run(execHelper(), ['burst', '20', '2', bin, bin, m]);
      // The helper's own exec carries the marker too: count only the execs of our binary.
      await waitFor(() => logged(m).filter((e) => e.comm === comm).length === 20, 'the 20 execs of the burst');
      const res = await fetch(`${metricsUrl}/metrics`);
      t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/, 'Prometheus text format');
      const text = await res.text();
      const after = sampleSum(text, 'execwatch_execs_total', hostSuccess);
      t.ok(after >= before + 20, `execwatch_execs_total grew by the 20 execs at least (${before} → ${after})`);
      const osrelease = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
      t.equal(sampleSum(text, 'execwatch_build_info', { version: packageVersion(), kernel: osrelease }), 1, 'build info names version and kernel');
      for (const program of agent.attached) {
        t.equal(sampleSum(text, 'execwatch_bpf_attached', { program }), 1, `${program} attached`);
      }
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      t.equal(lint.status, 0, 'promtool check metrics: exit 0');
      t.equal(`${lint.stdout}${lint.stderr}`, '', 'promtool check metrics: nothing to report');

      const om = await fetch(`${metricsUrl}/metrics`, {
        headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' },
      });
      t.match(om.headers.get('content-type'), /^application\/openmetrics-text; version=1\.0\.0/, 'OpenMetrics when asked for');
      const omText = await om.text();
      t.match(omText, /^# TYPE execwatch_execs counter$/m, 'counter family without _total');
      t.ok(sampleSum(omText, 'execwatch_execs_total', hostSuccess) >= after, 'the same count in OpenMetrics');
      t.ok(omText.endsWith('# EOF\n'), 'ends with # EOF');
    });

    t.test('/api/events returns the execs, filtered', async (t) => {
      const m = marker('api');
      const pid = await run(bin, [m, 'two words']);
      const missing = `/nonexistent/${marker('missing')}`;
      await run(missing, [m]);
      await waitFor(() => logged(m).length === 2, 'the exec and the failed exec');
      const base = `${apiUrl}/api/events`;

      const recent = await eventsOf(`${base}?comm=${comm}&limit=5`);
      t.equal(recent.length, 5, 'limit=5: five of the many execs of our binary');
      t.ok(recent.every((e) => e.comm === comm), 'all of the comm asked for');
      t.same(recent.map((e) => e.seq), [...recent.map((e) => e.seq)].sort((a, b) => b - a), 'newest first');
      const e = recent[0] as ExecEvent;
      t.equal(e.pid, pid, 'the newest is our last exec: its pid');
      t.equal(e.ppid, process.pid, 'its parent is this test');
      t.same(e.argv, [bin, m, 'two words'], 'argv with the marker');
      t.equal(e.filename, bin, 'filename');
      t.equal(e.retval, 0, 'success');
      t.equal(e.node, 'agent-test', 'node name from --node-name');
      t.equal(e.pod, null, 'a host process has no pod');

      const counts = [
        [`comm=${comm}&q=${m}`, 1],
        [`q=${m}`, 2],
        [`q=${m}&result=failure`, 1],
        [`comm=${comm}&q=${m}&result=failure`, 0],
        [`filename=${encodeURIComponent(missing)}`, 1],
        [`q=${m}&uid=0`, 2],
        [`q=${m}&uid=65534`, 0],
        [`q=${m}&since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, 0],
      ] as const;
      for (const [query, want] of counts) {
        t.equal((await eventsOf(`${base}?${query}`)).length, want, `?${query}: ${want}`);
      }
      const [failed] = await eventsOf(`${base}?q=${m}&result=failure`);
      t.equal(failed?.filename, missing, 'the failed exec names the missing file');
      t.equal(failed?.retval, -2, 'with ENOENT');

      const bad = [
        ['limit=0', /querystring\/limit must be >= 1/],
        ['limit=lots', /querystring\/limit/],
        ['result=maybe', /querystring\/result must be one of: success, failure/],
        ['since=yesterday', /querystring\/since must be an RFC 3339 date-time/],
        ['bogus=1', /querystring\/bogus is not a known parameter/],
      ] as const;
      for (const [query, message] of bad) {
        const { status, body } = await getJson(`${base}?${query}`);
        t.equal(status, 400, `?${query}: 400`);
        t.equal(body.error, 'Bad Request', `?${query}: error`);
        t.match(body.message, message, `?${query}: names the parameter`);
      }
    });

    t.test('the stream delivers a new exec live', async (t) => {
      const sse = await openSse(`${apiUrl}/api/events/stream?comm=${comm}`);
      t.teardown(() => sse.close());
      t.equal(sse.response.statusCode, 200, '200');
      t.match(sse.response.headers['content-type'], /^text\/event-stream/, 'an event stream');
      await sse.waitFor((f) => f.comment === 'connected');
      const m = marker('live');
      const pid = await run(bin, [m]);
      const [frame] = await sse.waitFor((f) => f.event === 'exec' && (f.data ?? '').includes(m));
      const e = JSON.parse(frame?.data as string) as ExecEvent;
      t.equal(e.pid, pid, 'our exec, by pid');
      t.same(e.argv, [bin, m], 'argv');
      t.equal(frame?.id, String(e.seq), 'the frame id is the seq');
      t.notOk(sse.frames.some((f) => f.event === 'exec' && !(f.data ?? '').includes(`"comm":"${comm}"`)), 'only the comm asked for');
    });

    t.test('--redact and the built-in rules hide secrets in the API, the stream and the log', async (t) => {
      const m = marker('redact');
      const sse = await openSse(`${apiUrl}/api/events/stream?q=${m}`);
      t.teardown(() => sse.close());
      await sse.waitFor((f) => f.comment === 'connected');
      // --redact catches `secret`; the built-in rules catch `password`, which no pattern names:
      // the value of --password in the next argument, and a URL's password.
      const password = `pw${Math.random().toString(36).slice(2, 10)}`;
      await run(bin, [`--token=${secret}`, m, `${secret}:${secret}`, '--password', password, `https://u:${password}@h/`]);
      const want = [bin, '--token=***', m, '***:***', '--password', '***', 'https://u:***@h/'];
      const [frame] = await sse.waitFor((f) => f.event === 'exec');
      await waitFor(() => logged(m).length === 1, 'the log line');
      const api = await (await fetch(`${apiUrl}/api/events?q=${m}`)).text();
      const shown = [
        ['the API', (JSON.parse(api) as { events: ExecEvent[] }).events[0], api],
        ['the stream', JSON.parse(frame?.data as string) as ExecEvent, frame?.data as string],
        ['--log-events', logged(m)[0], stdout.lines.find((l) => l.includes(m)) as string],
      ] as const;
      for (const [where, event, text] of shown) {
        t.same(event?.argv, want, `${where}: the secret is ***`);
        for (const hidden of [secret, password]) {
          t.notMatch(text, hidden, `${where}: the secret is nowhere`);
          const raw = Buffer.from(event?.argvBase64 ?? '', 'base64').toString('latin1');
          t.notMatch(raw, hidden, `${where}: nor in the raw argv bytes`);
        }
      }
    });

    t.test('the browse page in Chromium shows real execs, hostile argv as text', async (t) => {
      const m = marker('page');
      const pid = await run(bin, [m]);
      await waitFor(() => logged(m).length === 1, 'the exec to show');
      const shownEvent = logged(m)[0] as ExecEvent;
      const browser = await launchChromium();
      t.teardown(() => browser.close());
      const open = async (path: string) => {
        const watched = await watchedPage(browser.context);
        await watched.page.goto(`${apiUrl}${path}`);
        return watched;
      };

      const { page, errors } = await open(`/?comm=${comm}&q=${m}`);
      const row = page.locator(`tr[data-seq="${shownEvent.seq}"]`);
      await row.waitFor();
      t.equal(await page.locator('#events tbody tr').count(), 1, 'one row for the filter');
      t.equal(await row.locator('td.binary').textContent(), bin, 'the binary');
      t.equal(await row.locator('td.argv').textContent(), `${bin} ${m}`, 'the argv');
      t.equal(await row.locator('td.pids').textContent(), `${pid} / ${process.pid}`, 'pid / ppid');
      const where = shownEvent.containerId === null ? 'host' : `container ${shownEvent.containerId.slice(0, 12)} (pod unknown)`;
      t.equal(await row.locator('td.where').textContent(), where, 'no pod: a host process (or a container of no known pod)');
      t.match(await row.locator('td.result').textContent(), /^ok(exit 0 after [\d.]+ s)?$/, 'success (and its exit, once it has ended)');
      t.same(errors, [], 'no page errors');

      // Live: the table holds our execs, so the stream resumes after the newest shown and no exec
      // made while it connects is missed.
      const live = await open(`/?comm=${comm}&live=1`);
      await live.page.locator('#events tbody tr').first().waitFor();
      const payload = '<img src=x onerror=alert(1)>';
      const x = marker('xss');
      await run(bin, [payload, x, '<script>alert(2)</script>']);
      const xRow = live.page.locator('#events tbody tr', { hasText: x });
      await xRow.waitFor({ timeout: 10_000 });
      t.match(await xRow.locator('td.argv').textContent(), payload, 'the payload is shown as text');
      t.equal(await live.page.locator('img, #events script').count(), 0, 'no element made from argv');
      // A round trip through the page: an onerror handler would have run by now.
      t.equal(await live.page.evaluate(() => document.querySelectorAll('img').length), 0, 'still none');
      t.same(live.dialogs, [], 'no dialog fired');
      t.same(live.errors, [], 'no page errors');
    });

    t.test('a client that stops reading is cut off and counted; the agent serves on', async (t) => {
      // Another binary, so these thousands of execs stay out of the other subtests' comm.
      const slowComm = `ov${Math.random().toString(36).slice(2, 9)}`;
      const slowBin = join(dir, slowComm);
      copyFileSync('/usr/bin/true', slowBin);
      chmodSync(slowBin, 0o755);
      // A raw socket that sends the request and never reads: the kernel buffers fill, then the
      // subscriber's queue of 1024 frames.
      const { hostname, port } = new URL(apiUrl);
      const slow = connect({ host: hostname, port: Number(port) });
      t.teardown(() => slow.destroy());
      slow.pause();
      slow.write(`GET /api/events/stream?comm=${slowComm} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
      const lost = async () => sampleSum(await (await fetch(`${metricsUrl}/metrics`)).text(), 'execwatch_events_lost_total', { stage: 'subscriber_overflow' });
      t.equal(await lost(), 0, 'nothing lost before');
      const padding = 'p'.repeat(3000);
      let execs = 0;
      for (; execs < 10_000 && (await lost()) === 0; execs += 500) {
        await run(execHelper(), ['burst', '500', '4', slowBin, slowBin, padding]);
      }
      await eventually(async () => (await lost()) >= 1, 'execwatch_events_lost_total{stage="subscriber_overflow"}');
      t.equal(await lost(), 1, `the slow subscriber was cut off once, and counted (after ${execs} execs)`);
      t.same(await getJson(`${metricsUrl}/readyz`), { status: 200, body: { status: 'ready' } }, 'still ready');
      const sse = await openSse(`${apiUrl}/api/events/stream?comm=${comm}`);
      t.teardown(() => sse.close());
      await sse.waitFor((f) => f.comment === 'connected');
      const m = marker('after');
      await run(bin, [m]);
      await sse.waitFor((f) => f.event === 'exec' && (f.data ?? '').includes(m));
      t.pass('a new subscriber still gets new execs');
    });

    t.test('close(): programs detached, both ports closed, an open stream does not hold it', async (t) => {
      const sse: SseClient = await openSse(`${apiUrl}/api/events/stream`);
      await sse.waitFor((f) => f.comment === 'connected');
      t.equal(await tryConnect(metricsUrl), 'connected', 'metrics port open before');
      const t0 = Date.now();
      await agent.close();
      const took = Date.now() - t0;
      t.ok(took < 2000, `closed within 2 s with a stream open (${took} ms)`);
      await sse.ended;
      t.pass('the open stream was ended');
      t.same(await stillLoaded(progs), [], 'no program of the agent is left loaded');
      t.equal(await tryConnect(metricsUrl), 'ECONNREFUSED', 'metrics port closed');
      t.equal(await tryConnect(apiUrl), 'ECONNREFUSED', 'API port closed');
      t.equal(stderr.text(), '', 'no pipeline error was reported during the whole run');
    });
  });

  t.test('with Kubernetes: not ready until the pods are listed; a stuck stdout costs log lines, counted', async (t) => {
    const api = await startApiServer();
    t.teardown(() => api.close());
    const release = api.stall();
    // 17 MiB already waiting for a reader that never reads: past the log backlog limit.
    const stuck = new Writable({ write() {} });
    stuck.write(Buffer.alloc(17 * 1024 * 1024));
    const agent = await startAgent(
      configOf([...LISTEN_ANYWHERE, '--node-name', 'node-1', '--kubeconfig', api.kubeconfigPath(t.testdir({})), '--log-events', '--log-level', 'warn']),
      { binding: real, stdout: stuck, version: packageVersion() },
    );
    t.teardown(async () => {
      await agent.close();
      stuck.destroy();
    });
    t.same(
      await getJson(`${agent.metricsUrl}/readyz`),
      { status: 503, body: { status: 'not ready', reasons: ['pod watch: waiting for the first list of pods on node node-1'] } },
      '/readyz: not ready, and why',
    );
    t.equal((await fetch(`${agent.metricsUrl}/healthz`)).status, 200, '/healthz: live meanwhile');
    release();
    await eventually(async () => (await fetch(`${agent.metricsUrl}/readyz`)).status === 200, '/readyz once the pods are listed');
    t.pass('ready once the pods are listed');

    const m = marker('stuck');
    const sse = await openSse(`${agent.apiUrl}/api/events/stream?q=${m}`);
    t.teardown(() => sse.close());
    await sse.waitFor((f) => f.comment === 'connected');
    await run('/usr/bin/true', [m]);
    await sse.waitFor((f) => f.event === 'exec');
    const text = await (await fetch(`${agent.metricsUrl}/metrics`)).text();
    t.ok(sampleSum(text, 'execwatch_events_lost_total', { stage: 'log_overflow' }) >= 1, 'execwatch_events_lost_total{stage="log_overflow"} counts it');
    t.equal(stuck.writableLength, 17 * 1024 * 1024, 'nothing more piled up on the stuck stdout');
  });

  t.test('with --api-token-file: the events API needs the token, metrics do not', async (t) => {
    const dir = t.testdir({ token: 'agent-token\n' });
    const agent = await startAgent(
      configOf([...LISTEN_ANYWHERE, '--api-token-file', join(dir, 'token'), '--log-level', 'fatal']),
      { binding: real, stdout: new Writable(), version: packageVersion() },
    );
    t.teardown(() => agent.close());
    const status = async (url: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      return res.status;
    };
    t.equal(await status(`${agent.apiUrl}/api/events`), 401, '/api/events without the token: 401');
    t.equal(await status(`${agent.apiUrl}/api/events`, { authorization: 'Bearer agent-token' }), 200, 'with it: 200');
    t.equal(await status(`${agent.apiUrl}/`), 200, 'the page itself is public');
    t.equal(await status(`${agent.metricsUrl}/metrics`), 200, '/metrics is unaffected');
  });

  t.test('a listen address in use: the error surfaces, the programs are detached', async (t) => {
    const cases = [
      { what: 'metrics address', busy: '--metrics-address', other: '--api-address' },
      { what: 'API address', busy: '--api-address', other: '--metrics-address' },
    ] as const;
    for (const c of cases) {
      await t.test(c.what, async (t) => {
        const held = await listening();
        t.teardown(() => closeServer(held.server));
        // A free port for the other listener, to check that it is given back.
        const free = await listening();
        await closeServer(free.server);
        const { binding, loaded } = recordingBinding(real);
        // With a pod cache too (its first list left unanswered), which must be stopped as well.
        const api = await startApiServer();
        t.teardown(() => api.close());
        t.teardown(api.stall());
        const config = configOf([c.busy, `127.0.0.1:${held.port}`, c.other, `127.0.0.1:${free.port}`, '--log-level', 'fatal', '--kubeconfig', api.kubeconfigPath(t.testdir({}))]);
        const err = (await startAgent(config, { binding, stdout: new Writable(), version: packageVersion() }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
        t.type(err, Error, 'startAgent rejects');
        t.equal(err.code, 'EADDRINUSE', `the error says the address is in use (${err.message})`);
        const progs = [...new Set(loaded[0])];
        t.ok(progs.length >= PROGRAMS.length, `the programs had been loaded (${progs.join(',')})`);
        t.same(await stillLoaded(progs), [], 'and are all gone');
        const again = createServer();
        await new Promise<void>((resolve, reject) => {
          again.once('error', reject);
          again.listen(free.port, '127.0.0.1', () => resolve());
        });
        await closeServer(again);
        t.pass(`the other listener's port ${free.port} was given back`);
      });
    }
  });

  t.test('the execwatch command prints both URLs, and they serve', async (t) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, join(repoRoot, 'src', 'main.ts'), ...LISTEN_ANYWHERE, '--node-name', 'cli-urls', '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.teardown(() => child.kill('SIGKILL'));
    await waitFor(() => /events\s+http:\/\//.test(err), `the start-up lines (${err})`, 30_000);
    const metrics = /metrics\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics\n/.exec(err)?.[1];
    const events = /events\s+(http:\/\/127\.0\.0\.1:\d+)\/ +\(API (http:\/\/127\.0\.0\.1:\d+)\/api\/events\)\n/.exec(err);
    t.ok(metrics, `the metrics URL is printed (${err})`);
    t.ok(events, 'the events URL is printed, with the API');
    t.equal(events?.[1], events?.[2], 'the page and the API share the listener');
    t.match(err, /capturing execs on cli-urls \((?:7|9|11) programs attached\)/, 'says what it does');

    const res = await fetch(`${metrics}/metrics`);
    t.equal(res.status, 200, 'the printed metrics URL serves');
    t.match(await res.text(), /^execwatch_execs_total\{/m, 'execwatch_execs_total');
    const page = await fetch(`${events?.[1]}/`);
    t.match(await page.text(), /<title>execwatch/, 'the printed events URL is the browse page');
    const m = marker('cli');
    const pid = await run('/usr/bin/true', [m]);
    await eventually(async () => (await eventsOf(`${events?.[1]}/api/events?q=${m}`)).length === 1, 'the exec in the API');
    const [e] = await eventsOf(`${events?.[1]}/api/events?q=${m}`);
    t.equal(e?.pid, pid, 'the API has our exec');

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM: exit 0');
  });
});
