/// <reference lib="dom" />
// The browse page over a real agent on the real kernel (a child process, so that it can be held
// with SIGSTOP): a three-level process chain opens to the right ancestors and children; a
// `kubectl exec` session, simulated as the origin tests do (a containerd-named cgroup, a pid
// namespace whose pid 1 is the init, a shell entered from outside with nsenter), lists its
// commands in order; after a forced ring overflow the page says how many events were lost; and
// execs of a pod that --exclude-pods leaves out are counted in the banner, by the minute.
import { spawn } from 'node:child_process';
import t from 'tap';
import type { ExecEvent, GapEvent } from '../src/events/schema.js';
import { startApiServer } from './helpers/apiserver.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { startSmallRingAgent } from './helpers/command.js';
import { ensureTracefs, execHelper, finished, inCgroup, kernelTest, marker, namespaceInit } from './helpers/kernel.js';
import { cgroupArea, events, kubeconfigFor, podsGauge, samples, sampleValue } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';
import { screenshot } from './helpers/screenshots.js';

const NODE = 'page-node';
const containerd = (uid: string, id: string) => ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`];


t.test('the page over a real agent: a process chain, an exec session, a loss', kernelTest(), async (t) => {
  ensureTracefs();
  const helper = execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const area = cgroupArea(t, NODE);
  const c = area('page', containerd, 'containerd');
  api.addPod(c.pod());
  // A pod out of scope: its execs are dropped in the kernel, and only counted.
  const out = area('excluded', containerd, 'containerd');
  api.addPod(out.pod());
  // Small enough that a held agent loses a few hundred execs' worth.
  const agent = await startSmallRingAgent(t, ['--kubeconfig', kubeconfigFor(t, api), '--node-name', NODE, '--enrich-wait', '5s', '--exclude-pods', `app=${out.deployment}`]);
  const metricsUrl = agent.metricsBase;
  await eventually(async () => (await podsGauge(metricsUrl)) === 2, 'the agent to know both pods', 30_000);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const m = marker('page');
  const execsOf = async (query: Record<string, string>) => (await events(agent.apiUrl, { ...query, limit: '10000' })).filter((e) => e.argv.some((a) => a.includes(m)));

  t.test('a three-level chain opens to its ancestors and children', async (t) => {
    // `; true` keeps each shell from exec'ing its last command in place.
    await finished(spawn('/bin/sh', ['-c', `/bin/sh -c "/bin/true leaf ${m}; true"; true`, 'outer', m], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let leaf: ExecEvent | undefined;
    await eventually(async () => (leaf = (await execsOf({ q: m, filename: '/bin/true' })).find((e) => e.argv[1] === 'leaf' && e.exit !== undefined)) !== undefined, 'the leaf\'s exec and exit in the API');
    const chain = await execsOf({ q: m });
    const inner = chain.find((e) => e.execId === leaf?.parentExecId) as ExecEvent;
    const outer = chain.find((e) => e.execId === inner.parentExecId) as ExecEvent;
    t.ok(inner && outer, 'both shells in the ring');

    const { page, errors } = await watchedPage(browser.context);
    t.teardown(() => page.close());
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${agent.apiUrl}/?q=${m}`);
    await page.locator(`tr[data-seq="${outer.seq}"] td.where`).click();
    await page.locator('#panel .children li').first().waitFor();
    t.same(await page.locator('#panel .children li a').allTextContents(), [`${inner.pid} /bin/sh -c '/bin/true leaf ${m}; true'`], 'the outer shell\'s child: the inner shell');
    await page.locator('#panel .children a').click();
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('open') === id, inner.execId);
    await page.locator('#panel .children li').first().waitFor();
    t.same(await page.locator('#panel .children li a').allTextContents(), [`${leaf?.pid} /bin/true leaf ${m}`], 'the inner shell\'s child: the leaf');
    await page.locator('#panel .children a').click();
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('open') === id, leaf?.execId);
    await page.locator('#panel .lineage li.self', { hasText: '/bin/true' }).waitFor();
    const lineage = await page.locator('#panel .lineage li').allTextContents();
    t.same(lineage.slice(-3), [
      `${outer.pid} /bin/sh -c '/bin/sh -c "/bin/true leaf ${m}; true"; true' outer ${m}`,
      `${inner.pid} /bin/sh -c '/bin/true leaf ${m}; true'`,
      `${leaf?.pid} /bin/true leaf ${m}`,
    ], 'the leaf\'s ancestors end with the outer and inner shells, then the leaf');
    t.match(await page.locator('#panel .facts').textContent(), /exit 0 after/, 'its exit');
    await screenshot(page, 'agent-chain-desktop');
    t.same(errors, [], 'no page errors');
  });

  t.test('a kubectl exec session lists its commands in order', async (t) => {
    const init = inCgroup(c.cgroup, ['/usr/bin/unshare', 'unshare', '--pid', '--fork', '--kill-child', '/bin/sh', '-c', 'exec /bin/sleep 60', 'init', m]);
    t.teardown(() => init.kill('SIGKILL'));
    let initPid: number | undefined;
    await eventually(() => (initPid = namespaceInit(c.cgroup)) !== undefined, 'the init in the container\'s cgroup');
    const typed = ['first', 'second', 'third'];
    await finished(inCgroup(c.cgroup, ['/usr/bin/nsenter', 'nsenter', '-t', String(initPid), '--pid', '--', '/bin/sh', '-c', typed.map((w) => `/bin/echo ${w} ${m} >/dev/null`).join('; ') + '; true', 'shell', m]));
    let shell: ExecEvent | undefined;
    await eventually(async () => {
      const execs = await execsOf({ q: m, origin: 'exec' });
      shell = execs.find((e) => e.argv[3] === 'shell');
      return shell !== undefined && execs.filter((e) => e.sessionExecId === shell?.execId).length === 1 + typed.length;
    }, 'the shell and its commands, as exec origin, in the API');
    const { page, errors } = await watchedPage(browser.context);
    t.teardown(() => page.close());
    await page.goto(`${agent.apiUrl}/?origin=exec&q=${m}&open=${shell?.execId}`);
    await page.locator(`#panel .session li:nth-child(${1 + typed.length})`).waitFor();
    const session = await page.locator('#panel .session li a').allTextContents();
    t.equal(session.length, 1 + typed.length, 'the shell and the three commands');
    t.match(session[0], /\/bin\/sh -c/, 'the shell that entered first');
    t.same(session.slice(1).map((s) => s.split(' ').slice(1, 3).join(' ')), typed.map((w) => `/bin/echo ${w}`), 'then the commands, in the order typed');
    t.same(await page.locator(`tr[data-seq="${shell?.seq}"] .badge`).allTextContents(), ['exec'], 'the exec badge in the table');
    t.same(errors, [], 'no page errors');
  });

  t.test('after a forced overflow the page says how many events were lost', async (t) => {
    const before = new Date().toISOString();
    // Held, the agent reads nothing: 600 execs into a ring of about 110 records.
    agent.child.kill('SIGSTOP');
    try {
      await finished(spawn(helper, ['burst', '600', '1', '/usr/bin/true', 'true', m], { stdio: ['ignore', 'ignore', 'pipe'] }));
    } finally {
      agent.child.kill('SIGCONT');
    }
    const lostSince = async () => ((await events(agent.apiUrl, { kind: 'gap', since: before, limit: '10000' })) as unknown as GapEvent[]).reduce((n, g) => n + g.lost, 0);
    await eventually(async () => (await lostSince()) > 0, 'a gap in the API', 15_000);
    // The gap is found within a second; a later one may follow, so read what the page read.
    const { page, errors } = await watchedPage(browser.context);
    t.teardown(() => page.close());
    await page.goto(`${agent.apiUrl}/?since=${before}`);
    await page.locator('#banner').waitFor();
    const text = (await page.locator('#banner').textContent()) as string;
    const shown = Number(/(\d+) events lost in \d+ gaps?/.exec(text)?.[1]);
    t.ok(shown > 0, `the banner counts the lost events (${shown})`);
    t.ok(shown <= (await lostSince()), 'no more than the API\'s gaps since then');
    t.match(text, 'ring buffer was full', 'and says what it means');
    await screenshot(page, 'agent-loss-desktop');
    t.same(errors, [], 'no page errors');
  });

  t.test('execs a scope rule excludes are counted in the banner, by the minute', async (t) => {
    const before = new Date().toISOString();
    const excludedPod = () => sampleValue(metricsUrl, 'execwatch_events_excluded_total', { reason: 'pod' });
    t.equal(await excludedPod(), 0, 'nothing of that pod excluded before (nothing else runs in its cgroup)');
    const runs = 5;
    for (let i = 0; i < runs; i++) await finished(inCgroup(out.cgroup, ['/bin/true', 'true', 'excluded', m]));
    // Each run: the exec of true, dropped in the kernel; and the exit of its process, which the
    // kernel reports (its last exec seen, the helper's, was in scope) and the agent drops, as it
    // ends in the pod's cgroup (as a container's first process does, moved there by runc).
    await eventually(async () => (await excludedPod()) === 2 * runs, 'execwatch_events_excluded_total{reason="pod"} to count them');
    const counted = 2 * runs;
    t.same(await execsOf({ q: m, pod: out.podName }), [], 'none of them is an event');
    const exitsOf = (await samples(metricsUrl, 'execwatch_exits_total')).filter((s) => s.labels.pod === out.podName);
    t.same(exitsOf, [], 'nor are their exits: execwatch_exits_total has no series for that pod');
    const { page, errors } = await watchedPage(browser.context);
    t.teardown(() => page.close());
    await page.goto(`${agent.apiUrl}/?since=${before}`);
    await page.locator('#banner').waitFor();
    const text = (await page.locator('#banner').textContent()) as string;
    t.match(text, `${counted} events excluded by scope rules (not recorded, by design): ${counted} by --exclude-pods`, 'the banner counts them, and says why they are missing');
    t.match(text, /counted by whole minutes, \d{4}-\d\d-\d\d \d\d:\d\d – \d{4}-\d\d-\d\d \d\d:\d\d UTC/, 'and at what resolution');
    await screenshot(page, 'agent-excluded-desktop');
    t.same(errors, [], 'no page errors');
  });
});
