/**
 * The command line and the environment to a Config. node:util parseArgs reads the flags as the
 * option table declares them: `--flag value` and `--flag=value`, switches (`--x`, `--no-x`),
 * repeatable options, and it refuses unknown flags and stray arguments; its errors are reworded
 * here as ours. Two forms execwatch has always taken are turned into parseArgs' first (`--x=false`
 * for a switch, and `--flag -value`, a value that starts with '-', such as a --redact pattern).
 * Each value then goes through its validator: a flag wins over its variable, the variable over the
 * default.
 */
import { parseArgs } from 'node:util';
import { ConfigError, type Config } from '../config.js';
import { packageVersion } from '../package.js';
import { helpText } from './help.js';
import { OPTIONS, type AnyOption } from './options.js';
import type { Invalid } from './values.js';

/** What the command line asks for: run with a configuration, print help, or print the version. */
export type ParsedCommand =
  | { kind: 'run'; config: Config }
  | { kind: 'help'; text: string }
  | { kind: 'version'; version: string };

/** The option table as parseArgs takes it (names without the dashes), with --help (-h) and --version. */
const PARSE_ARGS_OPTIONS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
  ...Object.fromEntries(
    OPTIONS.map((o) => [o.flag.slice(2), { type: 'boolean' in o ? 'boolean' : 'string', multiple: 'repeatable' in o }] as const),
  ),
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

/** What a flag's value is when parseArgs has read it: a switch's state, one value or a repeatable option's values. */
type FlagValue = boolean | string | string[] | undefined;

/**
 * The arguments as parseArgs reads them: a switch given a value (`--log-events=false`) becomes
 * `--log-events` or `--no-log-events`, and an option's value in the next argument is joined to it
 * (`--redact -p\\S+` becomes `--redact=-p\\S+`: parseArgs would take `-p…` for a flag).
 */
function normalized(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : '';
    const type = name === 'help' || name === 'version' ? undefined : PARSE_ARGS_OPTIONS[name]?.type;
    if (type === 'boolean' && eq >= 0) {
      const value = arg.slice(eq + 1);
      out.push(parseRaw(OPTIONS.find((o) => o.flag === `--${name}`) as AnyOption, { value, source: `--${name}` }) ? `--${name}` : `--no-${name}`);
    } else if (type === 'string' && eq < 0 && i + 1 < args.length) {
      i += 1;
      out.push(`${arg}=${args[i] as string}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** parseArgs over the table; its errors become one-line ConfigErrors. */
function readFlags(args: readonly string[]) {
  try {
    return parseArgs({ args: normalized(args), options: PARSE_ARGS_OPTIONS, strict: true, allowPositionals: false, allowNegative: true, tokens: true });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw reworded(err as NodeJS.ErrnoException);
  }
}

/**
 * parseArgs' message as our one line: it names the argument in quotes on its first line
 * ("Unknown option '--foo'", "Option '--log-level <value>' argument missing", "Option '-h, --help'
 * does not take an argument", "Unexpected argument 'serve'. …").
 */
function reworded(err: NodeJS.ErrnoException): Error {
  const quoted = (/'(.*)'/.exec(err.message.split('\n')[0] as string) as RegExpExecArray)[1] as string;
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new ConfigError(`unknown flag ${quoted} (see --help)`);
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return new ConfigError(`unexpected argument ${JSON.stringify(quoted)}: execwatch takes only flags (see --help)`);
  }
  // parseArgs rejects input with the three codes handled here; any other is a bug in the table above.
  /* c8 ignore next */
  if (err.code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return err;
  const flag = (/--[\w-]+/.exec(quoted) as RegExpExecArray)[0];
  // What is left after normalized(): a value given to --help, --version or a --no-x switch.
  if (PARSE_ARGS_OPTIONS[flag.slice(2)]?.type === 'boolean') return new ConfigError(`${flag} takes no value here (see --help)`);
  // A value-taking option as the last argument.
  const placeholder = (OPTIONS.find((o) => o.flag === flag) as AnyOption).value;
  return new ConfigError(`${flag}: a value is missing (${flag} ${placeholder}; see --help)`);
}

/** A raw value and where it came from, for the error message. */
interface Raw {
  value: string;
  source: string;
}

function envValues(o: AnyOption, env: NodeJS.ProcessEnv): Raw[] | null {
  if (o.env !== null && env[o.env] !== undefined) {
    const value = env[o.env] as string;
    const source = `${o.env} (${o.flag})`;
    // A repeatable option's variable holds one value per line: a value (--redact's regex) may
    // contain commas or spaces, never a newline worth keeping.
    if (o.repeatable) return value.split(/\r?\n/).filter((line) => line !== '').map((v) => ({ value: v, source }));
    return [{ value, source }];
  }
  // The first of the conventional variables that is set.
  const fallback = (o.fallbackEnv ?? []).find((name) => env[name] !== undefined);
  if (fallback === undefined) return null;
  let value = env[fallback] as string;
  if (fallback === 'KUBECONFIG') {
    // kubectl's convention: a ':'-separated list; its first entry is the file we read.
    const first = value.split(':').find((p) => p !== '');
    if (first === undefined) return null;
    value = first;
  }
  return [{ value, source: `${fallback} (${o.flag})` }];
}

function parseRaw(o: AnyOption, raw: Raw): Config[keyof Config] {
  try {
    return o.parse(raw.value);
  } catch (err) {
    const e = err as Invalid;
    throw new ConfigError(`${raw.source}: ${JSON.stringify(raw.value)} ${e.problem} (${e.allowed})`);
  }
}

function resolve(o: AnyOption, flag: FlagValue, env: NodeJS.ProcessEnv): Config[keyof Config] {
  if (typeof flag === 'boolean') return flag;
  const raws = flag === undefined ? envValues(o, env) : [flag].flat().map((value) => ({ value, source: o.flag }));
  if (raws === null) return o.computeDefault ? o.computeDefault() : o.parse(o.default);
  // A repeatable option parses each value to a list; the lists of every value are joined.
  if (o.repeatable) return raws.flatMap((raw) => parseRaw(o, raw) as readonly unknown[]) as Config[keyof Config];
  return parseRaw(o, raws[0] as Raw);
}

/**
 * Parses the command line (without node and the script) over the environment. Flags win over
 * environment variables, which win over defaults. Throws ConfigError on any bad input.
 */
export function parseConfig(args: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const { values, tokens } = readFlags(args);
  if (values.help) return { kind: 'help', text: helpText() };
  if (values.version) return { kind: 'version', version: packageVersion() };
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const o of OPTIONS) {
    const name = o.flag.slice(2);
    const given = tokens.filter((token) => token.kind === 'option' && token.name === name).length;
    // parseArgs keeps the last of several; a second value of a one-value option is a mistake.
    if (given > 1 && !('repeatable' in o)) throw new ConfigError(`${o.flag} is given twice${'boolean' in o ? '' : ' (it takes one value)'}`);
    config[o.key] = resolve(o, values[name] as FlagValue, env);
  }
  return { kind: 'run', config: config as Config };
}
