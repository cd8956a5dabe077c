// SPDX-License-Identifier: Apache-2.0
/** The user-space pipeline without the kernel (bench/pipeline.mjs), pinned to one core. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { nodeFlags } from '../lib/agent.mjs';
import { die, root } from '../lib/common.mjs';

/** bench/pipeline.mjs's JSON result, and whether it ran pinned. */
export function pipeline() {
  const script = join(root, 'bench', 'pipeline.mjs');
  // Pinned to one CPU: "events/s on one core", GC helper threads included.
  const taskset = spawnSync('taskset', ['--version']).status === 0;
  // With the agent's Node flags: the same young generation, so the same GC work.
  const node = [process.execPath, ...nodeFlags(), script, '--json'];
  const argv = taskset ? ['taskset', '-c', '0', ...node] : node;
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', cwd: root });
  if (r.status !== 0) die(`bench/pipeline.mjs failed:\n${r.stderr}`);
  return { ...JSON.parse(r.stdout.trim().split('\n').pop()), pinned: taskset };
}
