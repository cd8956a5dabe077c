/**
 * Where execwatch's own files are. The package root is found by walking up from this module: it
 * runs from src/ under tap and from dist/ in production, so no fixed relative path is right in both.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'execwatch';

function isOurPackageJson(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown } | null)?.name === PACKAGE_NAME;
  } catch {
    // Absent, unreadable or not JSON: some other directory, keep walking up.
    return false;
  }
}

/** The directory holding execwatch's package.json, searched upwards from `from`. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!isOurPackageJson(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package root not found: no package.json named "${PACKAGE_NAME}" above ${from}`);
    dir = parent;
  }
  return dir;
}

/** execwatch's version, read from package.json now (not cached at import). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
