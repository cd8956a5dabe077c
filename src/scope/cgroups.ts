/**
 * The node's cgroup v2 tree as scope sees it: the pod-level cgroups (named after the pod UID, the
 * first thing the kubelet creates for a pod, before any container), and the host's cgroups (every
 * subtree with no kubepods below it). Read with readdir and stat: a cgroup's id is its directory's
 * inode number (Linux 5.5 and later, the kernfs node id), which is what the kernel compares.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { podUidOf } from '../enrich/cgroup.js';

/** What a scan found. */
export interface CgroupTree {
  /**
   * Pod UID → the ids of its pod-level cgroup (with the cgroupfs/systemd driver mismatch, a
   * container's) and of the cgroups below it that exist now (its containers): listing those too
   * spares the kernel the walk up to the pod for every exec but a new container's.
   */
  pods: Map<string, bigint[]>;
  /** Cgroups with no kubepods below them, whose parents all have one: everything under them is the host's. */
  hostSubtrees: bigint[];
  /** The root and the other ancestors of kubepods: host processes may sit in them, pods sit below. */
  hostOwn: bigint[];
}

/** How deep the scan goes below the root: kubepods pods sit at 3 to 5, in kind one more. */
const MAX_DEPTH = 8;
/** How deep below a pod's cgroup: its containers, and what a container nests (podman's `container`). */
const POD_DEPTH = 2;

function isKubepods(name: string): boolean {
  return name.includes('kubepods');
}

/** A child cgroup: its name, path and id. */
interface Child {
  name: string;
  path: string;
  id: bigint;
}

/** The cgroups directly below `path`; one removed while we look is left out. */
function children(path: string): Child[] {
  let names: string[];
  try {
    names = readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, path: join(path, name), id: statSync(join(path, name), { bigint: true, throwIfNoEntry: false })?.ino }))
    .filter((c): c is Child => c.id !== undefined);
}

/** The ids of the cgroups below `path`, down to `depth` levels. */
function below(path: string, depth: number, into: bigint[]): bigint[] {
  if (depth <= 0) return into;
  for (const child of children(path)) {
    into.push(child.id);
    below(child.path, depth - 1, into);
  }
  return into;
}

/** Scans the cgroup v2 tree mounted at `root`. Never throws: what cannot be read is left out. */
export function scanCgroupTree(root: string): CgroupTree {
  const tree: CgroupTree = { pods: new Map(), hostSubtrees: [], hostOwn: [] };
  /** Whether `path` is, or holds, a Kubernetes cgroup. */
  const visit = (path: string, name: string, depth: number, id: bigint): boolean => {
    const uid = depth > 0 ? podUidOf(name) : null;
    if (uid !== null) {
      tree.pods.set(uid, [...(tree.pods.get(uid) ?? []), id, ...below(path, POD_DEPTH, [])]);
      return true;
    }
    if (depth >= MAX_DEPTH) return false;
    const kids = children(path).map((c) => ({ id: c.id, kube: visit(c.path, c.name, depth + 1, c.id) }));
    const kube = (depth > 0 && isKubepods(name)) || kids.some((c) => c.kube);
    // Below kubepods everything is Kubernetes' (QoS slices, pods not named yet); above it, the
    // children without pods are the host's.
    if (kube && !isKubepods(name)) {
      tree.hostOwn.push(id);
      for (const c of kids) if (!c.kube) tree.hostSubtrees.push(c.id);
    }
    return kube;
  };
  const rootId = statSync(root, { bigint: true, throwIfNoEntry: false })?.ino;
  if (rootId !== undefined && !visit(root, '', 0, rootId)) {
    // No Kubernetes on this node (standalone): the root and all of it are the host's.
    tree.hostOwn.push(rootId);
    for (const child of children(root)) tree.hostSubtrees.push(child.id);
  }
  return tree;
}
