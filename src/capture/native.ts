/**
 * Finds and loads the compiled addon and the BPF object. Both live at fixed places under the
 * package root, which is found by walking up from this module: it runs from src/ under tap and
 * from dist/ in production, so a path relative to this file would be right only in one of them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './binding.js';

const PACKAGE_NAME = 'execwatch';

function isOurPackageJson(file: string): boolean {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return (parsed as { name?: unknown } | null)?.name === PACKAGE_NAME;
  } catch {
    // Absent, unreadable or not JSON: some other directory, keep walking up.
    return false;
  }
}

/**
 * The directory holding execwatch's package.json, searched upwards from `from` (default: this
 * module's directory).
 */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!isOurPackageJson(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`package root not found: no package.json named "${PACKAGE_NAME}" above ${from}`);
    }
    dir = parent;
  }
  return dir;
}

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
  const missing = (['Tracer', 'bootTimeOffsetNs', 'mountTracefs'] as const).filter(
    (name) => typeof exports[name] !== 'function',
  );
  if (missing.length > 0) {
    throw new Error(`native addon ${path} does not export ${missing.join(', ')}: rebuild it with npm run build:addon`);
  }
  return loaded as NativeBinding;
}
