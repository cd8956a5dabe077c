/**
 * The one owner of the native tracer: opens, attaches and closes it, and turns each ring-buffer
 * batch into ExecEvents. Takes the binding as a parameter so unit tests run with a fake.
 */
import { availableParallelism } from 'node:os';
import { execIdPrefix, readBootId } from '../events/exec-id.js';
import type { KernelExcluded } from '../events/excluded.js';
import type { KernelEvent } from '../events/schema.js';
import type { NativeBinding, NativeCounters, NativeTracer } from './binding.js';
import { CgroupStatsReader, type CgroupGrowth } from './cgroup-stats.js';
import { decodeBatch, EventClock, ExecCgroups, execCgroupsMax, type DecodeContext } from './decode.js';
import { stillRuns } from './proc-scan.js';

/** What the tracer needs to know at open time. */
export interface TracerOptions {
  objectPath: string;
  argvMaxBytes: number;
  ringbufBytes: number;
  /** --cgroup-rate and --cgroup-burst; without them, no limit. */
  cgroupRate?: number;
  cgroupBurst?: number;
  /** The node name stamped on every event. */
  node: string;
  /** The kernel's boot id, part of every execId (default: read from /proc at start). */
  bootId?: string;
}

/** Capture-side counters and state, read at scrape time. */
export interface CaptureStats {
  counters: NativeCounters;
  /** The programs attached now: the same list as Tracer.attached, which /readyz reads. */
  attached: readonly string[];
  /** Programs this kernel has nothing for: never loaded, never attached. */
  unavailable: readonly string[];
  /** Records that could not be framed or decoded (each such record is lost). */
  decodeErrors: number;
  /** Decoded events the pipeline threw on (each such event is lost). */
  pipelineErrors: number;
}

/** The kernel's counts by cgroup grown since the last reading, and what a reader needs with them. */
export interface CgroupsReading {
  growth: CgroupGrowth[];
  /** The node's ringbuf_full count now. */
  ringbufFull: number;
  /** The node's counts of execs dropped out of scope now, by reason (excluded_host, …). */
  excluded: KernelExcluded;
  /** Boot ns now. */
  nowNs: bigint;
  /** CLOCK_REALTIME − CLOCK_BOOTTIME in ns. */
  bootOffsetNs: bigint;
}

/** Receives every decoded event (exec or exit) with its kernel-to-user-space delay in seconds. */
export type EventSink = (event: KernelEvent, delaySeconds: number) => void;

/** Told about an event the sink threw on; the event is counted as lost and capture goes on. */
export type SinkErrorHandler = (err: unknown) => void;

const ZERO_COUNTERS: NativeCounters = { ringbuf_full: 0, state_map_full: 0, argv_read_error: 0, events: 0, excluded_host: 0, excluded_namespace: 0, excluded_pod: 0, throttled: 0, process_map_full: 0 };

export class Tracer {
  readonly #binding: NativeBinding;
  readonly #options: TracerOptions;
  readonly #sink: EventSink;
  readonly #onSinkError: SinkErrorHandler;
  #attached: readonly string[] = [];
  #unavailable: readonly string[] = [];
  #native: NativeTracer | null = null;
  /** execIdPrefix() of the node and its boot, set at start. */
  #execIdPrefix = '';
  #closed = false;
  #decodeErrors = 0;
  #pipelineErrors = 0;
  #batches = 0;
  readonly #cgroups = new CgroupStatsReader();
  readonly #clock = new EventClock();
  /** Where each live process's exec ran, for its exit (see ExecCgroups). */
  readonly #execCgroups = new ExecCgroups(execCgroupsMax(availableParallelism()), stillRuns);
  /**
   * performance.timeOrigin, fixed for the life of the process: its getter validates on every read
   * (0.6% of the agent's CPU samples under a storm).
   */
  readonly #timeOrigin = performance.timeOrigin;
  /** Kernel counters as last read before close, so metrics never go backwards after close. */
  #lastCounters: NativeCounters = ZERO_COUNTERS;

  constructor(binding: NativeBinding, options: TracerOptions, sink: EventSink, onSinkError: SinkErrorHandler) {
    this.#binding = binding;
    this.#options = options;
    this.#sink = sink;
    this.#onSinkError = onSinkError;
  }

  /** Loads the BPF object, attaches every program and starts delivery; returns the programs. */
  start(): string[] {
    if (this.#closed || this.#native) throw new Error('tracer already started or closed');
    this.#execIdPrefix = execIdPrefix({ node: this.#options.node, bootId: this.#options.bootId ?? readBootId() });
    const native = new this.#binding.Tracer({
      objectPath: this.#options.objectPath,
      argvMaxBytes: this.#options.argvMaxBytes,
      ringbufBytes: this.#options.ringbufBytes,
      cgroupRate: this.#options.cgroupRate ?? 0,
      cgroupBurst: this.#options.cgroupBurst ?? 1,
    });
    this.#native = native;
    try {
      const attached = native.attach();
      // The addon reuses `batch` for every wake-up: decoding copies everything out of it.
      native.start((batch, length) => this.#onBatch(batch.subarray(0, length)));
      this.#attached = attached;
      this.#unavailable = native.stats().unavailable;
      return attached;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  #onBatch(batch: Buffer): void {
    this.#batches += 1;
    // Read the clock pair once per batch: cheap, and it follows NTP steps of the wall clock.
    const bootOffsetNs = this.#binding.bootTimeOffsetNs();
    const nowBootNs = Number(BigInt(Math.round((this.#timeOrigin + performance.now()) * 1e6)) - bootOffsetNs);
    const ctx: DecodeContext = { node: this.#options.node, execIdPrefix: this.#execIdPrefix, bootOffsetNs, clock: this.#clock, cgroups: this.#execCgroups };
    // The native side must never see a throw, and one event the pipeline chokes on must cost
    // that event only: it is counted, reported, and the rest of the batch still flows.
    const { malformed } = decodeBatch(batch, ctx, (event, bootNs) => {
      try {
        this.#sink(event, Math.max(0, nowBootNs - bootNs) / 1e9);
      } catch (err) {
        this.#pipelineErrors += 1;
        this.#onSinkError(err);
      }
    });
    this.#decodeErrors += malformed;
  }

  /** The programs attached now (known without asking the kernel: they change only here). */
  get attached(): readonly string[] {
    return this.#attached;
  }

  /** Batches the addon has handed over since start: the watchdog's sign that delivery goes on. */
  get batches(): number {
    return this.#batches;
  }

  /** Bytes waiting in the ring buffer for delivery (0 when not open): a read of mapped memory. */
  ringbufWaitingBytes(): number {
    return this.#native?.ringbufWaitingBytes() ?? 0;
  }

  /** Makes `slots` the kernel's scope table (see NativeTracer.writeScope); ignored when not open. */
  writeScope(slots: Buffer, entries: number): void {
    this.#native?.writeScope(slots, entries);
  }

  /**
   * What the kernel's throttled and lost counts by cgroup grew by since the last call, with the
   * node's ringbuf_full count and the clocks; null when not open. The counts are read before the
   * node's, which the kernel adds to first: the node's is never behind them.
   */
  readCgroups(): CgroupsReading | null {
    const native = this.#native;
    if (!native) return null;
    const growth = this.#cgroups.read(native.cgroupStats());
    const { counters } = this.stats();
    const excluded = { host: counters.excluded_host, namespace: counters.excluded_namespace, pod: counters.excluded_pod };
    const bootOffsetNs = this.#binding.bootTimeOffsetNs();
    const nowNs = BigInt(Math.round((this.#timeOrigin + performance.now()) * 1e6)) - bootOffsetNs;
    return { growth, ringbufFull: counters.ringbuf_full, excluded, nowNs, bootOffsetNs };
  }

  /** The kernel's id of each attached program, by name; empty when not open. */
  programIds(): Record<string, number> {
    return this.#native?.programIds() ?? {};
  }

  stats(): CaptureStats {
    if (this.#native) this.#lastCounters = this.#native.stats().counters;
    return {
      counters: this.#lastCounters,
      attached: this.#attached,
      unavailable: this.#unavailable,
      decodeErrors: this.#decodeErrors,
      pipelineErrors: this.#pipelineErrors,
    };
  }

  /** Detaches every program and frees the ring buffer. Idempotent. */
  close(): void {
    this.#closed = true;
    const native = this.#native;
    if (!native) return;
    try {
      this.#lastCounters = native.stats().counters;
    } catch {
      // Counters unreadable while tearing down: keep the last values read.
    }
    this.#native = null;
    this.#attached = [];
    native.close();
  }
}
