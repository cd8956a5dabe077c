/**
 * Finds and loads the compiled addon and the BPF object. Both live at fixed places under the
 * package root, which is found by walking up from this module: it runs from src/ under tap and
 * from dist/ in production, so a path relative to this file would be right only in one of them.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../package.js';
import type { NativeBinding } from './binding.js';

/** Where `npm run build:bpf` writes the BPF object. */
export function defaultBpfObjectPath(root: string = packageRoot()): string {
  return join(root, 'build', 'execwatch.bpf.o');
}

/** Where `npm run build:addon` writes the addon. */
export function nativeAddonPath(root: string = packageRoot()): string {
  return join(root, 'native', 'build', 'Release', 'execwatch.node');
}

/**
 * Loads the addon. Throws when it has not been built, or when the file does not export the
 * surface declared in binding.ts (a stale build from another version).
 */
export function loadNativeBinding(path: string = nativeAddonPath()): NativeBinding {
  if (!existsSync(path)) {
    throw new Error(`native addon not built: run npm run build:addon (looked for ${path})`);
  }
  const loaded: unknown = createRequire(import.meta.url)(path);
  const exports = loaded as Partial<Record<keyof NativeBinding, unknown>>;
  const missing = (['Tracer', 'bootTimeOffsetNs', 'mountTracefs', 'dropCapabilities', 'switchUser'] as const).filter(
    (name) => typeof exports[name] !== 'function',
  );
  if (missing.length > 0) {
    throw new Error(`native addon ${path} does not export ${missing.join(', ')}: rebuild it with npm run build:addon`);
  }
  return loaded as NativeBinding;
}
