// The one shape of a failed start-up: problems one line each, and the exit code main.ts uses.
import t from 'tap';
import { ConfigError } from '../src/config.js';
import { asStartupError, StartupError } from '../src/startup-error.js';

t.test('a configuration error is a start-up error of one line that exits 2', async (t) => {
  const err = new ConfigError('--recent-events: "x" is not an integer (an integer from 1 to 1000000)');
  t.type(err, StartupError, 'one shape');
  t.same([err.problems, err.exitCode], [['--recent-events: "x" is not an integer (an integer from 1 to 1000000)'], 2], 'its line, exit 2');
  t.equal(asStartupError(err), err, 'reported as it is');
});

t.test('unmet requirements: one line each, exit 1', async (t) => {
  const err = new StartupError(['kernel BTF is missing', 'missing privileges: CAP_BPF']);
  t.same([err.problems, err.exitCode, err.message], [['kernel BTF is missing', 'missing privileges: CAP_BPF'], 1, 'kernel BTF is missing\nmissing privileges: CAP_BPF'], 'both lines, exit 1');
  t.equal(asStartupError(err), err, 'reported as it is');
});

t.test('any other error stops start-up with exit 1, its lines kept and its errno code added', async (t) => {
  const cases = [
    [Object.assign(new Error('open /x/execwatch.bpf.o: No such file or directory'), { code: 'ENOENT' }), ['open /x/execwatch.bpf.o: No such file or directory (ENOENT)']],
    [Object.assign(new Error('load: Permission denied\nlibbpf: prog handle_exec: verifier said no'), { code: 'EPERM' }),
      ['load: Permission denied', 'libbpf: prog handle_exec: verifier said no (EPERM)']],
    [new Error('listen EADDRINUSE'), ['listen EADDRINUSE']],
    ['a thrown string', ['a thrown string']],
  ] as const;
  for (const [thrown, problems] of cases) {
    const err = asStartupError(thrown);
    t.same([err.problems, err.exitCode], [problems, 1], problems.join(' / '));
  }
});
