// The README documents what the code does: every flag (the table is generated from OPTIONS), every
// metric family, every loss stage, every query parameter of the event routes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EventsQuery, StreamQuery } from '../src/events/filter.js';
import { LOST_STAGES } from '../src/metrics/index.js';
import { repoRoot } from './helpers/kernel.js';
import { idleMetrics } from './helpers/metrics.js';
import { eventFieldsTable, exitFieldsTable, gapFieldsTable, optionsTable, otlpTable, secretRulesTable, throttleFieldsTable } from './helpers/readme.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The README between two markers, failing the test when either is missing or out of order. */
function between(t: { ok: (v: unknown, m: string) => unknown }, from: string, to: string): string {
  const start = readme.indexOf(from);
  const end = readme.indexOf(to, start);
  t.ok(start >= 0 && end > start, `the README has ${JSON.stringify(from)} before ${JSON.stringify(to)}`);
  return start >= 0 && end > start ? readme.slice(start, end) : '';
}

t.test('the configuration table is the one OPTIONS generates', async (t) => {
  const block = /<!-- options-table -->\n([\s\S]*?)\n<!-- \/options-table -->/.exec(readme);
  t.ok(block, 'the README has the marked table');
  t.equal(block?.[1], optionsTable(), 'README table matches OPTIONS (replace the block with the expected text)');
});

t.test('every metric family and loss stage is documented', async (t) => {
  const metrics = idleMetrics({ labels: ['namespace', 'workload', 'pod', 'container'] });
  const families = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('execwatch_'));
  t.ok(families.length >= 10, `found the agent's families (${families.length})`);
  for (const name of families) t.match(readme, `\`${name}\``, `${name} is in the README`);
  for (const stage of LOST_STAGES) t.match(readme, `\`${stage}\``, `loss stage ${stage} is in the README`);
});

t.test('every query parameter of the event routes is documented', async (t) => {
  const section = between(t, '## Endpoints', '## Metrics');
  const names = new Set([...Object.keys(EventsQuery.properties), ...Object.keys(StreamQuery.properties)]);
  for (const name of names) t.match(section, new RegExp(`\`${name}\``), `${name} is in the Endpoints section`);
});

t.test('the event field table is the one the event schema generates', async (t) => {
  const block = /<!-- event-fields -->\n([\s\S]*?)\n<!-- \/event-fields -->/.exec(readme);
  t.ok(block, 'the README has the marked table');
  t.equal(block?.[1], eventFieldsTable(), 'README table matches the schema (replace the block with the expected text)');
});

t.test('the exit event\'s field table is the one its schema generates', async (t) => {
  const block = /<!-- exit-fields -->\n([\s\S]*?)\n<!-- \/exit-fields -->/.exec(readme);
  t.ok(block, 'the README has the marked table');
  t.equal(block?.[1], exitFieldsTable(), 'README table matches the exit schema (replace the block with the expected text)');
});

t.test('the throttle and gap events\' field tables are the ones their schemas generate', async (t) => {
  for (const [name, table] of [['throttle', throttleFieldsTable()], ['gap', gapFieldsTable()]] as const) {
    const block = new RegExp(`<!-- ${name}-fields -->\\n([\\s\\S]*?)\\n<!-- /${name}-fields -->`).exec(readme);
    t.ok(block, `the README has the marked ${name} table`);
    t.equal(block?.[1], table, `README table matches the ${name} schema (replace the block with the expected text)`);
  }
});

t.test('the built-in redaction rules are the ones SECRET_RULES lists', async (t) => {
  const block = /<!-- secret-rules -->\n([\s\S]*?)\n<!-- \/secret-rules -->/.exec(readme);
  t.ok(block, 'the README has the marked table');
  t.equal(block?.[1], secretRulesTable(), 'README table matches SECRET_RULES (replace the block with the expected text)');
});

t.test('the OTLP attribute table is the one the mapping generates', async (t) => {
  const block = /<!-- otlp-attributes -->\n([\s\S]*?)\n<!-- \/otlp-attributes -->/.exec(readme);
  t.ok(block, 'the README has the marked table');
  t.equal(block?.[1], otlpTable(), 'README table matches OTLP_MAPPING (replace the block with the expected text)');
  const exits = /<!-- otlp-exit-attributes -->\n([\s\S]*?)\n<!-- \/otlp-exit-attributes -->/.exec(readme);
  t.ok(exits, 'the README has the marked table of exit records');
  t.equal(exits?.[1], otlpTable('exit'), 'README table matches OTLP_EXIT_MAPPING (replace the block with the expected text)');
  for (const kind of ['throttle', 'gap'] as const) {
    const block = new RegExp(`<!-- otlp-${kind}-attributes -->\\n([\\s\\S]*?)\\n<!-- /otlp-${kind}-attributes -->`).exec(readme);
    t.ok(block, `the README has the marked table of ${kind} records`);
    t.equal(block?.[1], otlpTable(kind), `README table matches the ${kind} mapping (replace the block with the expected text)`);
  }
});

t.test('the quick start is the two commands, in the first screen', async (t) => {
  const firstScreen = readme.split('\n').slice(0, 40).join('\n');
  t.match(firstScreen, 'sudo npm start', 'npm start');
  t.match(firstScreen, 'sudo npm test', 'npm test');
  t.match(firstScreen, /Requirements: Linux ≥ 5\.8 with BTF/, 'the requirements');
  t.match(firstScreen, /execwatch: metrics +http:\/\/.*\/metrics/, 'what the agent prints');
});

t.test('the README has the sections the issues ask for', async (t) => {
  for (const heading of ['Quick start', 'Endpoints', 'Metrics', 'Kubernetes', 'Security', 'Reliability', 'Performance', 'Configuration', 'Troubleshooting']) {
    t.match(readme, new RegExp(`^## ${heading}$`, 'm'), `## ${heading}`);
  }
});
