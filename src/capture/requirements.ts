/**
 * Start-up checks: privileges, kernel version, kernel BTF, tracefs, cgroup v2. Each unmet
 * requirement becomes one line that says what is missing and how to fix it, so `execwatch` fails
 * with advice rather than with a libbpf errno. Every path is read under `root`, so the tests run
 * on fake /proc and /sys trees.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAPABILITY_NAMES, capabilityBit, parseCapabilityField } from './capabilities.js';

/** CAP_BPF, CAP_PERFMON and the BPF ring buffer all arrived in Linux 5.8. */
const MIN_KERNEL = [5, 8] as const;

/** Where tracefs is looked for, preferred first; the agent mounts it at the first. */
const TRACEFS_PATHS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'] as const;

export interface RequirementsOptions {
  /** Root of the /proc and /sys trees to read (default '/'). */
  root?: string;
  /** Mounts a tracefs at the given path (the addon's mountTracefs); absent: never mount. */
  mountTracefs?: (target: string) => void;
  /** The effective uid (default: this process's). */
  uid?: number;
}

export interface RequirementsReport {
  /** True when nothing in `problems`: the programs can be loaded. */
  ok: boolean;
  /** One line per unmet requirement, privileges first. */
  problems: string[];
  /** Things worth saying that do not stop the agent (tracefs mounted by us, no cgroup v2). */
  notes: string[];
  /** The cgroup v2 mount point as the host sees it (from mountinfo), or null. */
  cgroup2Mount: string | null;
  /** That mount point where this process reads it (under the root it was given), or null. */
  cgroup2Path: string | null;
  /** Where tracefs is mounted (as the host sees it), or null when it is not. */
  tracefs: string | null;
  /** The kernel release (uname -r), '' when it could not be read (then `problems` says so). */
  kernelRelease: string;
}

/** One line of /proc/self/mountinfo, with the path escapes (\040 for a space) decoded. */
export interface MountEntry {
  mountPoint: string;
  fstype: string;
  source: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Parses /proc/PID/mountinfo (proc(5)); lines that do not have its shape are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    // Optional fields (shared:N, master:N) come between the mount options and the " - " separator.
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 3) continue;
    mounts.push({
      mountPoint: unescape(fields[4] as string),
      fstype: fields[separator + 1] as string,
      source: unescape(fields[separator + 2] as string),
    });
  }
  return mounts;
}

/** The first mount point of a file system type (e.g. 'cgroup2', 'tracefs'), or null. */
export function findMount(mountinfoText: string, fstype: string): string | null {
  return parseMountinfo(mountinfoText).find((m) => m.fstype === fstype)?.mountPoint ?? null;
}

/** Major and minor of a kernel release (trimmed) such as '6.18.44-fc-v669' or '5.4.0-150-generic'. */
export function parseKernelRelease(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The effective capability set from /proc/PID/status, or null when absent. */
export function parseCapEff(statusText: string): bigint | null {
  return parseCapabilityField(statusText, 'CapEff');
}

const has = (caps: bigint, cap: number) => (caps & capabilityBit(cap)) !== 0n;

/** The file's text, or the error code (ENOENT, EACCES…) when it cannot be read. */
async function readText(file: string): Promise<{ text: string } | { error: string }> {
  try {
    return { text: await readFile(file, 'utf8') };
  } catch (err) {
    // readFile fails only with system errors, which always carry a code.
    return { error: String((err as NodeJS.ErrnoException).code) };
  }
}

function privilegeProblem(caps: bigint): string | null {
  if (has(caps, CAP_SYS_ADMIN)) return null;
  const missing = [CAP_BPF, CAP_PERFMON].filter((cap) => !has(caps, cap)).map((cap) => CAPABILITY_NAMES[cap]);
  if (missing.length === 0) return null;
  return (
    `missing privileges: ${missing.join(' and ')} (or ${CAPABILITY_NAMES[CAP_SYS_ADMIN]}) ${missing.length > 1 ? 'are' : 'is'} required to load eBPF ` +
    "programs — run as root (sudo npm start), or in Kubernetes with the chart's securityContext"
  );
}

/** `release` as uname -r prints it, already trimmed. */
function kernelProblem(release: string): string | null {
  const version = parseKernelRelease(release);
  const [major, minor] = MIN_KERNEL;
  if (version && (version[0] > major || (version[0] === major && version[1] >= minor))) return null;
  const found = version ? `Linux ${release} is too old` : `unrecognised kernel release "${release}"`;
  return `${found}: execwatch needs Linux ${major}.${minor} or newer (BPF ring buffer and CAP_BPF)`;
}

/**
 * Runs every check and collects all problems (not just the first). When tracefs is not mounted
 * and the agent is privileged (uid 0 or CAP_SYS_ADMIN), mounts it (read-only) at
 * /sys/kernel/tracing through `mountTracefs` and says so in `notes`. Asynchronous only because it
 * reads files.
 */
export async function checkRequirements(opts: RequirementsOptions = {}): Promise<RequirementsReport> {
  const root = opts.root ?? '/';
  const uid = opts.uid ?? process.getuid?.();
  const problems: string[] = [];
  const notes: string[] = [];

  const status = await readText(join(root, 'proc/self/status'));
  const caps = 'text' in status ? parseCapEff(status.text) : null;
  if (caps === null) {
    const why = 'error' in status ? status.error : 'no CapEff line';
    problems.push(`cannot tell the process's capabilities from /proc/self/status (${why})`);
  } else {
    const problem = privilegeProblem(caps);
    if (problem) problems.push(problem);
  }

  const release = await readText(join(root, 'proc/sys/kernel/osrelease'));
  let kernelRelease = '';
  if ('error' in release) problems.push(`cannot read the kernel version from /proc/sys/kernel/osrelease (${release.error})`);
  else {
    kernelRelease = release.text.trim();
    const problem = kernelProblem(kernelRelease);
    if (problem) problems.push(problem);
  }

  try {
    await access(join(root, 'sys/kernel/btf/vmlinux'));
  } catch {
    problems.push('kernel BTF is missing (/sys/kernel/btf/vmlinux): the kernel must be built with CONFIG_DEBUG_INFO_BTF=y');
  }

  const mountinfo = await readText(join(root, 'proc/self/mountinfo'));
  const mounts = 'text' in mountinfo ? parseMountinfo(mountinfo.text) : [];
  let tracefs = TRACEFS_PATHS.find((path) => mounts.some((m) => m.fstype === 'tracefs' && m.mountPoint === path)) ?? null;
  if (tracefs === null) {
    const target = TRACEFS_PATHS[0];
    const fix = `mount -t tracefs tracefs ${target}`;
    const privileged = uid === 0 || (caps !== null && has(caps, CAP_SYS_ADMIN));
    if (!privileged) problems.push(`tracefs is not mounted at ${target} and execwatch is not privileged to mount it: ${fix}`);
    else if (!opts.mountTracefs) problems.push(`tracefs is not mounted at ${target}: ${fix}`);
    else {
      try {
        opts.mountTracefs(join(root, target));
        notes.push(`mounted tracefs read-only at ${target}`);
        tracefs = target;
      } catch (err) {
        // The addon throws Errors with an errno code (EPERM, ENOENT); keep the message otherwise.
        const why = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
        problems.push(`tracefs is not mounted at ${target} and could not be mounted (${why}): ${fix}`);
      }
    }
  }

  const cgroup2Mount = mounts.find((m) => m.fstype === 'cgroup2')?.mountPoint ?? null;
  if (cgroup2Mount === null) {
    notes.push('no cgroup v2 mount in /proc/self/mountinfo: pods are resolved from the cgroup names the kernel reports only');
  }
  const cgroup2Path = cgroup2Mount === null ? null : join(root, cgroup2Mount);
  return { ok: problems.length === 0, problems, notes, cgroup2Mount, cgroup2Path, tracefs, kernelRelease };
}
