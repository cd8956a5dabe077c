/**
 * The README's generated parts, rebuilt from the code they document: the configuration table
 * from OPTIONS. test/readme.test.ts fails, printing the expected block, when the README drifts.
 */
import { OPTIONS } from '../../src/config/options.js';

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
