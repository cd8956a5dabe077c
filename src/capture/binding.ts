/**
 * The raw surface of the native addon (native/execwatch.cc). Only src/capture/tracer.ts touches
 * it; everything else sees the Tracer class, which takes this binding as a constructor parameter
 * so unit tests can run with a fake.
 */

/** Options of the native Tracer constructor (open + load of the BPF object). */
export interface NativeTracerOptions {
  /** Path to the compiled BPF object (build/execwatch.bpf.o). */
  objectPath: string;
  /** Load-time argv byte budget, 1..32768. */
  argvMaxBytes: number;
  /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
  ringbufBytes: number;
  /** Execs per second per cgroup above which they are counted, not emitted (0: no limit; default 0). */
  cgroupRate?: number;
  /** Execs a cgroup may make at once above its rate (default 1). */
  cgroupBurst?: number;
}

/**
 * Kernel-side counters, summed over CPUs (enum execwatch_counter). The loss counters' keys are
 * the stage labels of execwatch_events_lost_total.
 */
export interface NativeCounters {
  ringbuf_full: number;
  state_map_full: number;
  argv_read_error: number;
  /** Every event the programs saw, delivered, lost, excluded or not (execwatch_kernel_events_total). */
  events: number;
  /** Execs dropped in the kernel as out of scope, by reason (execwatch_events_excluded_total). */
  excluded_host: number;
  excluded_namespace: number;
  excluded_pod: number;
  /** Execs of a cgroup above --cgroup-rate, counted and not emitted (execwatch_events_throttled_total). */
  throttled: number;
  /** Successful execs that found the map of tracked processes full: their exits go unreported. */
  process_map_full: number;
}

export interface NativeStats {
  counters: NativeCounters;
  /** Names of the BPF programs currently attached. */
  attached: string[];
  /**
   * Programs not loaded on this kernel; fixed at construction. The ia32 exec programs of the path
   * not chosen (fentry where the kernel gives BPF trampolines, the raw syscall tracepoints
   * elsewhere), or all of them where the kernel runs no 32-bit code (built without ia32 emulation,
   * or with it turned off at run time).
   */
  unavailable: string[];
}

/** The native tracer object. Every method throws a NativeError on failure. */
export interface NativeTracer {
  /** Attaches every program; returns their names. */
  attach(): string[];
  /**
   * Starts delivering records: one call per ring-buffer wake-up with every record of that
   * wake-up concatenated in the first `length` bytes of `batch`. The handle is unref'd: it never
   * keeps Node alive. The callback must not throw, and must not keep `batch` (or a view of it)
   * past its return: the same Buffer carries the next wake-up's records.
   */
  start(onBatch: (batch: Buffer, length: number) => void): void;
  stats(): NativeStats;
  /**
   * Bytes the kernel has put in the ring buffer that delivery has not consumed yet (records and
   * their headers), read from the ring's mapped positions: no system call, no capability.
   */
  ringbufWaitingBytes(): number;
  /**
   * Replaces the kernel's scope table with `slots` (src/scope/table.ts builds them) holding
   * `entries` cgroups: written into the copy the programs are not reading, then made current.
   * A write to mapped memory: no system call, no capability.
   */
  writeScope(slots: Buffer, entries: number): void;
  /**
   * A copy of the kernel's throttled and lost counts by cgroup: every possible CPU's struct
   * execwatch_cgroup_stats, one after the other (src/capture/cgroup-stats.ts reads them). A read of
   * mapped memory: no system call, no capability.
   */
  cgroupStats(): Buffer;
  /**
   * The kernel's id of each attached program, by name (0 where it could not be read), for reading
   * each one's run time (/proc/PID/fdinfo with kernel.bpf_stats_enabled): benchmarks and tests.
   */
  programIds(): Record<string, number>;
  /** Detaches and frees everything. Idempotent. */
  close(): void;
}

/** The module object exported by execwatch.node. */
export interface NativeBinding {
  Tracer: new (options: NativeTracerOptions) => NativeTracer;
  /** CLOCK_REALTIME minus CLOCK_BOOTTIME, in nanoseconds, read now. */
  bootTimeOffsetNs(): bigint;
  /** A read-only mount(2) of tracefs at `target` (the directory must exist). Throws a NativeError. */
  mountTracefs(target: string): void;
  /**
   * On every thread of the process: empties the bounding set (when CAP_SETPCAP allows) and the
   * ambient set, lowers permitted and effective to `keep` (a mask of capability numbers) and sets
   * no_new_privs. Throws a NativeError naming the thread that could not be changed.
   */
  dropCapabilities(keep: bigint): NativeDropResult;
  /**
   * On every thread of the process (glibc's set*id broadcast): clears the supplementary groups,
   * then sets the real, effective and saved gid, then uid. Needs CAP_SETGID and CAP_SETUID; a uid
   * other than 0 clears each thread's permitted and effective capabilities. Throws a NativeError
   * naming the step that failed.
   */
  switchUser(uid: number, gid: number): void;
}

/** What dropCapabilities did. */
export interface NativeDropResult {
  /** Threads that gave up their capabilities, the calling one included. */
  threads: number;
  /** False when the process lacked CAP_SETPCAP, which emptying the bounding set needs. */
  boundingSetCleared: boolean;
}

/** What the addon throws: message "<operation>: <strerror>", plus errno and its symbolic code. */
export interface NativeError extends Error {
  code: string;
  errno: number;
}
