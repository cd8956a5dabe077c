/// <reference lib="dom" />
// The browse page in headless Chromium: rows, filters kept in the URL, live mode, failed execs
// marked, and hostile argv shown as text that runs nothing.
import type { Page } from 'playwright-core';
import t, { type Test } from 'tap';
import type { WatchedPage } from './helpers/chromium.js';
import { startPageApi } from './helpers/page-api.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';

const pageApi = await startPageApi(1000);
t.teardown(() => pageApi.close());
const { publish } = pageApi;
/** A fresh tab that records dialogs and page errors. */
const open = (t: Test, path: string): Promise<WatchedPage> => pageApi.open(t, path);

const rowsOf = (page: Page) => page.locator('#events tbody tr');
const seqsShown = (page: Page) =>
  page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.seq)));

t.test('rows appear for published events, newest first, failed execs marked', async (t) => {
  const ok = makeEvent({ comm: 'curl', filename: '/usr/bin/curl', argv: ['curl', '-s', 'http://example'] });
  const failed = makeEvent({ comm: 'nope', filename: '/usr/bin/nope', argv: ['nope'], retval: -2 });
  const conflict = makeEvent({
    comm: 'sh', argv: ['sh'], cgroup: `cri-containerd-${'e'.repeat(64)}.scope`, cgroupParent: 'kubepods-pod1234.slice',
    containerId: 'e'.repeat(64), namespace: null, pod: null, podUid: null, container: null, image: null, imageId: null, workload: null, attribution: 'conflict',
  });
  const host = makeHostEvent({ comm: 'cron', filename: '/usr/sbin/cron', argv: ['cron'] });
  for (const e of [ok, failed, conflict, host]) publish(e);
  const { page, errors } = await open(t, '/');
  await page.locator(`tr[data-seq="${host.seq}"]`).waitFor();
  const seqs = await seqsShown(page);
  t.same(seqs.slice(0, 4), [host.seq, conflict.seq, failed.seq, ok.seq], 'newest first');
  const okRow = page.locator(`tr[data-seq="${ok.seq}"]`);
  t.equal(await okRow.locator('td.where').textContent(), 'shop/web-1/app', 'namespace/pod/container');
  t.equal(await okRow.locator('td.binary').textContent(), '/usr/bin/curl', 'binary');
  t.equal(await okRow.locator('td.argv').textContent(), 'curl -s http://example', 'argv');
  t.equal(await okRow.locator('td.result').textContent(), 'ok', 'success');
  t.equal(await page.locator('th.node').isVisible(), false, 'one agent: no node column (kubectl execwatch ui shows one over several nodes)');
  t.equal(await page.locator('input[name="node"]').isVisible(), false, 'nor a node filter');
  t.equal(await okRow.locator('td.pids').textContent(), `${ok.pid} / ${ok.ppid}`, 'pid / ppid');
  t.equal(await okRow.locator('td.user').textContent(), '1000', 'user');
  const failedRow = page.locator(`tr[data-seq="${failed.seq}"]`);
  t.match(await failedRow.getAttribute('class'), /\bfailed\b/, 'failed row has the failed class');
  t.equal(await failedRow.locator('td.result').textContent(), '✗ failed ENOENT', 'errno named');
  const [okBg, failedBg] = await Promise.all([okRow, failedRow].map((r) => r.evaluate((el) => getComputedStyle(el).backgroundColor)));
  t.not(failedBg, okBg, 'a failed exec looks different');
  t.equal(await page.locator(`tr[data-seq="${host.seq}"] td.where`).textContent(), 'host', 'host process');
  const conflictCell = page.locator(`tr[data-seq="${conflict.seq}"] td.where`);
  t.equal(await conflictCell.textContent(), 'container eeeeeeeeeeee (conflict)', 'a conflict names no pod and says so');
  t.equal(await conflictCell.getAttribute('title'), `kubepods-pod1234.slice/cri-containerd-${'e'.repeat(64)}.scope`, 'both claims on hover');
  t.same(errors, [], 'no page errors');
});

t.test('an exec shows how its process ended, and an effective uid that is not the real one', async (t) => {
  const exited = makeEvent({ comm: 'crash', exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'signal', code: null, signal: 11, coreDumped: true, duration: 1.25 } });
  const failedExit = makeEvent({ comm: 'exit3', exit: { time: '2026-11-24T16:02:05.000000000Z', status: 'error', code: 3, signal: null, coreDumped: false, duration: 42.4 } });
  const sudo = makeEvent({ comm: 'sudo', uid: 1000, euid: 0, euidDiffers: true });
  for (const e of [exited, failedExit, sudo]) publish(e);
  const { page, errors } = await open(t, '/');
  await page.locator(`tr[data-seq="${sudo.seq}"]`).waitFor();
  t.equal(await page.locator(`tr[data-seq="${exited.seq}"] td.result`).textContent(), 'okSIGSEGV (core) after 1.250 s', 'signal, core, duration');
  t.equal(await page.locator(`tr[data-seq="${failedExit.seq}"] td.result`).textContent(), 'okexit 3 after 42 s', 'exit code');
  t.equal(await page.locator(`tr[data-seq="${sudo.seq}"] td.user`).textContent(), '1000euid 0', 'the effective uid beside the real one');
  t.same(errors, [], 'no page errors');
});

t.test('filtering by comm narrows the rows and is kept in the URL', async (t) => {
  const wanted = makeEvent({ comm: 'wget', filename: '/usr/bin/wget', argv: ['wget', 'x'] });
  publish(makeEvent({ comm: 'bash', filename: '/bin/bash' }));
  publish(wanted);
  publish(makeEvent({ comm: 'bash', filename: '/bin/bash' }));
  const { page } = await open(t, '/');
  await page.locator(`tr[data-seq="${wanted.seq}"]`).waitFor();
  t.ok((await rowsOf(page).count()) > 1, 'several rows before filtering');
  await page.fill('input[name="comm"]', 'wget');
  await page.press('input[name="comm"]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 1);
  t.same(await seqsShown(page), [wanted.seq], 'only the wget exec');
  t.equal(new URL(page.url()).searchParams.get('comm'), 'wget', 'filter in the URL');
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 1);
  t.equal(await page.inputValue('input[name="comm"]'), 'wget', 'input restored from the URL');
  t.same(await seqsShown(page), [wanted.seq], 'still filtered after reload');
});

t.test('a bad filter shows the API’s message', async (t) => {
  const { page } = await open(t, '/?uid=root');
  await page.locator('#error').waitFor({ state: 'visible' });
  t.equal(await page.locator('#error').textContent(), 'querystring/uid must be integer', 'message shown');
});

t.test('live mode shows a new event without a reload, filtered', async (t) => {
  const { page } = await open(t, '/?comm=live-test');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('0 execs'));
  await page.check('input[name="live"]');
  t.equal(new URL(page.url()).searchParams.get('live'), '1', 'live kept in the URL');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  // The EventSource may still be connecting: publish until the row shows.
  const event = makeEvent({ comm: 'live-test', filename: '/usr/bin/live-test', argv: ['live-test', '--now'] });
  publish(makeEvent({ comm: 'other' }));
  publish(event);
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor({ timeout: 10_000 });
  t.equal(await rowsOf(page).count(), 1, 'only the matching event arrived');
  const second = makeEvent({ comm: 'live-test', retval: -13 });
  publish(second);
  await page.locator(`tr[data-seq="${second.seq}"]`).waitFor();
  t.same(await seqsShown(page), [second.seq, event.seq], 'new rows on top');
  await page.uncheck('input[name="live"]');
  const third = makeEvent({ comm: 'live-test' });
  publish(third);
  await page.waitForTimeout(300);
  t.equal(await page.locator(`tr[data-seq="${third.seq}"]`).count(), 0, 'not following once live is off');
});

t.test('live mode over a filter with no rows goes on from the load: nothing in between is missed', async (t) => {
  const { page } = await open(t, '/?comm=resume-test');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('0 execs'));
  // Delivered after the rows were loaded and before the stream opens (the agent's lastSeq is
  // where the stream starts; with no row there is no newest one to start after).
  publish(makeEvent({ comm: 'other' }));
  const between = makeEvent({ comm: 'resume-test' });
  publish(between);
  await page.check('input[name="live"]');
  await page.locator(`tr[data-seq="${between.seq}"]`).waitFor();
  t.same(await seqsShown(page), [between.seq], 'the matching exec delivered in between, once');
});

t.test('hostile argv is shown as text and runs nothing', async (t) => {
  const payload = '<img src=x onerror=alert(1)>';
  const event = makeEvent({
    comm: 'xss',
    filename: '/tmp/<b>bold</b>',
    argv: [payload, '<script>alert(2)</script>'],
    pod: '<svg onload=alert(3)>',
  });
  publish(event);
  const { page, dialogs, errors } = await open(t, '/?comm=xss&live=1');
  const row = page.locator(`tr[data-seq="${event.seq}"]`);
  await row.waitFor();
  t.match(await row.locator('td.argv').textContent(), payload, 'the payload is visible as text');
  t.match(await row.locator('td.binary').textContent(), '/tmp/<b>bold</b>', 'filename as text');
  t.equal(await page.locator('img').count(), 0, 'no img element exists');
  t.equal(await page.locator('#events b, #events svg, #events script').count(), 0, 'no markup from events');
  const live = makeEvent({ comm: 'xss', argv: [payload] });
  publish(live);
  await page.locator(`tr[data-seq="${live.seq}"]`).waitFor();
  t.equal(await page.locator('img').count(), 0, 'nor from a live event');
  await page.waitForTimeout(200);
  t.same(dialogs, [], 'no dialog fired');
  t.same(errors, [], 'no page errors');
});

t.test('long argv is clamped and expands on click', async (t) => {
  const long = Array.from({ length: 400 }, (_, i) => `--option-${i}=value`);
  const event = makeEvent({ comm: 'longargv', argv: ['tool', ...long], argc: 500, argvTruncated: true });
  publish(event);
  const { page } = await open(t, '/?comm=longargv');
  const cell = page.locator(`tr[data-seq="${event.seq}"] td.argv`);
  await cell.waitFor();
  const collapsed = await cell.evaluate((el) => el.getBoundingClientRect().height);
  await cell.click();
  const expanded = await cell.evaluate((el) => el.getBoundingClientRect().height);
  t.ok(expanded > collapsed * 3, `expanded ${expanded}px vs collapsed ${collapsed}px`);
  t.match(await cell.textContent(), 'truncated: 401 of 500 arguments shown', 'truncation noted');
  t.match(await cell.textContent(), '--option-399=value', 'every argument present');
});
