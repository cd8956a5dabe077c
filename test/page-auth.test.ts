/// <reference lib="dom" />
// The browse page in headless Chromium when the agent requires a token (--api-token-file): it
// asks once, keeps the token for the tab, sends it as a header (also for the live stream, which
// it reads with fetch), never puts it in a URL, and asks again when the token is rotated.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Request } from 'playwright-core';
import t, { type Test } from 'tap';
import { buildApiApp } from '../src/http/api-app.js';
import { openApiToken } from '../src/http/auth.js';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import type { ExecEvent } from '../src/events/schema.js';
import { launchChromium } from './helpers/chromium.js';
import { makeEvent } from './helpers/events.js';

const TOKEN = 'page-token-7d9f8';
const tokenDir = mkdtempSync(join(tmpdir(), 'execwatch-token-'));
const tokenPath = join(tokenDir, 'token');
writeFileSync(tokenPath, `${TOKEN}\n`);

const store = new EventStore({ maxEvents: 1000 });
const hub = new EventHub({ maxQueue: 256, onOverflow: () => undefined });
const token = await openApiToken(tokenPath, { write: () => true });
const app = buildApiApp({ store, hub, logLevel: 'fatal', heartbeatMs: 1000, token });
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const browser = await launchChromium();
const { context } = browser;
t.teardown(async () => {
  await browser.close();
  await app.close();
  rmSync(tokenDir, { recursive: true, force: true });
});

const publish = (event: ExecEvent) => {
  const record = eventRecord(event);
  store.push(record);
  hub.publish(record);
};

/** A fresh tab that records its API requests and page errors (a 401's console line is expected). */
async function open(t: Test, path: string): Promise<{ page: Page; requests: Request[]; errors: string[] }> {
  const page = await context.newPage();
  const requests: Request[] = [];
  const errors: string[] = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/api/')) requests.push(request);
  });
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().includes('401')) errors.push(msg.text());
  });
  t.teardown(() => page.close());
  await page.goto(`${base}${path}`);
  return { page, requests, errors };
}

async function signIn(page: Page, value: string): Promise<void> {
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#login input[name="token"]', value);
  await page.press('#login input[name="token"]', 'Enter');
}

const stored = (page: Page) => page.evaluate(() => sessionStorage.getItem('execwatch-token'));

t.test('the page asks for the token, then shows the rows, and keeps it for the tab', async (t) => {
  const event = makeEvent({ comm: 'guarded', argv: ['guarded', '--x'] });
  publish(event);
  const { page, requests, errors } = await open(t, '/?comm=guarded');
  await page.locator('#login').waitFor({ state: 'visible' });
  t.match(await page.locator('#login-message').textContent(), 'needs a token', 'says why it asks');
  t.equal(await page.locator('#events tbody tr').count(), 0, 'no rows without the token');
  t.match(await page.locator('#status').textContent(), 'token needed', 'the status says so');
  t.equal(await page.locator('#login input[name="token"]').getAttribute('type'), 'password', 'typed into a password field');

  await signIn(page, ` ${TOKEN} `);
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor();
  t.ok(await page.locator('#login').isHidden(), 'the form goes away');
  t.equal(await stored(page), TOKEN, 'kept (trimmed) in sessionStorage');
  const last = requests.at(-1);
  t.equal(await last?.headerValue('authorization'), `Bearer ${TOKEN}`, 'sent as a bearer header');
  t.notOk(requests.some((r) => r.url().includes(TOKEN)), 'never in a URL');

  await page.reload();
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor();
  t.ok(await page.locator('#login').isHidden(), 'a reload does not ask again');
  t.same(errors, [], 'no page errors');
});

t.test('live mode streams with the token in a header', async (t) => {
  const { page, requests, errors } = await open(t, '/?comm=live-guarded&live=1');
  const streaming = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/events/stream');
  await signIn(page, TOKEN);
  t.equal((await streaming).status(), 200, 'the stream is open (its headers came after the subscription)');
  const first = makeEvent({ comm: 'live-guarded', argv: ['live-guarded', '1'] });
  publish(first);
  await page.locator(`tr[data-seq="${first.seq}"]`).waitFor({ timeout: 10_000 });
  t.match(await page.locator('#status').textContent(), 'live', 'the status says live');
  const request = requests.find((r) => new URL(r.url()).pathname === '/api/events/stream');
  t.ok(request, 'the page opened the stream');
  t.equal(await request?.headerValue('authorization'), `Bearer ${TOKEN}`, 'with the token as a header');
  t.notOk(request?.url().includes(TOKEN), 'and not in its URL');
  const second = makeEvent({ comm: 'live-guarded', retval: -13 });
  publish(makeEvent({ comm: 'other' }));
  publish(second);
  await page.locator(`tr[data-seq="${second.seq}"]`).waitFor();
  t.same(
    await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.seq))),
    [second.seq, first.seq],
    'new rows on top, filtered',
  );
  t.same(errors, [], 'no page errors');
});

t.test('a wrong token is refused and forgotten', async (t) => {
  const { page } = await open(t, '/');
  await signIn(page, 'not-the-token');
  await page.waitForFunction(() => document.querySelector('#login-message')?.textContent?.includes('not the one'));
  t.ok(await page.locator('#login').isVisible(), 'asked again');
  t.equal(await stored(page), null, 'the wrong token is not kept');
  t.equal(await page.locator('#events tbody tr').count(), 0, 'no rows');
});

t.test('a rotated token: the page asks again, and the live stream stops with it', async (t) => {
  const event = makeEvent({ comm: 'rotated' });
  publish(event);
  const { page } = await open(t, '/?comm=rotated&live=1');
  await signIn(page, TOKEN);
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  writeFileSync(tokenPath, 'rotated-token\n');
  t.teardown(() => writeFileSync(tokenPath, `${TOKEN}\n`));
  // The open stream keeps going (it was authorized when it started); the next request is refused.
  await page.press('input[name="comm"]', 'Enter');
  await page.locator('#login').waitFor({ state: 'visible' });
  t.match(await page.locator('#login-message').textContent(), 'not the one', 'the old token is refused');
  t.notMatch(await page.locator('#status').textContent(), 'live', 'not following any more');
  t.equal(await stored(page), null, 'the old token is forgotten');
  await signIn(page, 'rotated-token');
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('live'));
  t.pass('the new token works without reloading the agent');
});

t.test('the live stream reconnects after the agent drops it, and misses nothing', async (t) => {
  const { page, requests } = await open(t, '/?comm=reconnect&live=1');
  const streaming = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/events/stream');
  await signIn(page, TOKEN);
  await streaming;
  const before = makeEvent({ comm: 'reconnect' });
  publish(before);
  await page.locator(`tr[data-seq="${before.seq}"]`).waitFor();
  // Only responses from now on count: this one is the reconnect.
  const again = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/events/stream');
  hub.closeAll();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('reconnecting'));
  // Published while no stream is open: the reconnect asks for what came after the last one seen.
  const during = makeEvent({ comm: 'reconnect', argv: ['during'] });
  publish(during);
  t.equal((await again).status(), 200, 'reconnected');
  await page.locator(`tr[data-seq="${during.seq}"]`).waitFor({ timeout: 10_000 });
  const streams = requests.filter((r) => new URL(r.url()).pathname === '/api/events/stream');
  t.equal(new URL(streams.at(-1)?.url() ?? base).searchParams.get('after'), String(before.seq), 'resumed after the last event seen');
  t.equal(await streams.at(-1)?.headerValue('authorization'), `Bearer ${TOKEN}`, 'with the token');
  t.match(await page.locator('#status').textContent(), /live$/, 'live again');
});

t.test('a shared permalink to a process: the token is asked for first, then the rows and the panel load', async (t) => {
  const event = makeEvent({ comm: 'shared-link', argv: ['shared-link', '--open'] });
  publish(event);
  const { page, errors } = await open(t, `/?comm=shared-link&open=${event.execId}`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.waitForTimeout(200);
  t.ok(await page.locator('#panel').isHidden(), 'no panel while the agent refuses');
  t.equal(new URL(page.url()).searchParams.get('open'), event.execId, 'the URL keeps the process to open');
  await signIn(page, TOKEN);
  await page.locator(`tr[data-seq="${event.seq}"]`).waitFor();
  await page.locator('#panel .facts').waitFor();
  t.equal(await page.locator('#panel-title').textContent(), 'shared-link --open', 'the panel opens on the process once the token is in');
  t.notMatch(await page.locator('#panel-body').textContent(), 'token', 'not on the refusal');
  t.same(errors, [], 'no page errors');
});
