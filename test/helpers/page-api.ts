/**
 * What the browse page's tests open: the agent's events API (src/http/api-app.ts) over an
 * in-memory ring, headless Chromium, events published as the pipeline publishes them, and fresh
 * tabs that record dialogs and page errors.
 */
import type { Test } from 'tap';
import { buildApiApp } from '../../src/http/api-app.js';
import { eventRecord } from '../../src/events/record.js';
import type { AgentEvent } from '../../src/events/schema.js';
import { EventStore } from '../../src/events/store.js';
import { EventHub } from '../../src/events/stream.js';
import { launchChromium, watchedPage, type Browser, type WatchedPage } from './chromium.js';
import { VIEWPORTS } from './screenshots.js';

export interface PageApi {
  hub: EventHub;
  browser: Browser;
  /** http://127.0.0.1:PORT */
  base: string;
  /** Into the ring and to the stream's subscribers, as the pipeline delivers. */
  publish(event: AgentEvent): void;
  /** A fresh tab at `path` (at `size`, else Chromium's default), closed with `t`. */
  open(t: Test, path: string, size?: keyof typeof VIEWPORTS): Promise<WatchedPage>;
  close(): Promise<void>;
}

export async function startPageApi(maxEvents: number): Promise<PageApi> {
  const store = new EventStore({ maxEvents });
  const hub = new EventHub({ maxQueue: 256, onOverflow: () => undefined });
  const app = buildApiApp({ store, hub, logLevel: 'fatal', heartbeatMs: 1000 });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const browser = await launchChromium();
  return {
    hub,
    browser,
    base,
    publish(event) {
      const record = eventRecord(event);
      store.push(record);
      hub.publish(record);
    },
    async open(t, path, size) {
      const watched = await watchedPage(browser.context);
      t.teardown(() => watched.page.close());
      if (size !== undefined) await watched.page.setViewportSize(VIEWPORTS[size]);
      await watched.page.goto(`${base}${path}`);
      return watched;
    },
    async close() {
      await browser.close();
      await app.close();
    },
  };
}
