// Where an exec came from: the kernel's view, the container's spec and the parent's lineage, one
// case per rule of the README's table (the real kernel's side is test/agent-origin.test.ts).
import t from 'tap';
import { classifyOrigin, type Lineage } from '../src/enrich/origin.js';
import type { ExecEvent } from '../src/events/schema.js';
import type { ContainerInfo } from '../src/kube/types.js';
import { makeEvent, makeHostEvent } from './helpers/events.js';

const PROBE = ['cat', '/tmp/healthy'];
const app: ContainerInfo = { name: 'app', image: null, imageId: null, ephemeral: false, probes: [['sh', '-c', 'true'], PROBE] };
const debugger_: ContainerInfo = { ...app, name: 'debugger', ephemeral: true, probes: [] };
const lineage = (origin: Lineage['origin'], sessionExecId: string | null = null): Lineage => ({ origin, sessionExecId });

const cases: readonly {
  name: string;
  event: Partial<ExecEvent>;
  host?: true;
  container?: ContainerInfo;
  parent?: Lineage;
  self?: Lineage;
  origin: ExecEvent['origin'];
  /** 'own': the event's execId. */
  session: string | null | 'own';
}[] = [
  { name: 'no container: host, whatever the kernel saw', event: { origin: 'exec' }, host: true, origin: 'host', session: null },
  { name: 'pid 1 of its namespace: init', event: { origin: 'init' }, container: app, origin: 'init', session: null },
  { name: 'a child of the init: workload', event: { origin: 'workload' }, container: app, parent: lineage('init'), origin: 'workload', session: null },
  { name: 'a child of a process older than the agent: workload', event: { origin: 'workload' }, container: app, parent: lineage(null), origin: 'workload', session: null },
  { name: 'a child of an unknown parent: workload', event: { origin: 'workload' }, container: app, origin: 'workload', session: null },
  { name: 'entered from outside: exec, opening a session', event: { origin: 'exec', argv: ['sh'] }, container: app, origin: 'exec', session: 'own' },
  { name: 'entered from outside with an unknown container: exec', event: { origin: 'exec', argv: PROBE }, origin: 'exec', session: 'own' },
  { name: 'entered with a probe\'s exact argv: probe, no session', event: { origin: 'exec', argv: [...PROBE] }, container: app, origin: 'probe', session: null },
  { name: 'a probe\'s argv with one more argument: exec', event: { origin: 'exec', argv: [...PROBE, 'x'] }, container: app, origin: 'exec', session: 'own' },
  { name: 'a probe\'s argv with another argument: exec', event: { origin: 'exec', argv: ['cat', '/tmp/ready'] }, container: app, origin: 'exec', session: 'own' },
  { name: 'typed in an exec session: exec, in it', event: { origin: 'workload' }, container: app, parent: lineage('exec', 's1'), origin: 'exec', session: 's1' },
  { name: 'started by a probe: probe', event: { origin: 'workload' }, container: app, parent: lineage('probe'), origin: 'probe', session: null },
  { name: 'the first process of an ephemeral container: debug, opening a session', event: { origin: 'init' }, container: debugger_, origin: 'debug', session: 'own' },
  { name: 'entering an ephemeral container sharing a pid namespace (--target): debug', event: { origin: 'exec' }, container: debugger_, origin: 'debug', session: 'own' },
  { name: 'run in a debug session: debug, in it', event: { origin: 'workload' }, container: debugger_, parent: lineage('debug', 'd1'), origin: 'debug', session: 'd1' },
  { name: 'in an ephemeral container under an unknown parent: debug, its own session', event: { origin: 'workload' }, container: debugger_, origin: 'debug', session: 'own' },
  { name: 'a failed exec: its caller\'s origin and session', event: { origin: 'workload', retval: -2 }, container: app, self: lineage('exec', 's2'), origin: 'exec', session: 's2' },
  { name: 'a failed exec of a process older than the agent: workload', event: { origin: 'workload', retval: -2 }, container: app, self: lineage(null), origin: 'workload', session: null },
  { name: 'a failed exec of an unknown host process: host', event: { origin: 'workload', retval: -13 }, host: true, origin: 'host', session: null },
];

t.test('classifyOrigin: each rule', async (t) => {
  for (const c of cases) {
    const event = c.host ? makeHostEvent(c.event) : makeEvent(c.event);
    classifyOrigin(event, c.container, c.parent, c.self);
    t.same(
      { origin: event.origin, sessionExecId: event.sessionExecId },
      { origin: c.origin, sessionExecId: c.session === 'own' ? event.execId : c.session },
      c.name,
    );
  }
});
