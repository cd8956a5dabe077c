/**
 * --redact: argv substrings matching any pattern become `***` before an event is stored,
 * streamed or logged. The pipeline calls the redactor once per event, before the fan-out.
 */
import type { ExecEvent } from './schema.js';

/** What a redacted substring is replaced with. */
export const REDACTED = '***';

/**
 * Returns a function that redacts an event in place and says whether it changed anything.
 * Patterns apply to each argument separately (an argument boundary is never matched across),
 * in order; they should carry the 'g' flag to replace every occurrence. When an argument
 * changed, `argvBase64` (the raw argv bytes) is deleted rather than re-encoded: it would still
 * hold the secret, and the redacted strings are no longer "the exact bytes" it promises.
 */
export function createRedactor(patterns: readonly RegExp[]): (event: ExecEvent) => boolean {
  if (patterns.length === 0) return () => false;
  return (event) => {
    let changed = false;
    const { argv } = event;
    for (let i = 0; i < argv.length; i += 1) {
      const original = argv[i] as string;
      let arg = original;
      for (const pattern of patterns) arg = arg.replace(pattern, REDACTED);
      if (arg !== original) {
        argv[i] = arg;
        changed = true;
      }
    }
    if (changed) delete event.argvBase64;
    return changed;
  };
}
