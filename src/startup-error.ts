/**
 * Why the agent did not start, in the one shape main.ts reports: the problems, one line each and
 * each naming the flag or the missing thing, and the exit code. 2 is a configuration error (a bad
 * flag or variable, or a file a flag names: config.ts's ConfigError), 1 anything else that stops
 * start-up (unmet kernel requirements, all of them at once; a program that does not load).
 */
export class StartupError extends Error {
  override name = 'StartupError';

  constructor(
    readonly problems: readonly string[],
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(problems.join('\n'));
  }
}

/**
 * Any error that stopped start-up as a StartupError. Others are errors of the addon or of Node:
 * their message lines are kept, the errno code (ENOENT, EPERM) added to the last.
 */
export function asStartupError(err: unknown): StartupError {
  if (err instanceof StartupError) return err;
  const { message, code } = err instanceof Error ? (err as NodeJS.ErrnoException) : { message: String(err), code: undefined };
  return new StartupError(`${message}${code ? ` (${code})` : ''}`.split('\n'));
}
