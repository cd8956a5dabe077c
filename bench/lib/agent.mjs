// SPDX-License-Identifier: Apache-2.0
/**
 * The agent under test: started as `npm start` starts it (dist/main.js executed), standalone and
 * listening on free loopback ports; ready once /readyz says so. Then read over HTTP: its metrics,
 * the events in its ring, and a live SSE subscription.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { die, root, sleep, track, untrack } from './common.mjs';
import { sum } from './stats.mjs';

/** The agent's entry point: executed, so that Node gets the flags of its shebang. */
const MAIN = join(root, 'dist', 'main.js');

/**
 * Node's flags for the agent, from their one place: dist/main.js's shebang (src/main.ts's first
 * line), which `npm start`, the image's ENTRYPOINT and startAgent() all go through.
 */
export function nodeFlags(main = MAIN) {
  const shebang = readFileSync(main, 'utf8').split('\n')[0];
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+(?:=\S+)?)*)$/.exec(shebang);
  if (!m) die(`dist/main.js does not start with "#!/usr/bin/env -S node [flags]": ${shebang}`);
  return m[1].split(' ').filter(Boolean);
}

/** Two distinct free loopback ports (both held open while the second is chosen). */
async function freePorts() {
  const open = () =>
    new Promise((resolve, reject) => {
      const server = createServer();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  const servers = [await open(), await open()];
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export function httpGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A fresh agent, ready: { pid, metricsUrl, apiUrl, stop() }. stop() dies unless it exits 0.
 * `args` are more flags; `tree` is another built checkout whose agent to run (a before/after
 * comparison), by default this one.
 */
export async function startAgent({ args = [], tree = root } = {}) {
  const main = join(tree, 'dist', 'main.js');
  if (!existsSync(main)) die(`${main} is missing: build that checkout first (npm run build there)`);
  const [metricsPort, apiPort] = await freePorts();
  const env = { ...process.env };
  // Standalone: no kubeconfig, not in a cluster.
  for (const key of ['KUBECONFIG', 'EXECWATCH_KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) delete env[key];
  // The shebang's `env` finds this benchmark's Node first.
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
  const child = spawn(main, ['--metrics-address', `127.0.0.1:${metricsPort}`, '--api-address', `127.0.0.1:${apiPort}`, '--log-level', 'warn', ...args], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const agent = {
    pid: child.pid,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    async stop() {
      child.kill('SIGTERM');
      const status = await exited;
      untrack(child);
      if (status !== 0) die(`agent exited with ${status} on SIGTERM:\n${stderr}`);
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) die(`agent exited with ${child.exitCode} during start:\n${stderr}`);
    // main.ts prints the events URL once both listeners are up (the metrics one listens first).
    if (stderr.includes('execwatch: events')) {
      const ready = await httpGet(`${agent.metricsUrl}/readyz`);
      if (ready.status === 200) {
        // The figures hold for the agent as shipped: its Node must have the shebang's flags.
        const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
        const missing = nodeFlags(main).filter((f) => !argv.includes(f));
        if (missing.length > 0) die(`the agent runs without ${missing.join(' ')}: ${argv.join(' ')}`);
        return agent;
      }
    }
    if (Date.now() > deadline) die(`agent not ready after 30 s:\n${stderr}`);
    await sleep(50);
  }
}

/** execwatch_* samples of one scrape: the execs counted, and the losses by stage. */
export async function scrape(agent) {
  const { body } = await httpGet(`${agent.metricsUrl}/metrics`);
  const samples = [];
  for (const line of body.split('\n')) {
    const m = /^(execwatch_[a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) samples.push({ name: m[1], labels: m[2] ?? '', value: Number(m[3]) });
  }
  const total = (name) => sum(samples.filter((s) => s.name === name).map((s) => s.value));
  const lost = {};
  for (const s of samples.filter((x) => x.name === 'execwatch_events_lost_total')) {
    lost[/stage="([^"]*)"/.exec(s.labels)[1]] = s.value;
  }
  return { execs: total('execwatch_execs_total'), lost, exported: total('execwatch_export_records_total') };
}

/** Events in the agent's ring: of the storm's binary, or (noop null) of any process. */
export async function countDelivered(agent, noop) {
  const url = `${agent.apiUrl}/api/events?${noop === null ? '' : `filename=${encodeURIComponent(noop)}&`}limit=10000`;
  const { status, body } = await httpGet(url);
  if (status !== 200) die(`GET /api/events: ${status} ${body.slice(0, 200)}`);
  return JSON.parse(body).events.length;
}

/** One SSE subscriber; calls onEvent(event, receivedAtMs) for every exec event. */
export function subscribe(agent, query, onEvent) {
  return new Promise((resolve, reject) => {
    const req = request(`${agent.apiUrl}/api/events/stream?${query}`, { headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`stream: ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffered = '';
      let connected = false;
      res.on('data', (chunk) => {
        const receivedAt = performance.timeOrigin + performance.now();
        buffered += chunk;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!connected && frame.includes(': connected')) {
            connected = true;
            resolve({ close: () => req.destroy() });
          }
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (data) onEvent(JSON.parse(data.slice(6)), receivedAt);
        }
      });
    });
    req.on('error', (err) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}
