/** The --help text, generated from the option table. */
import { packageVersion } from '../package.js';
import { OPTIONS, type AnyOption } from './options.js';

export function helpText(version: string = packageVersion()): string {
  const lines = [
    'Usage: execwatch [options]',
    '',
    `execwatch ${version}: records every exec on this node with eBPF and tells which pod ran it.`,
    'Every option is also an environment variable; a flag wins over its variable.',
    'A switch (an option without a value) is turned off with --no-<option>; as --option=value and',
    'in its variable it takes 1, 0, true, false, yes or no. A value is the next argument, or follows =.',
    '',
    'Options:',
  ];
  for (const o of OPTIONS as readonly AnyOption[]) {
    const env = [o.env, ...(o.fallbackEnv ?? [])].filter((e) => e !== null).join(', then ');
    lines.push(`  ${o.flag}${o.value ? ` ${o.value}` : ''}`, `      ${o.description}`);
    lines.push(`      ${env ? `env ${env}; ` : ''}default ${o.default}`);
  }
  lines.push('  -h, --help', '      Print this help and exit.', '  --version', '      Print the version and exit.', '');
  return lines.join('\n');
}
