/**
 * The built-in redaction rules (on unless --no-default-redaction): secrets that command lines
 * commonly carry, masked where they stand, the flag or name kept and only the value replaced by
 * `***`. Unlike --redact patterns they look across argument boundaries: `--password` in one
 * argument masks the next one. The README's list of rules is generated from SECRET_RULES.
 *
 * These patterns run on V8's usual (backtracking) engine, not on the linear engine that --redact
 * patterns must use: the linear engine is an interpreter, measured here 20 to 200 times slower
 * (over 100 µs for these rules on an argv of 17 arguments, against 1 to 2 µs), and they run on
 * every event.
 * Each is written so that backtracking stays linear in the argument's length: every pattern
 * starts with a literal (a name, `://`, `-----BEGIN`, a dash after white space), and no two
 * neighbouring repetitions can match the same characters, so a failed attempt gives up after
 * scanning one word or one run of white space. bench/redact.mjs runs each rule on 100 KB
 * arguments built to defeat it.
 */
import { basename } from 'node:path';

/** What a redacted value (or, for --redact, a whole match) is replaced with. */
export const REDACTED = '***';

/** Endings of a secret's name, any case: `--db-password`, `AWS_SECRET_ACCESS_KEY`, `X-Api-Key`. */
const SECRET_NAME = String.raw`(?:passw(?:or)?d|token|secret(?:[-_]?access)?(?:[-_]?key)?|api[-_]?key|mysql[-_]?pwd)`;

/**
 * One value inside a longer argument (a command line given to a shell, a URL, JSON): a quoted
 * string up to its closing quote (or the argument's end), else up to white space, a quote or a
 * shell or query separator.
 */
const WORD = String.raw`"[^"]*"?|'[^']*'?|[^\s"'&;|]+`;

/** An option naming a secret, as a whole argument: `--password`, `-token` (Go), `--db-password`. */
const SECRET_OPTION = new RegExp(String.raw`^-{1,2}[\w.-]*${SECRET_NAME}$`, 'i');
/** The same option with its value: `--password=hunter2` (the value is the rest of the argument). */
const SECRET_OPTION_VALUE = new RegExp(String.raw`^(-{1,2}[\w.-]*${SECRET_NAME}=)([\s\S]+)$`, 'i');
/** A switch that says there is no secret: `--no-password` takes no value. */
const NEGATED_OPTION = /^-{1,2}no-/i;

/** Replaces one value, keeping the quotes around it: `"hunter2"` → `"***"`. */
function masked(value: string): string {
  const quote = value[0];
  if (quote !== '"' && quote !== "'") return REDACTED;
  return value.length > 1 && value.endsWith(quote) ? `${quote}${REDACTED}${quote}` : `${quote}${REDACTED}`;
}

/** A rule over one argument: a global pattern and what a match becomes. */
interface TextRule {
  readonly pattern: RegExp;
  /** A cheap necessary condition of a match (a regex source, any case): see HINT. */
  readonly hint: string;
  /** Gets the match and its groups (undefined for a group that did not take part). */
  readonly replace: (match: string, ...groups: (string | undefined)[]) => string;
}

/** The rules that look inside every argument, in order. */
const TEXT_RULES: readonly TextRule[] = [
  // NAME=value and NAME: value: environment assignments, query parameters, --from-literal,
  // JSON keys, header lines. The name's start is not matched: PGPASSWORD ends in PASSWORD.
  {
    pattern: new RegExp(String.raw`(${SECRET_NAME}["']?[ \t]*[:=][ \t]*)(${WORD})`, 'gi'),
    hint: SECRET_NAME,
    replace: (_, name, value) => `${name}${masked(value as string)}`,
  },
  // An Authorization header keeps its scheme: `Authorization: Bearer ***`.
  {
    pattern: new RegExp(String.raw`((?:proxy-)?authorization["']?[ \t]*:[ \t]*)(?:([a-z][\w-]*)[ \t]+)?(${WORD})`, 'gi'),
    hint: 'authorization',
    replace: (_, header, scheme, value) => `${header}${scheme === undefined ? '' : `${scheme} `}${masked(value as string)}`,
  },
  // The password of a URL's user information: up to the last @ before the host's end.
  {
    pattern: /(:\/\/[^\s/?#@:'"]*:)[^\s/?#'"]+@/g,
    hint: String.raw`:\/\/[^\s/?#]*@`,
    replace: (_, user) => `${user}${REDACTED}@`,
  },
  // A PEM private key: everything between its BEGIN and END lines, or to the argument's end
  // when argv was cut inside the key.
  {
    pattern: /(-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----)[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|$)/g,
    hint: '-----BEGIN',
    replace: (_, begin, end) => `${begin}${REDACTED}${end}`,
  },
  // openssl's password arguments: `-passin pass:hunter2`.
  {
    pattern: /\b(pass:)([^\s"']+)/g,
    hint: 'pass:',
    replace: (_, prefix) => `${prefix}${REDACTED}`,
  },
  // A secret option followed by its value inside a command line: `sh -c 'app --token abc'`.
  {
    pattern: new RegExp(String.raw`((?:^|\s)(-{1,2}[\w.-]*${SECRET_NAME})[ \t]+)(${WORD})`, 'gi'),
    hint: SECRET_NAME,
    replace: (match, head, option, value) => (NEGATED_OPTION.test(option as string) ? match : `${head}${masked(value as string)}`),
  },
];

/** A command whose options carry a password (mysql's -p, curl's -u). */
interface CommandRule {
  /** The command's name (argv[0] without its directory). */
  readonly command: RegExp;
  /** An argument that is the option alone, so that its value is the next argument; or none. */
  readonly separate: RegExp | null;
  /** An argument that is the option with its value attached: the option in group 1, the value in 2. */
  readonly attached: RegExp;
  /** Options end at the first other argument: what follows is another command (sshpass's). */
  readonly optionsFirst: boolean;
  /** Masks the value: all of it, or (curl's user:password) what follows the first colon. */
  readonly mask: (value: string) => string;
  /** The command named inside a command line (`sh -c 'mysql -phunter2 db'`)... */
  readonly inText: RegExp;
  /** ...and there, its options with their values (the option in group 1, the value in 2). */
  readonly inTextOption: RegExp;
  /** A cheap necessary condition of `inText` (a regex source, any case): see HINT. */
  readonly hint: string;
}

/** Masks a value whole. */
const maskAll = () => REDACTED;

/** Masks what follows the first colon (curl's user:password); without one there is no password. */
const afterColon = (value: string) => {
  const colon = value.indexOf(':');
  return colon < 0 ? value : `${value.slice(0, colon + 1)}${REDACTED}`;
};

const COMMAND_RULES: readonly CommandRule[] = [
  // mysql's -p takes its password attached only: `-p` alone prompts for it, and the next argument
  // is the database's name.
  {
    command: /^(?:mysql|mariadb)[\w-]*$/,
    separate: null,
    attached: /^(-p)([\s\S]+)$/,
    optionsFirst: false,
    mask: maskAll,
    inText: /(?:^|[\s/;&|(])(?:mysql|mariadb)[\w-]*\s/,
    inTextOption: new RegExp(String.raw`((?:^|\s)-p)(${WORD})`, 'g'),
    hint: 'mysql|mariadb',
  },
  {
    command: /^sshpass$/,
    separate: /^-p$/,
    attached: /^(-p)([\s\S]+)$/,
    optionsFirst: true,
    mask: maskAll,
    inText: /(?:^|[\s/;&|(])sshpass\s/,
    inTextOption: new RegExp(String.raw`((?:^|\s)-p[ \t]*)(${WORD})`, 'g'),
    hint: 'sshpass',
  },
  // curl's -u may end a bundle of short options: `curl -fsu admin:pw`.
  {
    command: /^curl$/,
    separate: /^(?:-[A-Za-z]*[uU]|--user|--proxy-user)$/,
    attached: /^(-[uU]|--(?:proxy-)?user=)([\s\S]+)$/,
    optionsFirst: false,
    mask: afterColon,
    inText: /(?:^|[\s/;&|(])curl\s/,
    inTextOption: new RegExp(String.raw`((?:^|\s)(?:-[A-Za-z]*[uU][ \t]*|--(?:proxy-)?user(?:=|[ \t]+)))(${WORD})`, 'g'),
    hint: 'curl',
  },
];

/**
 * A necessary condition of every rule, tested once per argument: an argument that matches none of
 * it (`-c`, a path, a plain word: most of them) is passed over without running the rules. Over
 * bench/pipeline.mjs's argv mix it keeps the built-in rules at about 2 µs per event instead of 14.
 */
const HINT = new RegExp([SECRET_NAME, ...TEXT_RULES.map((r) => r.hint), ...COMMAND_RULES.map((r) => r.hint)].join('|'), 'i');

/** A built-in rule as the README lists it, with an example the tests check. */
export interface SecretRuleDoc {
  readonly name: string;
  readonly masks: string;
  readonly example: { readonly argv: readonly string[]; readonly redacted: readonly string[] };
}

/** The built-in rules, in the README's words; each example is what redactSecrets does. */
export const SECRET_RULES = [
  {
    name: 'secret options',
    masks: 'The value of an option whose name is or ends in `password`, `passwd`, `token`, `secret`, `secret-key`, `secret-access-key` or `api-key` (any case; `-`, `_` or nothing between words; one dash or two): the rest of `--token=X`, or the whole next argument after `--token`. `--no-…` switches take no value and are left alone.',
    example: { argv: ['kubectl', '--token', 'abc', 'get', 'pods'], redacted: ['kubectl', '--token', '***', 'get', 'pods'] },
  },
  {
    name: 'secret assignments',
    masks: '`NAME=value` and `NAME: value` anywhere in an argument, NAME ending as above or `MYSQL_PWD`: environment assignments (`AWS_SECRET_ACCESS_KEY=…`, `GITHUB_TOKEN=…`, `PGPASSWORD=…`), query parameters (`?access_token=…`), `--from-literal=password=…`, JSON (`"password": "…"`), headers (`X-Api-Key: …`). The value is a quoted string, or one word up to white space, a quote, `&`, `;` or `|`; inside an argument that is a command line (`sh -c \'…\'`) too.',
    example: { argv: ['env', 'AWS_SECRET_ACCESS_KEY=wJalr/K7MDENG', 'aws', 's3', 'ls'], redacted: ['env', 'AWS_SECRET_ACCESS_KEY=***', 'aws', 's3', 'ls'] },
  },
  {
    name: 'Authorization headers',
    masks: 'The credentials of `Authorization:` and `Proxy-Authorization:` (any case), the scheme (`Bearer`, `Basic`, …) kept.',
    example: { argv: ['curl', '-H', 'Authorization: Bearer eyJhbGciOi', 'https://api'], redacted: ['curl', '-H', 'Authorization: Bearer ***', 'https://api'] },
  },
  {
    name: 'URL passwords',
    masks: 'The password in a URL\'s `user:password@`.',
    example: { argv: ['git', 'clone', 'https://bot:ghp_x1y2@github.com/o/r'], redacted: ['git', 'clone', 'https://bot:***@github.com/o/r'] },
  },
  {
    name: 'private keys',
    masks: 'Everything between `-----BEGIN … PRIVATE KEY-----` and its `-----END` line (to the argument\'s end when argv was cut inside the key).',
    example: { argv: ['sh', '-c', 'echo "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----" > k'], redacted: ['sh', '-c', 'echo "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----" > k'] },
  },
  {
    name: 'mysql -p',
    masks: 'mysql\'s and MariaDB\'s clients (`mysql…`, `mariadb…`): a password attached to `-p`. `-p` alone prompts for the password and the next argument is the database: it is left alone (while `--password db` masks `db`: other programs take a separate value).',
    example: { argv: ['mysql', '-uroot', '-phunter2', 'shop'], redacted: ['mysql', '-uroot', '-p***', 'shop'] },
  },
  {
    name: 'sshpass -p, curl -u',
    masks: '`sshpass -p X` (or `-pX`; sshpass\'s own options only, not those of the command it runs); the password of curl\'s `-u`/`--user`/`-U`/`--proxy-user` `user:password`, `-u` also at the end of a bundle (`-fsu`).',
    example: { argv: ['curl', '-u', 'admin:hunter2', 'http://svc'], redacted: ['curl', '-u', 'admin:***', 'http://svc'] },
  },
  {
    name: 'openssl pass:',
    masks: 'openssl\'s `pass:X` password arguments (`-passin`, `-passout`, `-pass`).',
    example: { argv: ['openssl', 'rsa', '-passin', 'pass:hunter2'], redacted: ['openssl', 'rsa', '-passin', 'pass:***'] },
  },
] as const satisfies readonly SecretRuleDoc[];

/** The rules that look inside one argument: an option with its value attached, the text rules. */
function redactText(arg: string): string {
  // The value of `--password=hunter 2` is all the rest, spaces included.
  const option = SECRET_OPTION_VALUE.exec(arg);
  if (option !== null) return `${option[1] as string}${REDACTED}`;
  let out = arg;
  for (const rule of TEXT_RULES) out = out.replace(rule.pattern, rule.replace);
  for (const rule of COMMAND_RULES) {
    if (rule.inText.test(out)) out = out.replace(rule.inTextOption, (_, name: string, value: string) => `${name}${rule.mask(value)}`);
  }
  return out;
}

/**
 * Masks the secrets of one argv in place; returns whether anything changed. An argument that is
 * the value of the one before (`--token X`, `sshpass -p X`) is masked whole; one that is an
 * option of the command with its value attached (`mysql -pX`) keeps the option; any other goes
 * through the text rules, which also find these forms inside a command line (`sh -c '…'`).
 */
export function redactSecrets(argv: string[]): boolean {
  let commandRules = argv.length > 0 ? COMMAND_RULES.filter((rule) => rule.command.test(basename(argv[0] as string))) : [];
  let changed = false;
  let valueOf: ((value: string) => string) | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const original = argv[i] as string;
    let arg = original;
    const maskValue = valueOf;
    valueOf = null;
    if (maskValue !== null) {
      if (arg !== '') arg = maskValue(arg);
    } else {
      for (const rule of i > 0 ? commandRules : []) {
        if (rule.separate?.test(arg) === true) valueOf = rule.mask;
        else if (rule.optionsFirst && !arg.startsWith('-')) commandRules = commandRules.filter((r) => r !== rule);
        else arg = arg.replace(rule.attached, (_, option: string, value: string) => `${option}${rule.mask(value)}`);
      }
      if (arg === original && valueOf === null && HINT.test(arg)) {
        if (SECRET_OPTION.test(arg) && !NEGATED_OPTION.test(arg)) valueOf = maskAll;
        else arg = redactText(arg);
      }
    }
    if (arg !== original) {
      argv[i] = arg;
      changed = true;
    }
  }
  return changed;
}
