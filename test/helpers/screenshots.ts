/**
 * Where the page tests write their screenshots: test-output/screenshots/ in the repository
 * (git-ignored; CI keeps the folder), one PNG per view and size.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { repoRoot } from './kernel.js';

export const SCREENSHOTS = join(repoRoot, 'test-output', 'screenshots');

/** The two sizes the page is made for: a laptop and a phone. */
export const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;

/** Writes `page` as test-output/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
