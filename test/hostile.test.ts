/// <reference lib="dom" />
// Hostile execs on the real kernel, followed everywhere an event goes: control characters and
// newlines in argv, bytes that are not UTF-8, a 100 KB argument, argv == NULL, and a path name
// with a newline. The JSON API, the live stream, the --log-events lines and the browse page must
// all carry them intact (or exactly flagged), one event per line, and run nothing.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import t from 'tap';
import { ExecEventSchema, ExitEventSchema, type ExecEvent } from '../src/events/schema.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { startCommand } from './helpers/command.js';
import { ensureTracefs, execHelper, kernelTest, marker, waitFor } from './helpers/kernel.js';
import { openSse } from './helpers/sse.js';

t.test('hostile execs reach the API, the stream, the log and the page intact', kernelTest(), async (t) => {
  ensureTracefs();
  const helper = execHelper();
  const agent = await startCommand(['--argv-max-bytes', '32768']);
  t.teardown(() => {
    agent.child.kill('SIGTERM');
    return agent.exited;
  });
  const m = marker('hostile');
  const stream = await openSse(`${agent.apiUrl}/api/events/stream?q=${m}`);
  t.teardown(() => stream.close());
  await stream.waitFor((f) => f.comment === 'connected');

  const dir = mkdtempSync(join(tmpdir(), 'execwatch-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const newlinePath = join(dir, 'evil\nname');
  copyFileSync('/usr/bin/true', newlinePath);

  const control = ['\x1b[31mred\x1b[0m', 'line1\nline2', 'bell\x07', 'cr\r', '</td><script>alert(1)</script>'];
  const big = 'B'.repeat(100 * 1024);
  spawnSync('/usr/bin/true', [m, ...control]);
  spawnSync('/usr/bin/true', [m, big]);
  spawnSync(newlinePath, [m]);
  // Bytes Node cannot pass as a string: the shell's printf writes them raw.
  spawnSync('/bin/sh', ['-c', `exec /usr/bin/true ${m} "$(printf 'caf\\351\\377')"`]);
  // argv == NULL (CVE-2021-4034): no marker possible; found by the pid that exec'd.
  const empty = spawn(helper, ['empty', '/usr/bin/true'], { stdio: 'ignore' });
  const emptyPid = empty.pid as number;
  await new Promise((resolve) => empty.on('close', resolve));

  const fetchEvents = async (query: string) =>
    ((await (await fetch(`${agent.apiUrl}/api/events?${query}`)).json()) as { events: ExecEvent[] }).events;
  // Five events carry the marker: the four execs of /usr/bin/true and the shell that ran one.
  let events: ExecEvent[] = [];
  for (const deadline = Date.now() + 15_000; events.length < 5 && Date.now() < deadline; ) {
    events = await fetchEvents(`q=${m}&limit=100`);
    if (events.length < 5) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(events.length, 5, 'every marked exec is in the API');
  const byArg = (pred: (e: ExecEvent) => boolean) => events.find(pred);

  const ctl = byArg((e) => e.argv.includes('bell\x07'));
  t.same(ctl?.argv, ['/usr/bin/true', m, ...control], 'control characters and newlines: argv byte for byte');
  const long = byArg((e) => e.argv.some((a) => a.startsWith('BBBB')));
  t.equal(long?.argvTruncated, true, 'a 100 KB argument is cut at the budget and flagged');
  t.ok((long?.argv[2]?.length ?? 0) > 30_000 && (long?.argv[2]?.length ?? 0) < 32_768, `kept up to the budget (${long?.argv[2]?.length} bytes)`);
  t.equal(long?.argc, 3, 'argc still counts every argument');
  const path = byArg((e) => e.filename.includes('evil'));
  t.equal(path?.filename, newlinePath, 'a newline in the path name is kept in filename');
  const raw = byArg((e) => e.argvBase64 !== undefined);
  t.ok(raw, 'an argv with bytes that are not UTF-8 is there');
  t.match(raw?.argv[2], /^caf\uFFFD\uFFFD$/, 'shown with U+FFFD in argv');
  t.same(
    Buffer.from(raw?.argvBase64 as string, 'base64'),
    Buffer.concat([Buffer.from(`/usr/bin/true\0${m}\0`), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0xff, 0])]),
    'and exact in argvBase64',
  );

  let nullArgv: ExecEvent | undefined;
  for (const deadline = Date.now() + 15_000; !nullArgv && Date.now() < deadline; ) {
    nullArgv = (await fetchEvents('filename=/usr/bin/true&limit=10000')).find((e) => e.pid === emptyPid);
    if (!nullArgv) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(nullArgv, 'the exec with argv == NULL is recorded');
  t.ok(nullArgv && nullArgv.argv.length <= 1 && (nullArgv.argv[0] ?? '') === '', `with an empty argv (${JSON.stringify(nullArgv?.argv)})`);

  // The stream carried the same events, each frame one data line that parses to the API's event.
  const frames = await stream.waitFor((f) => f.event === 'exec', 5, 15_000);
  const streamed = new Map(frames.map((f) => [Number(f.id), JSON.parse(f.data as string) as ExecEvent]));
  // The API's event gains `exit` once its process has ended; the frame was sent at the exec.
  const atExec = (e: ExecEvent): ExecEvent => {
    const { exit: _exit, ...rest } = e;
    return rest;
  };
  for (const e of events) t.same(streamed.get(e.seq), atExec(e), `stream: seq ${e.seq} equals the API's event, without its exit`);

  // --log-events: one line per event, whatever the argv holds.
  await waitFor(() => agent.out().split('\n').filter((l) => l.includes(m)).length >= 5, 'the log lines');
  const logged = agent.out().split('\n').filter((l) => l.includes(m)).map((l) => JSON.parse(l) as ExecEvent);
  t.same(logged.map((e) => e.seq).sort(), events.map((e) => e.seq).sort(), 'log: each event exactly once, each on one line');
  for (const e of logged) t.same(e, atExec(events.find((x) => x.seq === e.seq) as ExecEvent), `log: seq ${e.seq} equals the API's event, without its exit`);
  // What a log agent parses: every line of stdout, its own and every other exec's on the host,
  // is one JSON object valid against its kind's schema.
  const ajv = new Ajv({ allErrors: false });
  formats.default(ajv, ['date-time']);
  const valid = { exec: ajv.compile(ExecEventSchema), exit: ajv.compile(ExitEventSchema) };
  const lines = agent.out().split('\n').filter((l) => l !== '');
  const strays = lines.filter((l) => {
    try {
      const line = JSON.parse(l) as { kind?: unknown };
      return !(line.kind === 'exec' || line.kind === 'exit') || !valid[line.kind](line);
    } catch {
      return true;
    }
  });
  t.same(strays.map((l) => l.slice(0, 120)), [], `stdout holds nothing but event lines, each valid against its kind's schema (${lines.length} lines; the HTTP log goes to stderr)`);

  // The page shows them as text: the script in argv is a string in a cell, and nothing runs.
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const { page, dialogs, errors } = await watchedPage(browser.context);
  await page.goto(`${agent.apiUrl}/?q=${m}`);
  const row = page.locator(`tr[data-seq="${ctl?.seq}"]`);
  await row.waitFor();
  t.equal(await page.locator('#events tbody tr').count(), events.length, 'one row per event');
  t.match(await row.locator('td.argv').textContent(), '</td><script>alert(1)</script>', 'the markup in argv is shown as text');
  t.equal(await page.locator('#events script').count(), 0, 'no script element was created from argv');
  t.match(await page.locator(`tr[data-seq="${path?.seq}"] td.binary`).textContent(), 'evil', 'the path with a newline is shown');
  await page.waitForTimeout(200);
  t.same(dialogs, [], 'no dialog opened');
  t.same(errors, [], 'no page error');
});
