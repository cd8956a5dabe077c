/// <reference lib="dom" />
/**
 * `kubectl execwatch ui` in headless Chromium: the agent's own page over three simulated nodes
 * behind the API-server double (and a fourth whose agent does not answer), with a node column, a
 * node filter, the partial results named in the page, and live mode over every node's stream. Its
 * API needs the token of the printed address; a page that does not read its stream is cut off.
 */
import { get } from 'node:http';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { startApiServer } from './helpers/apiserver.js';
import { addAgentPod, runPlugin, startFakeAgent, startPlugin, type FakeAgent } from './helpers/cluster.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { makeEvent } from './helpers/events.js';
import { kubeconfigFor } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';
import { execIdOfTicks } from '../src/events/exec-id.js';
import { serializeEvent } from '../src/events/schema.js';
import { cursorOf, MAX_CURSOR_CHARS } from '../src/plugin/ui-app.js';

const NODES = ['node-a', 'node-b', 'node-c'] as const;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const at = (ms: number) => new Date(T0 + ms).toISOString().replace('Z', '000000Z');
/** Event `k` of node `i`: the nodes' events interleave, and every node has the same seqs. */
const eventOf = (i: number, k: number) => makeEvent({ node: NODES[i], seq: k, time: at(k * 10 + i), comm: 'curl', argv: ['curl', `${NODES[i]}-${k}`] });

/** `kubectl execwatch ui` started over the cluster of `kubeconfig`: its printed address, base URL and token. */
async function startUi(t: Test, kubeconfig: string, timeout = '5s') {
  const ui = startPlugin(kubeconfig, ['ui', '--timeout', timeout]);
  t.teardown(() => ui.stop());
  await eventually(() => /#token=/.test(ui.stdout()), 'ui prints its address');
  const url = (/(http:\/\/127\.0\.0\.1:\d+\/#token=\S+)/.exec(ui.stdout()) as RegExpExecArray)[1] as string;
  const token = url.slice(url.indexOf('#token=') + '#token='.length);
  return { ui, url, base: url.slice(0, url.indexOf('/#')), token, auth: { authorization: `Bearer ${token}` } };
}

t.test('the page over three nodes: node column, node filter, partial results, live', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agents: FakeAgent[] = [];
  for (const [i, node] of NODES.entries()) {
    const agent = await startFakeAgent([3, 2, 1].map((k) => eventOf(i, k)));
    t.teardown(() => agent.close());
    agents.push(agent);
    addAgentPod(api, node, { localPort: agent.port });
  }
  addAgentPod(api, 'node-down');
  const kubeconfig = kubeconfigFor(t, api);
  const { ui, url, base, token } = await startUi(t, kubeconfig);
  t.match(ui.stdout(), /^execwatch ui over 4 nodes: http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]{32}\n/, 'the address, on loopback, with a token');

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const { page, errors } = await watchedPage(browser.context);
  await page.goto(url);
  const rows = page.locator('#events tbody tr');
  await rows.nth(8).waitFor();
  t.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
  t.ok(await page.locator('th.node').isVisible(), 'a node column');
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => [tr.querySelector('td.node')?.textContent, tr.querySelector('td.argv')?.textContent]));
  t.same(shown, [3, 2, 1].flatMap((k) => [2, 1, 0].map((i) => [NODES[i], `curl ${NODES[i]}-${k}`])), 'the events of all three nodes, newest first, each with its node');
  t.match(await page.locator('#partial').textContent(), /Partial results: 1 node not answering.*node node-down \(pod execwatch-node-down\): port-forward to pod execwatch\/execwatch-node-down port 9465: .*connection refused/, 'the node that does not answer is named in the page');
  t.match(await page.locator('#status').textContent(), /9 execs · 4 nodes/, 'the status counts rows and nodes');
  t.same(await page.locator('#nodes option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)), ['node-a', 'node-b', 'node-c', 'node-down'], 'the node filter offers every node');

  const asked = agents.map((a) => a.queries.length);
  await page.fill('input[name="node"]', 'node-b');
  await page.press('input[name="node"]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 3);
  t.same(await page.locator('td.node').allTextContents(), ['node-b', 'node-b', 'node-b'], 'the node filter: that node\'s events only');
  t.equal(new URL(page.url()).searchParams.get('node'), 'node-b', 'kept in the URL');
  // Three times: the rows, and the window's gaps and throttles and its excluded counts for the
  // completeness banner (asked for once the rows are drawn).
  await eventually(() => agents[1]?.queries.length === (asked[1] as number) + 3, 'node-b to be asked three times');
  t.same(agents.map((a, i) => a.queries.length - (asked[i] as number)), [0, 3, 0], 'only that node\'s agent was asked');
  t.same(agents[1]?.queries.slice(-3).map((q, i) => [agents[1]?.paths.at(i - 3), q.get('kind')]).sort(), [['/api/events', null], ['/api/events', 'gap,throttle'], ['/api/excluded', null]], 'for its execs, for what its feed is missing, and for what was excluded');
  t.equal(await page.locator('#partial').isVisible(), false, 'no partial results when the node asked answered');

  await page.check('input[name="live"]');
  await eventually(() => agents[1]?.streamResumes.length === 1, 'node-b\'s stream opens');
  t.same(agents[1]?.streamResumes, ['3'], 'it starts after node-b\'s newest event loaded (nothing between the load and the stream is lost)');
  agents[1]?.push(serializeEvent(eventOf(1, 4)), 4);
  await page.locator('tr[data-node="node-b"][data-seq="4"]').waitFor();
  t.equal(await page.locator('tr[data-node="node-b"][data-seq="4"] td.node').textContent(), 'node-b', 'a live event, with its node');

  // Every node again: live follows them all; the same seq on two nodes is two rows.
  await page.fill('input[name="node"]', '');
  await page.press('input[name="node"]', 'Enter');
  await eventually(() => agents[0]?.streamResumes.length === 1 && agents[2]?.streamResumes.length === 1, 'the streams of node-a and node-c open');
  await page.waitForFunction(() => document.querySelector('#partial')?.textContent?.includes('node-down'));
  agents[0]?.push(serializeEvent(eventOf(0, 5)), 5);
  agents[2]?.push(serializeEvent(eventOf(2, 5)), 5);
  await page.locator('tr[data-node="node-a"][data-seq="5"]').waitFor();
  await page.locator('tr[data-node="node-c"][data-seq="5"]').waitFor();
  t.pass('live events of two nodes with the same seq are both shown');
  t.same(errors, [], 'no page errors');

  // The API, as the page's script uses it.
  const auth = { authorization: `Bearer ${token}` };
  const noToken = await fetch(`${base}/api/events`);
  t.match([noToken.status, await noToken.json()], [401, { message: /needs a token: .*\(kubectl execwatch ui printed it in the address to open, after #token=\)/ }], 'without the token: 401, saying where it is');
  const wrongToken = await fetch(`${base}/api/events`, { headers: { authorization: 'Bearer nope' } });
  t.match([wrongToken.status, await wrongToken.json()], [401, { message: 'the bearer token is not the one kubectl execwatch ui printed for this run' }], 'a wrong one: 401');
  const body = (await (await fetch(`${base}/api/events?limit=2&node=node-c`, { headers: auth })).json()) as { events: { node: string }[]; nodes: string[]; failures: unknown[]; after: string };
  t.same([body.events.map((e) => e.node), body.nodes, body.failures, body.after], [['node-c', 'node-c'], ['node-c'], [], 'node-c:3'], 'events, nodes, failures and the streams\' cursor');
  const bad = await fetch(`${base}/api/events?uid=root`, { headers: auth });
  t.equal(bad.status, 400, 'a bad filter: 400');
  t.match(await bad.json(), { message: /querystring\/uid must be integer/ }, 'naming it');
  const leap = await fetch(`${base}/api/events/stream?since=2026-06-30T23:59:60Z`, { headers: auth });
  t.match([leap.status, await leap.json()], [400, { message: /querystring\/since .*not a representable time/ }], 'the stream checks its filters too');
  t.equal((await fetch(`${base}/api/events?since=2026-06-30T23:59:60Z`, { headers: auth })).status, 400, 'as the events do');
  t.equal((await fetch(`${base}/api/events/stream?after=x`, { headers: auth })).status, 400, 'a malformed cursor: 400');
  api.failNext(500, 2);
  const down = await fetch(`${base}/api/events`, { headers: auth });
  t.match([down.status, await down.json()], [502, { message: /cannot list the agents .*HTTP 500/ }], 'the API server fails: 502, saying why');
  const downStream = await fetch(`${base}/api/events/stream`, { headers: auth });
  t.equal(downStream.status, 502, 'the stream too');

  // A reader that stops reading is cut off once a megabyte waits for it (beyond what the kernel's
  // socket buffers hold, tens of megabytes on loopback): its node's stream then closes.
  await page.uncheck('input[name="live"]');
  await eventually(() => api.portForwards === 0, 'the page\'s streams close');
  const big = serializeEvent(makeEvent({ node: 'node-a', argv: ['x'.repeat(100_000)] }));
  const unread = get(`${base}/api/events/stream?node=node-a`, { headers: auth }, (res) => res.pause());
  unread.on('error', () => undefined);
  t.teardown(() => unread.destroy());
  await eventually(() => api.portForwards === 1, 'the unread stream opens');
  let pushed = 0;
  for (; pushed < 2000 && api.portForwards === 1; pushed += 1) {
    agents[0]?.push(big, 100 + pushed);
    await new Promise((r) => setTimeout(r, 1));
  }
  await eventually(() => api.portForwards === 0, 'the unread stream is cut off');
  t.ok(pushed < 2000, `the unread stream was cut off, and its node's stream closed (after ${pushed} events of 100 kB)`);

  const none = (await (await fetch(`${base}/api/events?node=node-down`, { headers: auth })).json()) as { events: unknown[]; failures: { node: string }[]; after?: string };
  t.same([none.events, none.failures.map((f) => f.node), none.after], [[], ['node-down'], undefined], 'no node answered: no events, the failure, no cursor');
  // A stream over a node without an agent says so, and ends when the ui stops.
  const gone = await fetch(`${base}/api/events/stream?node=node-gone`, { headers: auth });
  const reader = gone.body?.pipeThrough(new TextDecoderStream()).getReader() as ReadableStreamDefaultReader<string>;
  let said = '';
  while (!said.includes('event: notice')) said += (await reader.read()).value;
  t.match(said, /event: notice\ndata: \{"node":"node-gone","message":"node node-gone: no agent pod \(app\.kubernetes\.io\/name=execwatch in namespace execwatch\) on this node"\}/, 'the stream names the node without an agent');
  const stopped = await ui.stop();
  t.equal(stopped.code, 0, 'Ctrl-C: exit 0');
  let ended = false;
  while (!ended) ended = (await reader.read()).done;
  t.ok(ended, 'open streams end with the ui');
});

t.test('ui: flags and a cluster without agents', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  for (const [args, code, message] of [
    [['ui', '--port', 'http'], 2, /--port "http" is not a port number/],
    [['ui', 'extra'], 2, /unexpected argument "extra"/],
    [['ui'], 1, /no agent pods/],
  ] as const) {
    const run = await runPlugin(kubeconfig, [...args]);
    t.equal(run.code, code, `${args.join(' ')}: exit ${code}`);
    t.match(run.stderr, message, 'says why');
  }
  const agent = await startFakeAgent([]);
  t.teardown(() => agent.close());
  addAgentPod(api, 'node-a', { localPort: agent.port });
  const first = startPlugin(kubeconfig, ['ui']);
  await eventually(() => /#token=/.test(first.stdout()), 'a first ui');
  const port = (/127\.0\.0\.1:(\d+)/.exec(first.stdout()) as RegExpExecArray)[1] as string;
  const taken = await runPlugin(kubeconfig, ['ui', '--port', port]);
  t.equal(taken.code, 2, 'a port in use: exit 2');
  t.match(taken.stderr, new RegExp(`--port ${port}: .*EADDRINUSE`), 'naming the flag');
  t.equal((await first.stop()).code, 0, 'the first one stops');
  const stoppedAlready = await runPlugin(kubeconfig, ['ui'], AbortSignal.abort());
  t.equal(stoppedAlready.code, 0, 'stopped before it listened: it closes at once, exit 0');
  const help = await runPlugin(kubeconfig, ['ui', '--help']);
  t.match(help.stdout, /Usage: kubectl execwatch ui/, '--help');
});

t.test('ui: a page gone while its agents were looked up leaves no stream open', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const agent = await startFakeAgent([]);
  t.teardown(() => agent.close());
  addAgentPod(api, 'node-a', { localPort: agent.port });
  const { base, token } = await startUi(t, kubeconfigFor(t, api));
  const release = api.stall();
  const seen = api.requests.length;
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /api/events/stream HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  await eventually(() => api.requests.length > seen, 'the agent pods asked for');
  socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 200));
  release();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal(agent.streamResumes.length, 0, 'no stream opened to the agent');
});

t.test('the streams\' cursor is left out when it would make too long a URL', async (t) => {
  t.equal(cursorOf(new Map()), undefined, 'no node answered with events: none');
  t.equal(cursorOf(new Map([['node-a', 7], ['node-b', 9]])), 'node-a:7,node-b:9', 'node:seq of each');
  const many = new Map(Array.from({ length: 1000 }, (_, i) => [`node-${String(i).padStart(4, '0')}`, 123_456] as const));
  t.equal(cursorOf(many), undefined, `over ${MAX_CURSOR_CHARS} characters: none (the streams start from now)`);
});

t.test('the process panel over the cluster: GET /api/processes asks the node the exec id names', async (t) => {
  const BOOT = '0123456789abcdef0123456789abcdef';
  const idOn = (node: string, pid: number) => execIdOfTicks({ node, bootId: BOOT }, 1000 + pid, pid);
  const parent = { execId: idOn('node-a', 10), pid: 10, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c', 'loop'] };
  const exec = makeEvent({ node: 'node-a', pid: 11, execId: idOn('node-a', 11), parentExecId: parent.execId, comm: 'curl', argv: ['curl', '-s', 'http://x'], ancestors: [parent] });
  const child = makeEvent({ node: 'node-a', pid: 12, execId: idOn('node-a', 12), parentExecId: exec.execId, comm: 'true', argv: ['true', 'child'] });
  const body = `{"exec":${serializeEvent(exec)},"ancestors":${JSON.stringify(exec.ancestors)},"children":[${serializeEvent(child)}],"session":[],"failed":[]}`;
  const api = await startApiServer();
  t.teardown(() => api.close());
  const a = await startFakeAgent([serializeEvent(exec)], { processes: { [exec.execId]: body } });
  const failing = await startFakeAgent([]);
  failing.failWith(500, 'boom');
  t.teardown(() => Promise.all([a.close(), failing.close()]));
  addAgentPod(api, 'node-a', { localPort: a.port });
  addAgentPod(api, 'node-fail', { localPort: failing.port });
  addAgentPod(api, 'node-down');
  const { url, base, auth } = await startUi(t, kubeconfigFor(t, api));
  const get = async (id: string) => {
    const res = await fetch(`${base}/api/processes/${id}`, { headers: auth });
    return [res.status, await res.json()] as const;
  };
  t.same(await get(exec.execId), [200, JSON.parse(body)], 'the agent of the node the id names answers, passed on as it is');
  t.match(await get(idOn('node-a', 99)), [404, { message: /no exec of that process/ }], 'a process it no longer holds: its 404');
  t.match(await get(idOn('node-fail', 1)), [502, { message: 'node node-fail (pod execwatch-node-fail): the agent answered HTTP 500' }], 'an agent that fails: 502 naming it');
  t.match(await get(idOn('node-down', 1)), [502, { message: /^node node-down \(pod execwatch-node-down\): .*connection refused/ }], 'an agent that cannot be reached: 502 saying why');
  t.match(await get(idOn('node-gone', 1)), [502, { message: /^node node-gone: no agent pod/ }], 'a node without an agent: 502 naming it');
  t.match(await get('not-an-id'), [400, { message: 'params/execId "not-an-id" is not an exec id' }], 'a malformed id: 400');
  api.failNext(500, 1);
  t.match(await get(exec.execId), [502, { message: /cannot list the agents .*HTTP 500/ }], 'the API server fails: 502, saying why');
  t.equal(a.queries.filter((q) => q.size === 0).length >= 2, true, 'node-a was asked for the process (twice)');

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const { page, errors } = await watchedPage(browser.context);
  await page.goto(`${base}/?open=${exec.execId}${url.slice(url.indexOf('#'))}`);
  await page.locator('#panel .children li').waitFor();
  t.same(await page.locator('#panel .lineage li').allTextContents(), ['10 sh -c loop', '11 curl -s http://x'], 'the page\'s panel shows the process over the cluster view');
  t.same(await page.locator('#panel .children li a').allTextContents(), ['12 true child'], 'with its children');
  t.same(errors, [], 'no page errors');

  a.hang();
  t.match(await get(exec.execId), [502, { message: 'node node-a (pod execwatch-node-a): no answer within 5s (--timeout)' }], 'a wedged agent: 502 naming its timeout, as the other fan-outs do');
});

t.test('what was excluded over the cluster: the nodes\' counts summed, each node\'s, the nodes that did not answer; the banner says so', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.close());
  const from = '2026-12-06T12:00:00.000Z';
  const to = '2026-12-06T12:05:00.000Z';
  const a = await startFakeAgent([eventOf(0, 1)], { excluded: { from, to, excluded: { host: 0, namespace: 0, pod: 2, origin: 0 } } });
  const b = await startFakeAgent([eventOf(1, 1)], { excluded: { from: '2026-12-06T12:01:00.000Z', to: '2026-12-06T12:06:00.000Z', excluded: { host: 1, namespace: 3, pod: 0, origin: 4 } } });
  const failing = await startFakeAgent([]);
  failing.failWith(500, 'boom');
  // A 200 of another shape (another version of the agent, a proxy's answer).
  const odd = await startFakeAgent([], { excluded: { from, to, excluded: { host: 'many' } } });
  const wedged = await startFakeAgent([]);
  wedged.hang();
  t.teardown(() => Promise.all([a.close(), b.close(), failing.close(), odd.close(), wedged.close()]));
  addAgentPod(api, 'node-a', { localPort: a.port });
  addAgentPod(api, 'node-b', { localPort: b.port });
  addAgentPod(api, 'node-fail', { localPort: failing.port });
  addAgentPod(api, 'node-odd', { localPort: odd.port });
  addAgentPod(api, 'node-wedged', { localPort: wedged.port });
  addAgentPod(api, 'node-down');
  const { url, base, auth } = await startUi(t, kubeconfigFor(t, api), '2s');

  const all = (await (await fetch(`${base}/api/excluded?since=${from}`, { headers: auth })).json()) as { from: string; to: string; excluded: unknown; nodes: { node: string }[]; failures: { node: string; reason: string }[] };
  t.same([all.from, all.to, all.excluded], [from, '2026-12-06T12:06:00.000Z', { host: 1, namespace: 3, pod: 2, origin: 4 }], 'summed, from the earliest minute counted to the latest');
  t.same(all.nodes.map((n) => n.node), ['node-a', 'node-b'], 'each node\'s counts beside them');
  t.same(all.failures.map((f) => f.node).sort(), ['node-down', 'node-fail', 'node-odd', 'node-wedged'], 'the nodes that did not answer, or not with counts');
  t.match(all.failures.find((f) => f.node === 'node-fail')?.reason, /the agent answered HTTP 500/, 'and why');
  t.match(all.failures.find((f) => f.node === 'node-wedged')?.reason, /^no answer within 2s \(--timeout\)$/, 'a wedged agent: its timeout, as the other fan-outs say it');
  t.match(all.failures.find((f) => f.node === 'node-odd')?.reason, 'not the counts of GET /api/excluded', 'a body of another shape is no count');
  t.equal(a.queries.at(-1)?.get('since'), from, 'the window passed on');
  const none = (await (await fetch(`${base}/api/excluded?node=node-down`, { headers: auth })).json()) as { from: string; to: string; excluded: unknown; nodes: unknown[] };
  t.same([none.excluded, none.nodes, none.from === none.to], [{ host: 0, namespace: 0, pod: 0, origin: 0 }, [], true], 'no node answered: nothing counted, over no time');
  const leap = await fetch(`${base}/api/excluded?since=2026-06-30T23:59:60Z`, { headers: auth });
  t.match([leap.status, await leap.json()], [400, { message: /querystring\/since .*not a representable time/ }], 'a bad window: 400, naming it');
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const { page, errors } = await watchedPage(browser.context);
  await page.goto(url);
  await page.locator('#banner').waitFor();
  const text = (await page.locator('#banner').textContent()) as string;
  t.match(text, 'Not every exec is recorded here, by design.', 'exclusions alone are by design, not an incomplete feed');
  t.match(text, '6 events excluded by scope rules (not recorded, by design): 3 by --include-namespaces / --exclude-namespaces, 2 by --exclude-pods, 1 by --exclude-host', 'the scope rules\' count, by rule');
  t.match(text, 'summed over 2 nodes', 'over the nodes that answered');
  t.match(text, '4 execs and exits excluded by --exclude-origin', 'and the origins left out');
  t.same(errors, [], 'no page errors');
  api.failNext(500, 2);
  t.equal((await fetch(`${base}/api/excluded`, { headers: auth })).status, 502, 'the API server fails: 502');
});
