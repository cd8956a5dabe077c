// SPDX-License-Identifier: Apache-2.0
/** The browse page with 10,000 rows in headless Chromium (bench/page.mjs): main-thread ms to open and to filter. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { die, root } from '../lib/common.mjs';

/** bench/page.mjs's JSON result. */
export function pageCost() {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'page.mjs'), '--json'], { encoding: 'utf8', cwd: root });
  // Exit 1 with a result is a missed target, reported in the table; anything else is a failure.
  if (r.status !== 0 && r.status !== 1) die(`bench/page.mjs failed:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop();
  if (!last) die(`bench/page.mjs printed no result:\n${r.stderr}`);
  return JSON.parse(last);
}
