// SPDX-License-Identifier: Apache-2.0
/** Redaction against argv built to make it backtrack (bench/redact.mjs), with the agent's Node flags. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { nodeFlags } from '../lib/agent.mjs';
import { die, root } from '../lib/common.mjs';

/** bench/redact.mjs's JSON result. */
export function redaction() {
  const r = spawnSync(process.execPath, [...nodeFlags(), join(root, 'bench', 'redact.mjs'), '--json'], { encoding: 'utf8', cwd: root });
  // Exit 1 with a result is a missed target, reported in the table; anything else is a failure.
  if (r.status !== 0 && r.status !== 1) die(`bench/redact.mjs failed:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop();
  if (!last) die(`bench/redact.mjs printed no result:\n${r.stderr}`);
  return JSON.parse(last);
}
