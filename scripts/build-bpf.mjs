#!/usr/bin/env node
// Compiles bpf/execwatch.bpf.c into build/execwatch.bpf.o with clang (CO-RE: the object runs on any
// kernel >= 5.8 with BTF; the build needs neither bpftool nor this machine's kernel BTF).
// Quiet on success; on failure prints the compiler's output and exits non-zero.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { arch } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const targetArch = { x64: 'x86', arm64: 'arm64', s390x: 's390', ppc64: 'powerpc', riscv64: 'riscv' }[arch()];
if (!targetArch) {
  console.error(`build-bpf: unsupported architecture ${arch()}`);
  process.exit(1);
}
// <asm/types.h> lives in the multiarch include directory (e.g. /usr/include/x86_64-linux-gnu).
let multiarch = '';
try {
  multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
} catch {
  multiarch = `${arch() === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`;
}
const out = join(root, 'build', 'execwatch.bpf.o');
const tmp = `${out}.tmp`;
mkdirSync(dirname(out), { recursive: true });
const args = [
  '-g', '-O2', '-Wall', '-Werror', '-target', 'bpf',
  `-D__TARGET_ARCH_${targetArch}`,
  `-I${join(root, 'bpf')}`,
  `-I/usr/include/${multiarch}`,
  '-c', join(root, 'bpf', 'execwatch.bpf.c'),
  '-o', tmp,
];
const cc = spawnSync(process.env.CLANG ?? 'clang', args, { encoding: 'utf8' });
if (cc.error || cc.status !== 0) {
  process.stderr.write(cc.stderr ?? '');
  console.error(`build-bpf: clang failed${cc.error ? `: ${cc.error.message}` : ''}`);
  process.exit(1);
}
// Strip DWARF but keep BTF (.BTF/.BTF.ext are what libbpf needs for CO-RE).
const strip = spawnSync(process.env.LLVM_STRIP ?? 'llvm-strip', ['-g', tmp], { encoding: 'utf8' });
if (strip.error || strip.status !== 0) {
  process.stderr.write(strip.stderr ?? '');
  console.error('build-bpf: llvm-strip failed');
  process.exit(1);
}
renameSync(tmp, out);
