// Where an exec came from, on the real kernel: a container simulated with real kernel objects (a
// cgroup named as containerd names it, a new pid namespace whose pid 1 is the init, the pod from
// the API-server double with an exec liveness probe in its spec, and an ephemeral container of it),
// entered from outside with nsenter as a runtime's exec enters it. Checked where a user looks:
// /api/events, /api/processes and /metrics; and a second agent with --exclude-origin probe.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startAgent, type Agent } from '../src/agent.js';
import { loadNativeBinding } from '../src/capture/native.js';
import type { ExecEvent } from '../src/events/schema.js';
import { makePod } from './helpers/apiserver.js';
import { startApiServer } from './helpers/apiserver.js';
import { ensureTracefs, execHelper, finished, inCgroup, kernelTest, makeCgroup, marker, namespaceInit } from './helpers/kernel.js';
import { cgroupArea, configOf, events, kubeconfigFor, NAMESPACE, podsGauge, ready, sampleValue, samples } from './helpers/kube.js';
import { eventually } from './helpers/poll.js';

const NODE = 'origin-node';

const containerd = (uid: string, id: string) => ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`];

function startOf(args: string[]): Promise<Agent> {
  return startAgent(
    configOf([
      '--node-name', NODE,
      '--metrics-address', '127.0.0.1:0',
      '--api-address', '127.0.0.1:0',
      '--enrich-wait', '5s',
      // Other tests may exec in bursts on this machine meanwhile: keep ours in the ring.
      '--recent-events', '200000',
      '--log-level', 'warn',
      ...args,
    ]),
    { binding: loadNativeBinding(), stdout: new Writable({ write: (_c, _e, done) => done() }), version: '0.0.0-test' },
  );
}


/** The exec events of `agent` whose argv holds marker `m`, oldest first. */
async function execsOf(agent: Agent, m: string): Promise<ExecEvent[]> {
  return (await events(agent.apiUrl, { q: m, limit: '10000' })).filter((e) => e.argv.includes(m)).reverse();
}

t.test('origin and sessions of a simulated container\'s execs, on the real kernel', kernelTest(), async (t) => {
  ensureTracefs();
  execHelper();
  const api = await startApiServer();
  t.teardown(() => api.close());
  const kubeconfig = kubeconfigFor(t, api);
  const area = cgroupArea(t, NODE);

  const agent = await startOf(['--kubeconfig', kubeconfig]);
  t.teardown(() => agent.close());
  const excluding = await startOf(['--kubeconfig', kubeconfig, '--exclude-origin', 'probe']);
  t.teardown(() => excluding.close());
  await eventually(async () => (await ready(agent.metricsUrl)) && (await ready(excluding.metricsUrl)), '/readyz of both agents');

  const m = marker('origin');
  const probe = ['/usr/bin/true', 'probe', m];
  const c = area('origin', containerd, 'containerd');
  // The ephemeral container (kubectl debug) of the same pod: a cgroup beside the app's.
  const debugId = randomBytes(32).toString('hex');
  const debugCgroup = join(dirname(c.cgroup), `cri-containerd-${debugId}.scope`);
  makeCgroup(debugCgroup);
  const pod = makePod({
    name: c.podName,
    namespace: NAMESPACE,
    uid: c.uid,
    nodeName: NODE,
    containers: [{ name: 'app', id: c.id, livenessProbe: probe }],
    ephemeralContainers: [{ name: 'debugger', id: debugId }],
    owner: { kind: 'ReplicaSet', name: `${c.deployment}-abc12` },
  });
  const pods = await podsGauge(agent.metricsUrl);
  api.addPod(pod);
  await eventually(async () => (await podsGauge(agent.metricsUrl)) === pods + 1 && (await podsGauge(excluding.metricsUrl)) === pods + 1, 'both agents to know the pod');
  const excludedBefore = await sampleValue(excluding.metricsUrl, 'execwatch_events_excluded_total', { reason: 'origin' });

  // The container's init: pid 1 of a new pid namespace, which starts a child and stays.
  const init = inCgroup(c.cgroup, ['/usr/bin/unshare', 'unshare', '--pid', '--fork', '--kill-child', '/bin/sh', '-c', `/usr/bin/true workload ${m}; exec /bin/sleep 60`, 'init', m]);
  t.teardown(() => init.kill('SIGKILL'));
  let initPid: number | undefined;
  await eventually(() => (initPid = namespaceInit(c.cgroup)) !== undefined, 'the init in the container\'s cgroup');
  // Entered from outside, as a runtime's exec enters: nsenter's child is in the namespace, nsenter not.
  const enter = (argv: string[]) => finished(inCgroup(c.cgroup, ['/usr/bin/nsenter', 'nsenter', '-t', String(initPid), '--pid', '--', ...argv]));
  // With a subshell in the middle (dash would run one that came last in the shell itself): the
  // subshell forks and never execs, and what it forks is still typed in the session.
  await enter(['/bin/sh', '-c', `/usr/bin/true typed ${m}; (/usr/bin/true in-subshell ${m}; /usr/bin/true subshell-last ${m}); /usr/bin/true typed-again ${m}`, 'shell', m]);
  await enter(probe);
  // kubectl debug: an ephemeral container with a pid namespace of its own.
  await finished(inCgroup(debugCgroup, ['/usr/bin/unshare', 'unshare', '--pid', '--fork', '/bin/sh', '-c', `/usr/bin/true debugged ${m}`, 'debug', m]));
  await finished(spawn('/usr/bin/true', ['host', m]));

  const byArg = (list: ExecEvent[], what: string) => list.find((e) => e.argv[1] === what || (e.argv[0] === '/bin/sh' && e.argv[3] === what));
  const wanted = ['init', 'workload', 'shell', 'typed', 'in-subshell', 'subshell-last', 'typed-again', 'probe', 'debug', 'debugged', 'host'];
  let seen: ExecEvent[] = [];
  await eventually(async () => {
    seen = await execsOf(agent, m);
    return wanted.every((w) => byArg(seen, w) !== undefined);
  }, 'every exec of the scenario in /api/events');
  const of = (w: string) => byArg(seen, w) as ExecEvent;

  const expected = [
    ['init', 'init', 'pid 1 of the container\'s pid namespace'],
    ['workload', 'workload', 'a child of the init'],
    ['shell', 'exec', 'a shell entered from outside the namespace (nsenter, as kubectl exec)'],
    ['typed', 'exec', 'a command typed in that shell'],
    ['in-subshell', 'exec', 'a command a subshell of that shell forked (the subshell never exec\'d)'],
    ['subshell-last', 'exec', 'the subshell\'s last command, exec\'d in its place'],
    ['typed-again', 'exec', 'the next command typed in it'],
    ['probe', 'probe', 'the same entry with the liveness probe\'s exact argv'],
    ['debug', 'debug', 'the ephemeral container\'s first process'],
    ['debugged', 'debug', 'a command run in the ephemeral container'],
    ['host', 'host', 'a host process'],
  ] as const;
  for (const [what, origin, why] of expected) t.equal(of(what).origin, origin, `${why}: ${origin}`);
  t.match(of('init'), { namespace: NAMESPACE, pod: c.podName, container: 'app' }, 'in the pod\'s app container');
  t.match(of('debug'), { pod: c.podName, container: 'debugger' }, 'the debug process in the ephemeral container');

  const session = of('shell').execId;
  t.equal(of('shell').sessionExecId, session, 'the shell opened a session: its own execId');
  t.same(['typed', 'in-subshell', 'subshell-last', 'typed-again'].map((w) => of(w).sessionExecId), [session, session, session, session], 'what is typed in it, its subshell\'s commands too, shares the shell\'s sessionExecId');
  t.equal(of('in-subshell').parentExecId, session, 'the subshell\'s child names the shell, whose image the subshell runs');
  t.equal(of('debug').sessionExecId, of('debug').execId, 'the debug container\'s first process opens a session');
  t.equal(of('debugged').sessionExecId, of('debug').execId, 'and what it runs is in it');
  t.same(['init', 'workload', 'probe', 'host'].map((w) => of(w).sessionExecId), [null, null, null, null], 'no session for the other origins');

  // The shell may exec its last command in place (dash does): that one has the shell's execId.
  t.same(
    (await events(agent.apiUrl, { sessionExecId: session })).map((e) => (e.argv[0] === '/bin/sh' ? 'shell' : e.argv[1])).sort(),
    ['in-subshell', 'shell', 'subshell-last', 'typed', 'typed-again'],
    '?sessionExecId= lists the shell and every command typed in it',
  );
  const probes = (await events(agent.apiUrl, { origin: 'probe', namespace: NAMESPACE, pod: c.podName })).map((e) => e.argv);
  t.same(probes, [probe], '?origin=probe finds the probe');
  const res = await fetch(`${agent.apiUrl}/api/processes/${session}`);
  const process = (await res.json()) as { session: ExecEvent[] };
  t.ok(process.session.some((e) => e.argv[1] === 'typed'), 'GET /api/processes/<the shell> lists its session');

  const execSeries = (await samples(agent.metricsUrl, 'execwatch_execs_total')).filter((s) => s.labels.pod === c.podName && s.labels.container === 'app');
  const byOrigin = (origin: string) => execSeries.filter((s) => s.labels.origin === origin).reduce((sum, s) => sum + s.value, 0);
  t.equal(byOrigin('probe'), 1, 'execwatch_execs_total{origin="probe"} counts the probe');
  t.ok(byOrigin('exec') >= 2, 'execwatch_execs_total{origin="exec"} counts the session');

  // The agent with --exclude-origin probe: the probe is not delivered, and counted with its exit.
  await eventually(async () => (await execsOf(excluding, m)).some((e) => e.argv[1] === 'typed-again'), 'the session in the excluding agent');
  const kept = await execsOf(excluding, m);
  t.notOk(kept.some((e) => e.origin === 'probe' || e.argv[1] === 'probe'), '--exclude-origin probe: the probe is not in /api/events');
  t.ok(kept.some((e) => e.argv[1] === 'typed'), 'what is not a probe still is');
  await eventually(
    async () => (await sampleValue(excluding.metricsUrl, 'execwatch_events_excluded_total', { reason: 'origin' })) === excludedBefore + 2,
    'execwatch_events_excluded_total{reason="origin"} to count the probe\'s exec and exit',
  );
  t.pass('the probe\'s exec and exit are counted as excluded');
});
