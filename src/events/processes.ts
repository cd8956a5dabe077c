/**
 * The process table: what the agent knows of the live processes it saw exec (and of those running
 * at start, seeded from /proc), keyed by execId. It gives an exec event its `ancestors`, and an
 * exit the seq of the exec event that gains it. One owner: the pipeline, which feeds it delivered
 * events in order.
 *
 * Entries leave with their exit event, except one that a live entry still names as its parent:
 * that one stays, marked exited, until its last child leaves, so a parent gone by the time its
 * child's grandchildren exec still shows in their lineage. Likewise one whose exit says it left
 * orphans (processes it forked, still running, which may exec later naming it): it stays until
 * their exits are seen; an orphan that never execs ends unseen, so at most `maxWaiting` such
 * entries are kept, the oldest going first. The table is bounded: past `maxEntries` the oldest
 * entry goes (its children then simply stop their lineage there).
 */
import type { ExecEvent, Origin } from './schema.js';

/** One ancestor as an exec event lists it, nearest first. */
export interface Ancestor {
  execId: string;
  pid: number;
  comm: string;
  filename: string;
  argv: string[];
}

/** What a /proc scan (or an exec event) tells of a process. */
export interface ProcessInfo extends Ancestor {
  parentExecId: string | null;
  containerId: string | null;
}

interface Entry {
  /**
   * What its children list, made once per exec and shared by every event that lists it (the
   * serializer writes it again each time; nothing is copied).
   */
  ancestor: Readonly<Ancestor>;
  parentExecId: string | null;
  containerId: string | null;
  /** seq of its latest exec event; 0 for a process seeded from /proc. */
  seq: number;
  /** Its latest exec event's origin and session (issue 18); null origin for a process seeded from /proc. */
  origin: Origin | null;
  sessionExecId: string | null;
  exited: boolean;
  /** Live entries that name this one as their parent. */
  children: number;
  /** After its exit: its orphans (exit event) whose exits have not been seen yet. */
  orphans: number;
}

/** Bytes of argv an ancestor keeps: enough for the command and its first arguments. */
export const ANCESTOR_ARGV_BYTES = 256;

/** The first arguments of `argv`, at most `budget` bytes of text in all (the last one cut). */
export function firstArguments(argv: readonly string[], budget = ANCESTOR_ARGV_BYTES): string[] {
  const kept: string[] = [];
  let left = budget;
  for (const arg of argv) {
    if (left <= 0) break;
    kept.push(arg.length > left ? arg.slice(0, left) : arg);
    left -= arg.length;
  }
  return kept;
}

/** The ancestor entry of a process: its argv cut to ANCESTOR_ARGV_BYTES. */
function ancestorOf(info: Ancestor): Readonly<Ancestor> {
  return { execId: info.execId, pid: info.pid, comm: info.comm, filename: info.filename, argv: firstArguments(info.argv) };
}

function newEntry(info: Ancestor & Pick<ProcessInfo, 'parentExecId' | 'containerId'>, seq: number, origin: Origin | null = null, sessionExecId: string | null = null): Entry {
  return { ancestor: ancestorOf(info), parentExecId: info.parentExecId, containerId: info.containerId, seq, origin, sessionExecId, exited: false, children: 0, orphans: 0 };
}

export interface ProcessTableOptions {
  /** Most entries held (live and exited parents together). */
  maxEntries: number;
  /** Most exited entries held for their orphans' sake (default: MAX_WAITING). */
  maxWaiting?: number;
}

/** Exited processes kept for orphans that may still exec: under a megabyte of entries. */
export const MAX_WAITING = 1024;

export class ProcessTable {
  /**
   * Oldest first by insertion (a Map keeps insertion order; nothing here needs an LRU's reordering
   * on read). An entry the bound pushes out lets go of its parent like one that exits. (lru-cache
   * was here: emptied, it clears its preallocated arrays of maxEntries slots, and a table that
   * empties after every exit cost the pipeline benchmark five sixths of its time.)
   */
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  /** Exited entries with orphans left, oldest first (a Set keeps insertion order). */
  readonly #waiting = new Set<string>();
  readonly #maxWaiting: number;

  constructor(opts: ProcessTableOptions) {
    this.#maxEntries = opts.maxEntries;
    this.#maxWaiting = opts.maxWaiting ?? MAX_WAITING;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `execId`: its latest exec's seq, whether it has exited. */
  get(execId: string): Readonly<Entry> | undefined {
    return this.#entries.get(execId);
  }

  /**
   * Adds the processes a /proc scan found (never replacing one an exec event brought), in any
   * order: parents are linked once all are in.
   */
  seed(infos: readonly ProcessInfo[]): void {
    const added: Entry[] = [];
    for (const info of infos) {
      if (this.#entries.has(info.execId)) continue;
      const entry = newEntry(info, 0);
      this.#add(entry, false);
      added.push(entry);
    }
    for (const entry of added) if (this.#entries.get(entry.ancestor.execId) === entry) this.#adopt(entry.parentExecId);
  }

  /** A successful exec, delivered as event.seq: a new process, or a new image of a known one. */
  exec(event: ExecEvent): void {
    const known = this.#entries.get(event.execId);
    if (known === undefined) {
      this.#add(newEntry(event, event.seq, event.origin, event.sessionExecId));
      return;
    }
    // Another image of the same process: same parent (unless reparented), same children.
    if (known.parentExecId !== event.parentExecId) {
      this.#release(known.parentExecId);
      this.#adopt(event.parentExecId);
      known.parentExecId = event.parentExecId;
    }
    known.ancestor = ancestorOf(event);
    known.containerId = event.containerId;
    known.seq = event.seq;
    known.origin = event.origin;
    known.sessionExecId = event.sessionExecId;
  }

  /**
   * The process of `execId` has ended, leaving `orphans` (its exit event's count): returns its
   * entry (for the seq of its exec event) and drops it, or keeps it as an exited parent while
   * live children name it or orphans may still exec.
   */
  exit(execId: string, orphans = 0): Readonly<Entry> | undefined {
    const entry = this.#entries.get(execId);
    if (entry === undefined) return undefined;
    entry.exited = true;
    entry.orphans = orphans;
    const parent = entry.parentExecId === null ? undefined : this.#entries.get(entry.parentExecId);
    if (parent !== undefined && parent.orphans > 0) {
      // One of its parent's orphans, now seen to end.
      parent.orphans -= 1;
      if (parent.orphans === 0) this.#waiting.delete(entry.parentExecId as string);
    }
    if (entry.children === 0 && entry.orphans === 0) this.#remove(entry);
    else if (entry.orphans > 0) this.#wait(execId);
    return entry;
  }

  /**
   * Up to `max` ancestors of `event`, nearest first: its parent, that one's parent, … Stops at
   * pid 1, at an unknown process, and, for a process in a container, before the first ancestor
   * outside that container (the container's first process is the last listed).
   */
  ancestors(event: Pick<ExecEvent, 'parentExecId' | 'containerId'>, max: number): Ancestor[] {
    const found: Ancestor[] = [];
    let id: string | null = event.parentExecId;
    while (found.length < max && id !== null) {
      const entry = this.#entries.get(id);
      if (entry === undefined) break;
      if (event.containerId !== null && entry.containerId !== event.containerId) break;
      found.push(entry.ancestor);
      if (entry.ancestor.pid === 1) break;
      id = entry.parentExecId;
    }
    return found;
  }

  #add(entry: Entry, adopt = true): void {
    if (this.#entries.size >= this.#maxEntries) {
      const [oldestId, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#delete(oldestId);
      this.#release(oldest.parentExecId);
    }
    this.#entries.set(entry.ancestor.execId, entry);
    if (adopt) this.#adopt(entry.parentExecId);
  }

  #delete(execId: string): void {
    this.#entries.delete(execId);
    this.#waiting.delete(execId);
  }

  #adopt(parentExecId: string | null): void {
    const parent = parentExecId === null ? undefined : this.#entries.get(parentExecId);
    if (parent !== undefined) parent.children += 1;
  }

  /** A child of `parentExecId` left: an exited parent with no child left goes too, and so on up. */
  #release(parentExecId: string | null): void {
    for (let id = parentExecId; id !== null; ) {
      const parent = this.#entries.get(id);
      if (parent === undefined) return;
      parent.children -= 1;
      if (!parent.exited || parent.children > 0 || parent.orphans > 0) return;
      this.#delete(id);
      id = parent.parentExecId;
    }
  }

  /** Keeps the exited `execId` for its orphans, within the bound: past it, the oldest stops waiting. */
  #wait(execId: string): void {
    this.#waiting.add(execId);
    if (this.#waiting.size <= this.#maxWaiting) return;
    const oldest = this.#waiting.values().next().value as string;
    this.#waiting.delete(oldest);
    const entry = this.#entries.get(oldest) as Entry;
    entry.orphans = 0;
    if (entry.children === 0) this.#remove(entry);
  }

  #remove(entry: Entry): void {
    this.#delete(entry.ancestor.execId);
    this.#release(entry.parentExecId);
  }
}
