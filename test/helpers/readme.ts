/**
 * The README's generated parts, rebuilt from the code they document: the configuration table
 * from OPTIONS, the event's field table from its schema, the built-in redaction rules from
 * SECRET_RULES. test/readme.test.ts fails, printing the
 * expected block, when the README drifts.
 */
import { OPTIONS, type AnyOption } from '../../src/config/options.js';
import { ExecEventSchema, ExitEventSchema, GapEventSchema, ThrottleEventSchema } from '../../src/events/schema.js';
import { SECRET_RULES } from '../../src/events/secrets.js';
import { OTLP_EXIT_MAPPING, OTLP_GAP_MAPPING, OTLP_MAPPING, OTLP_THROTTLE_MAPPING, WORKLOAD_ATTRIBUTES, type FieldMapping } from '../../src/export/attributes.js';

const code = (s: string) => `\`${s}\``;

/** The rows between <!-- options-table --> and <!-- /options-table -->. */
export function optionsTable(): string {
  const rows = ['| flag | environment | default | meaning |', '|---|---|---|---|'];
  for (const o of OPTIONS as readonly AnyOption[]) {
    const env = o.env === null ? '—' : [o.env, ...(o.fallbackEnv ?? [])].map(code).join(', then ');
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

/** A field table: one row per property of `properties`. */
function fieldsTable(properties: Record<string, { description?: string }>): string {
  const rows = ['| field | type | meaning |', '|---|---|---|'];
  for (const [name, schema] of Object.entries(properties)) {
    rows.push(`| ${code(name)} | ${typeOf(schema as Parameters<typeof typeOf>[0])} | ${(schema.description as string).replaceAll('|', '\\|')} |`);
  }
  return rows.join('\n');
}

/** The rows between <!-- event-fields --> and <!-- /event-fields -->: one per exec event property. */
export function eventFieldsTable(): string {
  return fieldsTable(ExecEventSchema.properties);
}

/** The rows between <!-- exit-fields --> and <!-- /exit-fields -->: one per exit event property. */
export function exitFieldsTable(): string {
  return fieldsTable(ExitEventSchema.properties);
}

/** The rows between <!-- throttle-fields --> and <!-- /throttle-fields -->: one per throttle event property. */
export function throttleFieldsTable(): string {
  return fieldsTable(ThrottleEventSchema.properties);
}

/** The rows between <!-- gap-fields --> and <!-- /gap-fields -->: one per gap event property. */
export function gapFieldsTable(): string {
  return fieldsTable(GapEventSchema.properties);
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

/** Where the workload goes: one attribute per kind the semantic conventions name. */
function workloadCell(): string {
  const named = [...WORKLOAD_ATTRIBUTES].filter(([, name]) => name !== null).map(([kind, name]) => `${code(name as string)} (${kind})`);
  return `${named.join(', ')}; a bare pod has none beyond \`k8s.pod.name\`; any other kind: \`execwatch.workload.kind\` and \`execwatch.workload.name\``;
}

/** Each kind's mapping, and the first column's heading of its table. */
const OTLP_TABLES = {
  exec: { mapping: OTLP_MAPPING, heading: 'event field' },
  exit: { mapping: OTLP_EXIT_MAPPING, heading: 'exit field' },
  throttle: { mapping: OTLP_THROTTLE_MAPPING, heading: 'throttle field' },
  gap: { mapping: OTLP_GAP_MAPPING, heading: 'gap field' },
} as const;

/**
 * The rows between <!-- otlp-attributes --> and <!-- /otlp-attributes -->: one per row of
 * OTLP_MAPPING; for another kind, those between <!-- otlp-KIND-attributes --> and its end, one
 * per row of its mapping.
 */
export function otlpTable(kind: keyof typeof OTLP_TABLES = 'exec'): string {
  const mapping = OTLP_TABLES[kind].mapping as readonly FieldMapping<Record<string, unknown>>[];
  const rows = [`| ${OTLP_TABLES[kind].heading} | in the OTLP log record |`, '|---|---|'];
  for (const row of mapping) {
    const where = row.field === 'workload'
      ? workloadCell()
      : row.field === 'image'
        ? `${code(row.name)} (the repository) and \`container.image.tags\` (its tag, when it has one)`
      : row.to === 'eventName'
        ? `the record's event name, ${code(row.name)}`
        : row.to === 'timestamp'
        ? 'the record\'s timestamp (`timeUnixNano`), to the nanosecond'
          : row.to === 'none'
            ? `not exported: ${row.name}`
          : row.to === 'resource'
            ? `resource attribute ${code(row.name)}`
            : code(row.name) + ('valueNote' in row ? ` (${row.valueNote})` : '') + ('onlyWhenTrue' in row ? ' (only when true)' : '');
    rows.push(`| ${code(String(row.field))} | ${where} |`);
  }
  return rows.join('\n');
}
