// execId: what it is made of, the same from the kernel's nanoseconds and from /proc's clock ticks.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { execIdOf, execIdOfTicks, parseExecId, readBootId } from '../src/events/exec-id.js';

const scope = { node: 'node-1', bootId: '0123456789abcdef0123456789abcdef' };

t.test('the same process gives the same id from ns and from ticks; another pid or tick another', async (t) => {
  const id = execIdOf(scope, 123_456_789_012n, 4242);
  t.equal(id, execIdOfTicks(scope, 12345, 4242), 'ns floored to 10 ms ticks');
  t.not(id, execIdOf(scope, 123_460_000_000n, 4242), 'the next tick');
  t.not(id, execIdOf(scope, 123_456_789_012n, 4243), 'another pid');
  t.not(id, execIdOf({ ...scope, node: 'node-2' }, 123_456_789_012n, 4242), 'another node');
  t.match(id, /^[A-Za-z0-9_.-]+$/, 'URL-safe');
  t.same(parseExecId(id), { node: 'node-1', bootId: scope.bootId, ticks: 12345, pid: 4242 }, 'parses back');
  t.same(parseExecId(execIdOfTicks({ ...scope, node: 'a:b' }, 1, 2))?.node, 'a:b', 'a node name with colons');
  t.equal(parseExecId('bm90IGFuIGlk'), null, 'not an execId');
  t.equal(parseExecId('bm90IGFuIGlk.1.2'), null, 'a prefix that is not node:bootId');
  t.match(id, /\.12345\.4242$/, 'ends in the ticks and the pid');
});

t.test('readBootId: the kernel\'s boot id without dashes', async (t) => {
  const dir = t.testdir({ proc: { sys: { kernel: { random: { boot_id: '01234567-89ab-cdef-0123-456789abcdef\n' } } } } });
  t.equal(readBootId(`${dir}/`), '0123456789abcdef0123456789abcdef', 'from a given root');
  t.equal(readBootId(), readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', ''), 'this machine\'s');
});
