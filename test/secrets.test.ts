// The built-in redaction rules: each secret masked where it stands (the flag or name kept), across
// argument boundaries, without touching what only looks like one.
import t from 'tap';
import { REDACTED, SECRET_RULES, redactSecrets } from '../src/events/secrets.js';

/** argv through the built-in rules: what it becomes and whether it changed. */
function redacted(argv: readonly string[]): { argv: string[]; changed: boolean } {
  const copy = [...argv];
  return { changed: redactSecrets(copy), argv: copy };
}

t.test('every rule the README lists does what its example says', async (t) => {
  for (const rule of SECRET_RULES) {
    t.same(redacted(rule.example.argv).argv, rule.example.redacted, rule.name);
    t.ok(rule.example.redacted.some((a) => a.includes(REDACTED)), `${rule.name}: the example masks something`);
  }
});

t.test('each rule masks the value and keeps the flag or name', async (t) => {
  const cases = [
    // secret options: attached, separate, Go's single dash, names ending in a secret's name
    ['--password=X', ['mysql', '--password=hunter2', 'shop'], ['mysql', '--password=***', 'shop']],
    ['--password X', ['docker', 'login', '--password', 'hunter2', 'reg'], ['docker', 'login', '--password', '***', 'reg']],
    ['--token X', ['kubectl', '--token', 'eyJhbGci', 'get', 'pods'], ['kubectl', '--token', '***', 'get', 'pods']],
    ['-token=X (Go)', ['consul', 'kv', 'get', '-token=abc'], ['consul', 'kv', 'get', '-token=***']],
    ['--db-password X', ['app', '--db-password', 'pw'], ['app', '--db-password', '***']],
    ['--client-secret X', ['az', 'login', '--client-secret', 'cs'], ['az', 'login', '--client-secret', '***']],
    ['--api-key=X', ['app', '--api-key=k1'], ['app', '--api-key=***']],
    ['a value with spaces', ['app', '--password=correct horse battery'], ['app', '--password=***']],
    ['a separate value with spaces', ['app', '--password', 'correct horse battery'], ['app', '--password', '***']],
    ['in a shell command line', ['sh', '-c', 'app --token abc --no-password x -secret "s t"'], ['sh', '-c', 'app --token *** --no-password x -secret "***"']],
    // assignments: environment, query strings, --from-literal, JSON, headers
    ['AWS_SECRET_ACCESS_KEY=', ['env', 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG', 'aws'], ['env', 'AWS_SECRET_ACCESS_KEY=***', 'aws']],
    ['AWS_SESSION_TOKEN=', ['env', 'AWS_SESSION_TOKEN=FwoGZX', 'aws'], ['env', 'AWS_SESSION_TOKEN=***', 'aws']],
    ['GITHUB_TOKEN=', ['env', 'GITHUB_TOKEN=ghp_abc', 'gh'], ['env', 'GITHUB_TOKEN=***', 'gh']],
    ['PGPASSWORD=', ['env', 'PGPASSWORD=pw', 'psql'], ['env', 'PGPASSWORD=***', 'psql']],
    ['MYSQL_PWD=', ['env', 'MYSQL_PWD=pw', 'mysql'], ['env', 'MYSQL_PWD=***', 'mysql']],
    ['STRIPE_SECRET_KEY=', ['env', 'STRIPE_SECRET_KEY=sk_live_1'], ['env', 'STRIPE_SECRET_KEY=***']],
    ['a query parameter', ['curl', 'https://h/cb?access_token=abc&state=1'], ['curl', 'https://h/cb?access_token=***&state=1']],
    ['--from-literal', ['kubectl', 'create', 'secret', 'generic', 's', '--from-literal=password=pw'], ['kubectl', 'create', 'secret', 'generic', 's', '--from-literal=password=***']],
    ['JSON', ['curl', '-d', '{"user":"u","password":"pw"}'], ['curl', '-d', '{"user":"u","password":"***"}']],
    ['an API key header', ['curl', '-H', 'X-Api-Key: k123'], ['curl', '-H', 'X-Api-Key: ***']],
    ['GitLab\'s token header', ['curl', '-H', 'PRIVATE-TOKEN: glpat-1'], ['curl', '-H', 'PRIVATE-TOKEN: ***']],
    ['in a shell command line', ['sh', '-c', 'DB_PASSWORD="a b" ./migrate && echo ok'], ['sh', '-c', 'DB_PASSWORD="***" ./migrate && echo ok']],
    ['a quote that does not close (argv cut)', ['sh', '-c', "export TOKEN='abc"], ['sh', '-c', "export TOKEN='***"]],
    // Authorization
    ['Bearer', ['curl', '-H', 'Authorization: Bearer eyJ0eXAi', 'https://api'], ['curl', '-H', 'Authorization: Bearer ***', 'https://api']],
    ['Basic', ['curl', '-H', 'authorization: Basic dXNlcjpwYXNz'], ['curl', '-H', 'authorization: Basic ***']],
    ['no scheme', ['curl', '-H', 'Authorization: abc'], ['curl', '-H', 'Authorization: ***']],
    ['Proxy-Authorization', ['curl', '-H', 'Proxy-Authorization: Basic eHl6'], ['curl', '-H', 'Proxy-Authorization: Basic ***']],
    ['in a shell command line', ['sh', '-c', "curl -sH 'Authorization: Bearer t0k' https://api"], ['sh', '-c', "curl -sH 'Authorization: Bearer ***' https://api"]],
    // URLs
    ['user:pass@', ['git', 'clone', 'https://bot:ghp_x@github.com/o/r'], ['git', 'clone', 'https://bot:***@github.com/o/r']],
    ['an @ in the password', ['psql', 'postgres://app:p@ss@db:5432/shop'], ['psql', 'postgres://app:***@db:5432/shop']],
    ['in a shell command line', ['sh', '-c', 'redis-cli -u redis://:pw@cache:6379 ping'], ['sh', '-c', 'redis-cli -u redis://:***@cache:6379 ping']],
    // private keys
    ['a whole key', ['app', '--key', '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n'], ['app', '--key', '-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----\n']],
    ['OpenSSH', ['sh', '-c', 'echo "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----"'], ['sh', '-c', 'echo "-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----"']],
    ['cut by --argv-max-bytes', ['app', '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE'], ['app', '-----BEGIN EC PRIVATE KEY-----***']],
    // mysql: -p attached only
    ['mysql -pX', ['mysql', '-h', 'db', '-uroot', '-phunter2', 'shop'], ['mysql', '-h', 'db', '-uroot', '-p***', 'shop']],
    ['mysqldump by path', ['/usr/bin/mysqldump', '-phunter2', 'shop'], ['/usr/bin/mysqldump', '-p***', 'shop']],
    ['mariadb-admin', ['mariadb-admin', 'ping', '-pp'], ['mariadb-admin', 'ping', '-p***']],
    ['mysql in a command line', ['sh', '-c', 'mysql -uroot -phunter2 -e "select 1"'], ['sh', '-c', 'mysql -uroot -p*** -e "select 1"']],
    // sshpass, curl -u, openssl
    ['sshpass -p X', ['sshpass', '-p', 'pw', 'ssh', 'host'], ['sshpass', '-p', '***', 'ssh', 'host']],
    ['sshpass -pX', ['sshpass', '-ppw', 'ssh', 'host'], ['sshpass', '-p***', 'ssh', 'host']],
    ['curl -u', ['curl', '-u', 'admin:pw', 'http://svc'], ['curl', '-u', 'admin:***', 'http://svc']],
    ['curl -uX', ['curl', '-uadmin:pw', 'http://svc'], ['curl', '-uadmin:***', 'http://svc']],
    ['curl --user=', ['curl', '--user=admin:pw', 'http://svc'], ['curl', '--user=admin:***', 'http://svc']],
    ['curl --proxy-user', ['curl', '--proxy-user', 'p:pw', 'http://svc'], ['curl', '--proxy-user', 'p:***', 'http://svc']],
    ['curl -fsu X', ['curl', '-fsu', 'admin:pw', 'http://svc'], ['curl', '-fsu', 'admin:***', 'http://svc']],
    ['curl -u in a command line', ['sh', '-c', 'curl -fsu admin:pw http://svc || curl --user=admin:pw http://svc'], ['sh', '-c', 'curl -fsu admin:*** http://svc || curl --user=admin:*** http://svc']],
    ['openssl pass:', ['openssl', 'pkcs12', '-passout', 'pass:pw'], ['openssl', 'pkcs12', '-passout', 'pass:***']],
  ] as const;
  for (const [name, argv, want] of cases) {
    const got = redacted(argv);
    t.same(got.argv, want, `${name}: ${JSON.stringify(argv)}`);
    t.ok(got.changed, `${name}: reported as changed`);
  }
});

t.test('a flag in one argument masks its value in the next, and only that one', async (t) => {
  const cases = [
    ['two secret options in a row', ['app', '--user', 'me', '--password', 'pw', '--token', 'tk', 'run'], ['app', '--user', 'me', '--password', '***', '--token', '***', 'run']],
    ['the value looks like a flag', ['app', '--password', '--x', 'y'], ['app', '--password', '***', 'y']],
    ['the flag is the last argument (argv cut)', ['app', '--password'], ['app', '--password']],
    ['an empty value', ['app', '--password', '', 'y'], ['app', '--password', '', 'y']],
    ['sshpass -p then the command', ['sshpass', '-p', 'pw', 'ssh', '-p', '22', 'host'], ['sshpass', '-p', '***', 'ssh', '-p', '22', 'host']],
    ['curl -u without a password (curl prompts)', ['curl', '-u', 'admin', 'http://svc'], ['curl', '-u', 'admin', 'http://svc']],
  ] as const;
  for (const [name, argv, want] of cases) t.same(redacted(argv).argv, want, name);
});

t.test('what only looks like a secret is left alone', async (t) => {
  const cases = [
    ['mysql -p alone prompts; the next argument is the database', ['mysql', '-uroot', '-p', 'shop']],
    ['-p of other programs', ['mkdir', '-p', '/var/lib/x']],
    ['-pX of other programs', ['ssh', '-p2222', 'host']],
    ['a --no- switch takes no value', ['pg_dump', '--no-password', 'shop']],
    ['names that do not end in a secret\'s name', ['kubeadm', 'token', 'create', '--token-ttl', '24h', '--max-tokens', '5', '--password-file', '/etc/pw']],
    ['a URL with a port and no user', ['curl', 'http://svc:8080/x@y', 'https://h:443?q=a@b']],
    ['a URL with a user and no password', ['git', 'clone', 'ssh://git@github.com/o/r']],
    ['a public key or a certificate', ['app', '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----']],
    ['an empty value', ['env', 'GITHUB_TOKEN=', 'gh']],
    ['curl --user-agent', ['curl', '--user-agent', 'probe/1', 'http://svc']],
    ['mysql named in a command line without a password', ['sh', '-c', 'mysql -uroot shop < dump.sql']],
    ['no argv', []],
  ] as const;
  for (const [name, argv] of cases) {
    const got = redacted(argv);
    t.same(got.argv, argv, name);
    t.notOk(got.changed, `${name}: reported as unchanged`);
  }
});

t.test('an argument built to make a rule backtrack still completes (bench/redact.mjs times it)', async (t) => {
  const big = 100_000;
  const hostile = [
    'token'.repeat(big / 5),
    `token=${' '.repeat(big)}`,
    `Authorization:${' '.repeat(big)}x`,
    `://${':'.repeat(big)}`,
    `-----BEGIN ${'A'.repeat(big)}`,
    `-----BEGIN PRIVATE KEY-----${'-----END '.repeat(big / 9)}`,
    `sh -c ${'mysql '.repeat(big / 6)}`,
    `--x${'-'.repeat(big)}password`,
  ];
  for (const arg of hostile) {
    const argv = ['sh', '-c', arg, '--password'];
    redactSecrets(argv);
    t.equal(argv.length, 4, `${arg.slice(0, 20)}…: done, argv keeps its length`);
  }
});
