/**
 * Redaction: secrets in argv become `***` before an event is stored, streamed or logged. The
 * pipeline calls the redactor once per event, before the fan-out: first the built-in rules
 * (secrets.ts, unless --no-default-redaction), then the --redact patterns.
 */
import type { ExecEvent } from './schema.js';
import { REDACTED, redactSecrets } from './secrets.js';

export { REDACTED };

/**
 * Returns a function that redacts an event in place and says whether it changed anything.
 * `patterns` (--redact) apply to each argument separately (an argument boundary is never matched
 * across), in order, each match replaced whole; they should carry the 'g' flag to replace every
 * occurrence, and come from V8's linear engine (config/values.ts) so that no argument can make
 * them backtrack. When an argument changed, `argvBase64` (the raw argv bytes) is deleted rather
 * than re-encoded: it would still hold the secret, and the redacted strings are no longer "the
 * exact bytes" it promises.
 */
export function createRedactor(patterns: readonly RegExp[], defaults: boolean): (event: ExecEvent) => boolean {
  if (patterns.length === 0 && !defaults) return () => false;
  return (event) => {
    const { argv } = event;
    let changed = defaults && redactSecrets(argv);
    for (let i = 0; i < argv.length && patterns.length > 0; i += 1) {
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
