/**
 * The Dockerfile read as the tests that re-create the image's layout and command line need it:
 * each stage's WORKDIR, ENV, COPY (sources and destination) and ENTRYPOINT. Only the exec (JSON)
 * forms and the instructions the Dockerfile uses are understood; anything else is an error.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { repoRoot } from './helm.js';

/** A COPY of one stage: from the build context (`from` null) or another stage. */
export interface Copy {
  from: string | null;
  sources: string[];
  /** Absolute in the image: a relative destination is resolved against the stage's WORKDIR. */
  dest: string;
  /** Whether the destination names a directory (ends with "/" or is "."), so a file keeps its name. */
  destIsDir: boolean;
}

/** A COPY or RUN, in Dockerfile order (what a RUN sees depends on the COPYs before it). */
export type Step = { copy: Copy } | { run: string };

export interface Stage {
  /** The FROM line without the word FROM. */
  from: string;
  name: string | null;
  workdir: string;
  env: Record<string, string>;
  copies: Copy[];
  runs: string[];
  steps: Step[];
  /** The exec-form ENTRYPOINT, or null when the stage has none. */
  entrypoint: string[] | null;
}

/** Parses a Dockerfile's text into its stages (continuation lines joined, comments dropped). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of lines) {
    const [word = '', ...restWords] = line.split(/\s+/);
    const op = word.toUpperCase();
    const rest = line.slice(word.length).trim();
    if (op === 'ARG' && stages.length === 0) continue;
    if (op === 'FROM') {
      const name = /\bAS\s+(\S+)$/i.exec(rest)?.[1] ?? null;
      stages.push({ from: rest, name, workdir: '/', env: {}, copies: [], runs: [], steps: [], entrypoint: null });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${op} before FROM`);
    if (op === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, rest);
    else if (op === 'ENV') {
      const m = /^(\w+)=(\S*)$/.exec(rest);
      if (!m) throw new Error(`Dockerfile: ENV ${rest}: only the KEY=value form is understood`);
      stage.env[m[1] as string] = m[2] as string;
    } else if (op === 'COPY') {
      const from = restWords.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
      const paths = restWords.filter((w) => !w.startsWith('--'));
      const dest = paths.at(-1) ?? '';
      const copy = { from, sources: paths.slice(0, -1), dest: posix.resolve(stage.workdir, dest), destIsDir: dest.endsWith('/') || dest === '.' };
      stage.copies.push(copy);
      stage.steps.push({ copy });
    } else if (op === 'RUN') {
      stage.runs.push(rest);
      stage.steps.push({ run: rest });
    }
    else if (op === 'ENTRYPOINT') {
      const parsed: unknown = JSON.parse(rest);
      if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`Dockerfile: ENTRYPOINT ${rest} is not the exec form`);
      stage.entrypoint = parsed;
    } else if (op !== 'ARG') throw new Error(`Dockerfile: ${op} is not understood by test/helpers/dockerfile.ts`);
  }
  return stages;
}

/** The repository's Dockerfile. */
export function readDockerfile(): Stage[] {
  return parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
}

/** The last stage: the image that runs. */
export function runtimeStage(stages: Stage[]): Stage {
  const last = stages.at(-1);
  if (!last) throw new Error('Dockerfile: no stage');
  return last;
}
