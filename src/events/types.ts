/**
 * The ExecEvent contract of DESIGN.md: what /api/events, the stream, the page and --log-events
 * carry. Field names never change; fields may be added.
 */

/** The controller that owns a pod, resolved through owner references. */
export interface Workload {
  kind: string;
  name: string;
}

/** One exec seen by the kernel, successful or failed, enriched with pod metadata when known. */
export interface ExecEvent {
  /** Monotonic per agent run; the SSE event id. */
  seq: number;
  /** Wall-clock time of the exec, RFC 3339 with nanoseconds, UTC. */
  time: string;
  node: string;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  gid: number;
  comm: string;
  parentComm: string;
  filename: string;
  /**
   * Arguments. Bytes that are not UTF-8 appear as U+FFFD here; the exact bytes are then in
   * `argvBase64`, so nothing is silently replaced.
   */
  argv: string[];
  /** Number of arguments the kernel counted (can exceed argv.length when truncated). */
  argc: number;
  argvTruncated: boolean;
  /** Present only when some argument is not valid UTF-8: base64 of the raw NUL-separated argv. */
  argvBase64?: string;
  /** Present only when the filename is not valid UTF-8: base64 of its raw bytes. */
  filenameBase64?: string;
  filenameTruncated: boolean;
  /** 0 for a successful exec, the negative errno of a failed one. */
  retval: number;
  /** The executed file had no link in any directory (memfd, deleted file). */
  fileless: boolean;
  /** The exec came through execveat(2). */
  execveat: boolean;
  /** argv or filename could not be read completely; what was read is kept. */
  readError: boolean;
  /** cgroup v2 id (the cgroup directory's inode number), decimal. */
  cgroupId: string;
  /** Names of the process's cgroup directory and its parent, as the kernel saw them. */
  cgroup: string;
  cgroupParent: string;
  /** A cgroup name was longer than the record keeps (255 bytes for the leaf, 127 for the parent). */
  cgroupTruncated: boolean;
  containerId: string | null;
  namespace: string | null;
  pod: string | null;
  podUid: string | null;
  container: string | null;
  workload: Workload | null;
}
