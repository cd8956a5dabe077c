/**
 * Which programs follow the execs of 32-bit callers on this kernel, as one start-up line. The
 * addon chooses at load time (native/tracer.cc): an operator should see when every syscall of the
 * node pays for them, and why.
 */

/** The start-up note for the programs attached: the ia32 exec path in use, or none. */
export function compatNote(attached: readonly string[]): string {
  if (attached.includes('handle_enter_compat_execve')) {
    return '32-bit execs: fentry/fexit on the compat entry points (they run only when a 32-bit process execs)';
  }
  if (attached.includes('handle_enter_compat')) {
    return '32-bit execs: raw syscall tracepoints, run for every syscall (this kernel gives BPF no trampolines)';
  }
  return '32-bit execs: not followed (this kernel runs no 32-bit code: built without ia32 emulation, or with it turned off at run time)';
}
