import t from 'tap';
import { compatNote } from '../src/capture/compat.js';

const CASES = [
  {
    name: 'fentry path',
    attached: ['handle_exec', 'handle_enter_compat_execve', 'handle_enter_compat_execveat', 'handle_exit_compat_execve', 'handle_exit_compat_execveat'],
    note: /^32-bit execs: fentry\/fexit .*only when a 32-bit process execs/,
  },
  { name: 'raw-syscall path', attached: ['handle_exec', 'handle_enter_compat', 'handle_exit_compat'], note: /^32-bit execs: raw syscall tracepoints, run for every syscall/ },
  { name: 'no 32-bit code (no ia32 emulation, or turned off)', attached: ['handle_exec'], note: /^32-bit execs: not followed/ },
] as const;

for (const c of CASES) {
  t.test(c.name, async (t) => {
    t.match(compatNote(c.attached), c.note, 'the note names the path in use');
  });
}
