// --redact: secrets in argv are replaced before anything stores, streams or logs the event.
import t from 'tap';
import { createRedactor, REDACTED } from '../src/events/redact.js';
import { makeEvent } from './helpers/events.js';

t.test('matching substrings become *** in every argument', async (t) => {
  const cases = [
    { patterns: [/--password=\S+/g], argv: ['mysql', '--password=hunter2', '-u', 'root'], want: ['mysql', REDACTED, '-u', 'root'] },
    { patterns: [/(?<=token=)[^&]+/g], argv: ['curl', 'http://x/?token=abc&b=1&token=def'], want: ['curl', `http://x/?token=${REDACTED}&b=1&token=${REDACTED}`] },
    { patterns: [/AKIA[0-9A-Z]{16}/g, /secret/gi], argv: ['aws', 'AKIAABCDEFGHIJKLMNOP', 'SeCrEt-x'], want: ['aws', REDACTED, `${REDACTED}-x`] },
    { patterns: [/a b/g], argv: ['a', 'b'], want: ['a', 'b'] },
  ] as const;
  for (const c of cases) {
    const event = makeEvent({ argv: [...c.argv] });
    const changed = createRedactor([...c.patterns])(event);
    t.same(event.argv, c.want, `${c.patterns.join(' ')} over ${JSON.stringify(c.argv)}`);
    t.equal(changed, JSON.stringify(c.argv) !== JSON.stringify(c.want), 'reports whether it changed anything');
  }
});

t.test('a redaction drops argvBase64, which would still hold the secret', async (t) => {
  const raw = Buffer.from('tool\0--key=s3cr\xfft\0', 'latin1').toString('base64');
  const redact = createRedactor([/--key=\S+/g]);
  const hit = makeEvent({ argv: ['tool', '--key=s3cr\ufffdt'], argvBase64: raw });
  redact(hit);
  t.equal(hit.argvBase64, undefined, 'argvBase64 removed');
  t.notMatch(JSON.stringify(hit), /s3cr/, 'the secret appears nowhere in the JSON');
  const miss = makeEvent({ argv: ['tool', '\ufffd'], argvBase64: raw });
  redact(miss);
  t.equal(miss.argvBase64, raw, 'kept when nothing was redacted');
});

t.test('without patterns events pass untouched', async (t) => {
  const event = makeEvent({ argv: ['echo', 'password=x'] });
  t.equal(createRedactor([])(event), false, 'nothing changed');
  t.same(event.argv, ['echo', 'password=x'], 'argv intact');
});
