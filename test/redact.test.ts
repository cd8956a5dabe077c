// Redaction: secrets in argv are replaced before anything stores, streams or logs the event: the
// built-in rules (on unless --no-default-redaction), then the --redact patterns, compiled as the
// configuration compiles them, for V8's linear engine.
import t from 'tap';
import { regex } from '../src/config/values.js';
import { createRedactor, REDACTED } from '../src/events/redact.js';
import { makeEvent } from './helpers/events.js';

/** --redact patterns as the agent compiles them. */
const patterns = (...sources: string[]) => sources.flatMap((source) => regex(source));

t.test('--redact: matching substrings become *** in every argument', async (t) => {
  const cases = [
    { patterns: ['--password=\\S+'], argv: ['mysql', '--password=hunter2', '-u', 'root'], want: ['mysql', REDACTED, '-u', 'root'] },
    { patterns: ['token=[^&]+'], argv: ['curl', 'http://x/?token=abc&b=1&token=def'], want: ['curl', `http://x/?${REDACTED}&b=1&${REDACTED}`] },
    { patterns: ['AKIA[0-9A-Z]{16}', '[Ss][Ee][Cc][Rr][Ee][Tt]'], argv: ['aws', 'AKIAABCDEFGHIJKLMNOP', 'SeCrEt-x'], want: ['aws', REDACTED, `${REDACTED}-x`] },
    { patterns: ['a b'], argv: ['a', 'b'], want: ['a', 'b'] },
  ] as const;
  for (const c of cases) {
    const event = makeEvent({ argv: [...c.argv] });
    const changed = createRedactor(patterns(...c.patterns), false)(event);
    t.same(event.argv, c.want, `${c.patterns.join(' ')} over ${JSON.stringify(c.argv)}`);
    t.equal(changed, JSON.stringify(c.argv) !== JSON.stringify(c.want), 'reports whether it changed anything');
  }
});

t.test('the built-in rules are on unless turned off, and apply before --redact', async (t) => {
  const argv = ['mysql', '--password', 'hunter2', '-h', 'db-7', 'shop'] as const;
  const on = makeEvent({ argv: [...argv] });
  t.ok(createRedactor([], true)(on), 'on: changed');
  t.same(on.argv, ['mysql', '--password', REDACTED, '-h', 'db-7', 'shop'], 'on: the value of --password, in the next argument, is masked');
  const off = makeEvent({ argv: [...argv] });
  t.notOk(createRedactor([], false)(off), 'off (--no-default-redaction): nothing changed');
  t.same(off.argv, argv, 'off: argv intact');
  const both = makeEvent({ argv: [...argv] });
  createRedactor(patterns('db-\\d+'), true)(both);
  t.same(both.argv, ['mysql', '--password', REDACTED, '-h', REDACTED, 'shop'], 'both: the rules and the pattern');
});

t.test('a redaction drops argvBase64, which would still hold the secret', async (t) => {
  const raw = Buffer.from('tool\0--key=s3cr\xfft\0', 'latin1').toString('base64');
  const cases = [
    ['--redact', createRedactor(patterns('--key=\\S+'), false), ['tool', '--key=s3cr\ufffdt']],
    ['a built-in rule', createRedactor([], true), ['tool', '--api-key=s3cr\ufffdt']],
  ] as const;
  for (const [name, redact, argv] of cases) {
    const hit = makeEvent({ argv: [...argv], argvBase64: raw });
    redact(hit);
    t.equal(hit.argvBase64, undefined, `${name}: argvBase64 removed`);
    t.notMatch(JSON.stringify(hit), /s3cr/, `${name}: the secret appears nowhere in the JSON`);
    const miss = makeEvent({ argv: ['tool', '\ufffd'], argvBase64: raw });
    redact(miss);
    t.equal(miss.argvBase64, raw, `${name}: kept when nothing was redacted`);
  }
});

t.test('without patterns or rules events pass untouched', async (t) => {
  const event = makeEvent({ argv: ['echo', 'password=x'] });
  t.equal(createRedactor([], false)(event), false, 'nothing changed');
  t.same(event.argv, ['echo', 'password=x'], 'argv intact');
});

t.test('a nested-quantifier pattern over a 100 KB argument completes (bench/redact.mjs times it)', async (t) => {
  // On the backtracking engine this takes longer than the universe has existed.
  const event = makeEvent({ argv: ['sh', `${'a'.repeat(100_000)}b`, 'aaa'] });
  createRedactor(patterns('(a+)+$'), true)(event);
  t.same(event.argv.map((a) => a.slice(0, 4)), ['sh', `${'a'.repeat(4)}`, REDACTED], 'matched where it matches, done');
});
