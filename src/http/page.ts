/**
 * GET / — the browse page: static HTML, JS (a few ES modules, one of them a worker's) and CSS served by the agent itself (no build step,
 * nothing from the internet). The files live in src/http/page and are read once at start,
 * found next to this module (a build that copies them) or in the package's src/http/page
 * (dist/http/page.js and src/http/page.ts both sit two levels below the package root).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** Sent with every page file: the page only ever talks to its own origin. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const FILES = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { route: '/format.js', file: 'format.js', type: 'text/javascript; charset=utf-8' },
  { route: '/table.js', file: 'table.js', type: 'text/javascript; charset=utf-8' },
  { route: '/panel.js', file: 'panel.js', type: 'text/javascript; charset=utf-8' },
  { route: '/overview.js', file: 'overview.js', type: 'text/javascript; charset=utf-8' },
  { route: '/view.js', file: 'view.js', type: 'text/javascript; charset=utf-8' },
  // The module worker that holds the rows: `default-src 'self'` lets the page start it (worker-src).
  { route: '/worker.js', file: 'worker.js', type: 'text/javascript; charset=utf-8' },
  { route: '/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
] as const;

/** The directory holding the page files, or throws naming where it looked. */
export function pageDirectory(candidates: readonly URL[] = [
  new URL('./page/', import.meta.url),
  new URL('../../src/http/page/', import.meta.url),
]): string {
  for (const candidate of candidates) {
    const dir = fileURLToPath(candidate);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error(`browse page files not found in ${candidates.map((c) => fileURLToPath(c)).join(' or ')}`);
}

export interface PageRoutesOptions {
  /** Directory of index.html, the modules and style.css (default: pageDirectory()). */
  directory?: string;
}

/** The page's files, from memory. */
export const pageRoutes: FastifyPluginAsyncTypebox<PageRoutesOptions> = async (app, opts) => {
  const directory = opts.directory ?? pageDirectory();
  // Browsers ask for it unprompted; an empty answer beats a 404 in every console.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  for (const { route, file, type } of FILES) {
    const body = await readFile(`${directory}${file}`);
    app.get(route, async (_request, reply) =>
      reply
        .type(type)
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(body),
    );
  }
};
