/**
 * The README's generated parts, rebuilt from the code they document: the configuration table
 * from OPTIONS, the event's field table from its schema, the built-in redaction rules from
 * SECRET_RULES. test/readme.test.ts fails, printing the
 * expected block, when the README drifts.
 */
import { OPTIONS } from '../../src/config/options.js';
import { ExecEventSchema } from '../../src/events/schema.js';
import { SECRET_RULES } from '../../src/events/secrets.js';

const code = (s: string) => `\`${s}\``;

/** The rows between <!-- options-table --> and <!-- /options-table -->. */
export function optionsTable(): string {
  const rows = ['| flag | environment | default | meaning |', '|---|---|---|---|'];
  for (const o of OPTIONS) {
    const fallback = 'fallbackEnv' in o ? o.fallbackEnv : null;
    const env = o.env === null ? '—' : [o.env, fallback].filter((e) => e !== null).map((e) => code(e as string)).join(', then ');
    const flag = code(`${o.flag}${o.value ? ` ${o.value}` : ''}`);
    const dflt = /^(none|the .*)$/.test(o.default) ? o.default : code(o.default);
    rows.push(`| ${flag} | ${env} | ${dflt} | ${o.description.replaceAll('|', '\\|')} |`);
  }
  return rows.join('\n');
}

/** A field's JSON type as the table shows it. */
function typeOf(schema: { type?: string | string[]; items?: { type?: string } }): string {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type as string];
  return types
    .map((type) => (type === 'integer' ? 'number' : type === 'array' ? `${schema.items?.type}[]` : type))
    .join(' \\| ');
}

/** The rows between <!-- event-fields --> and <!-- /event-fields -->: one per schema property. */
export function eventFieldsTable(): string {
  const rows = ['| field | type | meaning |', '|---|---|---|'];
  for (const [name, schema] of Object.entries(ExecEventSchema.properties)) {
    rows.push(`| ${code(name)} | ${typeOf(schema as Parameters<typeof typeOf>[0])} | ${(schema.description as string).replaceAll('|', '\\|')} |`);
  }
  return rows.join('\n');
}

/** An argv as a shell command line: arguments with spaces or quotes in single quotes, newlines as \n. */
function commandLine(argv: readonly string[]): string {
  return argv.map((a) => (/[\s"'|]/.test(a) ? `'${a.replaceAll('\n', '\\n')}'` : a)).join(' ');
}

/** The rows between <!-- secret-rules --> and <!-- /secret-rules -->: one per built-in rule. */
export function secretRulesTable(): string {
  const rows = ['| rule | what is masked | example |', '|---|---|---|'];
  for (const rule of SECRET_RULES) {
    const example = `${code(commandLine(rule.example.argv))} → ${code(commandLine(rule.example.redacted))}`;
    rows.push(`| ${rule.name} | ${rule.masks} | ${example.replaceAll('|', '\\|')} |`);
  }
  return rows.join('\n');
}
