/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record layout shared by bpf/execwatch.bpf.c (producer) and native/ (which hands records to
 * src/capture/decode.ts, the consumer). Keep the three in step: the decoder's offsets are checked
 * against EXECWATCH_HEADER_SIZE in the tests.
 *
 * A record is little-endian and 8-byte aligned. Every kind starts with its fixed struct, followed
 * by the names of its cgroup and the cgroup's parent (cgroup_leaf_len and cgroup_parent_len
 * bytes, no NULs; about 140 bytes together for a container in a pod):
 *   exec:     struct execwatch_record | cgroup names | filename (filename_len bytes, no NUL) |
 *             argv (argv_len bytes, each argument NUL-terminated) | padding to record_len
 *   exit:     struct execwatch_exit_record | cgroup names (none with EXECWATCH_F_CGROUP_AS_EXEC) |
 *             padding to record_len
 *   throttle: struct execwatch_throttle_record | cgroup names | padding to record_len
 * Exec and exit records take only the bytes they use: each byte costs the programs a write to
 * memory that the consumer has read since (README, Performance). A throttle record, rare, is
 * reserved with room for the longest names, the rest padding.
 */
#ifndef EXECWATCH_H
#define EXECWATCH_H

#define EXECWATCH_COMM_LEN 16
/* A cgroup directory name is at most 255 bytes: the leaf (the container's cgroup, e.g.
 * "kubepods-burstable-pod<uid>.slice:cri-containerd:<64 hex>" of a driver mismatch, 145 bytes) is
 * kept whole; the parent (a pod slice or a runtime scope, under 80 bytes) gets half of that. Each
 * bound counts the NUL the kernel's read ends with, which the record leaves out. */
#define EXECWATCH_CGROUP_LEAF_LEN 256
#define EXECWATCH_CGROUP_PARENT_LEN 128
/* PATH_MAX: bprm->filename is never longer. */
#define EXECWATCH_FILENAME_MAX 4096
/* Hard ceiling of the load-time argv budget (--argv-max-bytes); a power of two for the verifier. */
#define EXECWATCH_ARGV_MAX 32768
#define EXECWATCH_ARGV_DEFAULT 4096

/* What follows the common 24 bytes (boot_ns, cgroup_id, record_len, kind, flags) that every
 * record starts with; the decoder dispatches on it. */
enum execwatch_record_kind {
	EXECWATCH_RECORD_EXEC = 0,     /* struct execwatch_record */
	EXECWATCH_RECORD_EXIT = 1,     /* struct execwatch_exit_record */
	EXECWATCH_RECORD_THROTTLE = 2, /* struct execwatch_throttle_record */
};

/* enum execwatch_flag: of an exec record. */
enum execwatch_flag {
	EXECWATCH_F_ARGV_TRUNCATED = 1 << 0,
	EXECWATCH_F_FILENAME_TRUNCATED = 1 << 1,
	/* Reading argv or the filename from memory failed: what was read is kept. */
	EXECWATCH_F_READ_ERROR = 1 << 2,
	EXECWATCH_F_EXECVEAT = 1 << 3,
	/* The executed file has no link in any directory (memfd, deleted file). */
	EXECWATCH_F_FILELESS = 1 << 4,
	/* Cgroup names come from a cgroup v1 controller hierarchy (host without cgroup v2 default).
	 */
	EXECWATCH_F_CGROUP_V1 = 1 << 5,
	/* The exec was seen without its syscall entry (begun before attach, or the state map was
	 * full). */
	EXECWATCH_F_NO_ENTER_STATE = 1 << 6,
	EXECWATCH_F_CGROUP_NAME_TRUNCATED = 1 << 7,
	/* The executed file is on an overlay's upper (writable) layer, not in the image. */
	EXECWATCH_F_DRIFT = 1 << 8,
	/* Of an exit record: the process ends in the cgroups its exec record named, and the record
	 * carries no names (the exec's apply). */
	EXECWATCH_F_CGROUP_AS_EXEC = 1 << 9,
};

/* Indexes of the counters array; the names are the metric's stage labels. */
enum execwatch_counter {
	EXECWATCH_CTR_RINGBUF_FULL = 0,	   /* event dropped: ring buffer had no room */
	EXECWATCH_CTR_STATE_MAP_FULL = 1,  /* exec_state full at entry: lost if the exec fails */
	EXECWATCH_CTR_ARGV_READ_ERROR = 2, /* event delivered, argv or filename unreadable */
	/* Every event the programs tried to emit, delivered or not (execwatch_kernel_events_total):
	 * counted before the ring buffer is asked, so it equals what user space delivered plus what
	 * was lost from the ring buffer on (ringbuf_full, decode_error, pipeline_error, ...). */
	EXECWATCH_CTR_EVENTS = 3,
	/* Execs out of scope, by enum execwatch_scope reason (EXCLUDED_HOST + reason - 1): dropped
	 * before any argv read, counted in EVENTS too (execwatch_events_excluded_total, by reason).
	 */
	EXECWATCH_CTR_EXCLUDED_HOST = 4,
	EXECWATCH_CTR_EXCLUDED_NAMESPACE = 5,
	EXECWATCH_CTR_EXCLUDED_POD = 6,
	/* Execs of a cgroup above --cgroup-rate: not emitted, counted in EVENTS too
	 * (execwatch_events_throttled_total). */
	EXECWATCH_CTR_THROTTLED = 7,
	/* A successful exec found the map of tracked processes full: its exit will not be reported.
	 */
	EXECWATCH_CTR_PROCESS_MAP_FULL = 8,
	EXECWATCH_CTR_MAX = 9,
};

/*
 * Scope (issue 19): which cgroups' execs are dropped in the kernel. The agent writes the table
 * (src/scope/) through a writable mapping of the `scope` map, without bpf(2): after start-up it
 * holds no capability. It is an open-addressing hash of cgroup ids, two copies of it: the agent
 * fills the copy not in use, then flips `active`, so a program never reads a half-written table.
 * A slot's home is execwatch_scope_hash(id); an entry sits at most EXECWATCH_SCOPE_PROBES slots
 * past it, and an empty slot (cgroup_id 0) ends the search.
 */
#define EXECWATCH_SCOPE_SLOTS 2048 /* a power of two */
#define EXECWATCH_SCOPE_SLOT_BITS 11
#define EXECWATCH_SCOPE_PROBES 8
/* Ancestors looked at above the exec's own cgroup (a container sits 3 to 5 levels deep). */
#define EXECWATCH_SCOPE_MAX_DEPTH 8
#define EXECWATCH_SCOPE_HASH_MUL 0x9E3779B97F4A7C15ULL

/* Why a cgroup is out of scope; the names are execwatch_events_excluded_total's reason labels. */
enum execwatch_scope {
	EXECWATCH_SCOPE_IN = 0,
	EXECWATCH_SCOPE_HOST = 1,      /* --exclude-host */
	EXECWATCH_SCOPE_NAMESPACE = 2, /* --include-namespaces, --exclude-namespaces */
	EXECWATCH_SCOPE_POD = 3,       /* --exclude-pods */
};

/* In a slot's verdict beside the reason: the entry also covers every cgroup below this one (a pod's
 * cgroup covers its containers, those created after the table was written included). */
#define EXECWATCH_SCOPE_SUBTREE 0x100

struct execwatch_scope_slot {
	__u64 cgroup_id; /* 0: empty */
	__u32 verdict;	 /* enum execwatch_scope | EXECWATCH_SCOPE_SUBTREE */
	__u32 reserved;
};

struct execwatch_scope_table {
	__u32 active;	  /* which copy of slots the programs read: 0 or 1 */
	__u32 entries[2]; /* entries in each copy: 0 skips the lookups */
	__u32 reserved;
	struct execwatch_scope_slot slots[2][EXECWATCH_SCOPE_SLOTS];
};

struct execwatch_record {
	__u64 boot_ns;	  /* bpf_ktime_get_boot_ns() at emission */
	__u64 cgroup_id;  /* cgroup v2 id (kernfs inode number), 0 when unknown */
	__u32 record_len; /* whole record incl. padding, multiple of 8 */
	__u16 kind;	  /* enum execwatch_record_kind: EXECWATCH_RECORD_EXEC */
	__u16 flags;	  /* enum execwatch_flag */
	__u32 pid;	  /* tgid */
	__u32 tid;
	__u32 ppid; /* real_parent->tgid */
	__u32 uid;
	__u32 gid;
	__s32 retval; /* 0, or the negative errno of a failed exec */
	__u32 argc;
	__u16 filename_len;
	__u16 reserved0;
	__u32 argv_len;
	/* The parent at the fork (its tgid): ppid, unless that parent has exited since and the
	 * kernel gave the process to pid 1 or a subreaper. ppid when the fork was not seen (before
	 * the programs were attached). parentExecId and the lineage follow it. */
	__u32 fork_ppid;
	/* The process's and fork_ppid's start: the group leader's start_boottime in ns, what
	 * /proc/PID/stat field 22 shows in clock ticks. With the pid, what execId is made of. */
	__u64 start_ns;
	__u64 fork_parent_start_ns;
	__u32 euid; /* effective ids of the new image (of the caller for a failed exec) */
	__u32 egid;
	__u32 loginuid;	 /* audit login uid, or EXECWATCH_ID_UNSET (unset, or no audit) */
	__u32 sessionid; /* audit session id, or EXECWATCH_ID_UNSET likewise */
	/* Inode numbers of the pid namespaces of the process and of its parent (real_parent) at
	 * exec time, as /proc/PID/ns/pid shows them; 0 when unknown. A parent in another namespace
	 * than its child started it from outside (a container runtime's exec, nsenter). Successful
	 * execs only (issue 18: origin), like ns_pid. */
	__u32 pidns;
	__u32 parent_pidns;
	/* The process's pid in its own pid namespace (1: that namespace's init), 0 when unknown. */
	__u32 ns_pid;
	__u16 cgroup_leaf_len;	 /* bytes of the cgroup's name after the header */
	__u16 cgroup_parent_len; /* bytes of its parent's name after that */
	char comm[EXECWATCH_COMM_LEN];
	char parent_comm[EXECWATCH_COMM_LEN];
};

#define EXECWATCH_HEADER_SIZE 144

/* AUDIT_UID_UNSET / AUDIT_SID_UNSET: no login session, or a kernel without audit. */
#define EXECWATCH_ID_UNSET 4294967295

/* ---- Exits (issue 17) ---- */

/*
 * The end of a process whose successful exec was reported: one per thread group, sent by the
 * last thread to leave. The cgroup names follow.
 */
struct execwatch_exit_record {
	__u64 boot_ns;	  /* bpf_ktime_get_boot_ns() at the exit */
	__u64 cgroup_id;  /* as in struct execwatch_record, read at the exit */
	__u32 record_len; /* the fixed part and the names, rounded up to 8 */
	__u16 kind;	  /* EXECWATCH_RECORD_EXIT */
	__u16 flags;	  /* enum execwatch_flag: the cgroup ones only */
	__u32 pid;	  /* tgid */
	__u32 tid;	  /* the last thread to leave */
	/* The wait status a parent would read: exit code << 8, or the signal | 0x80 with a core. */
	__s32 status;
	/* Processes it forked (since the programs were attached) still running at its exit. */
	__u32 orphans;
	__u64 start_ns; /* the group leader's start_boottime, as in the exec record */
	__u64 exec_ns;	/* boot_ns of the exec record of the image that ends */
	char comm[EXECWATCH_COMM_LEN];
	__u16 cgroup_leaf_len; /* as in struct execwatch_record */
	__u16 cgroup_parent_len;
	__u32 reserved;
};

#define EXECWATCH_EXIT_SIZE 80

/* ---- Throttles and losses by cgroup (issue 19) ---- */

/*
 * The first throttled exec of a cgroup's episode: one whose cgroup had no exec throttled for
 * EXECWATCH_THROTTLE_QUIET_NS. The cgroup names follow. The episode's end, and the number of
 * execs it suppressed, are found by the agent in the cgroup stats below.
 */
struct execwatch_throttle_record {
	__u64 boot_ns;	  /* bpf_ktime_get_boot_ns() of the throttled exec */
	__u64 cgroup_id;  /* as in struct execwatch_record */
	__u32 record_len; /* the slot reserved: the fixed part and room for the longest names */
	__u16 kind;	  /* EXECWATCH_RECORD_THROTTLE */
	__u16 flags;	  /* enum execwatch_flag: the cgroup ones only */
	__u32 pid;	  /* the process whose exec was the first throttled */
	__u32 tid;
	char comm[EXECWATCH_COMM_LEN];
	__u16 cgroup_leaf_len; /* as in struct execwatch_record */
	__u16 cgroup_parent_len;
	__u32 reserved;
};

#define EXECWATCH_THROTTLE_SIZE 56

/* An episode ends once its cgroup has had no exec throttled for this long (1 s). */
#define EXECWATCH_THROTTLE_QUIET_NS 1000000000ULL

/*
 * Execs throttled and events lost, by cgroup: one table per CPU (the map's entry of that index),
 * written by that CPU's programs only (they do not migrate), so no slot is ever written by two at
 * once and no atomic is needed; the agent reads every CPU's through a read-only mapping and adds
 * them up. Counts only grow while a slot keeps its cgroup. An open-addressing hash like the
 * scope table's (home slot: the top EXECWATCH_CGROUP_STATS_BITS bits of
 * id * EXECWATCH_SCOPE_HASH_MUL); a cgroup sits at most EXECWATCH_CGROUP_STATS_PROBES slots past
 * its home. When those all hold other cgroups, the first with nothing counted for
 * EXECWATCH_CGROUP_STATS_IDLE_NS is taken over (the agent reads the table every second, so it has
 * seen that cgroup's last counts); else the counts go to `other` (cgroup_id 0: pod "_other").
 */
#define EXECWATCH_CGROUP_STATS_SLOTS 256 /* a power of two */
#define EXECWATCH_CGROUP_STATS_BITS 8
#define EXECWATCH_CGROUP_STATS_PROBES 8
#define EXECWATCH_CGROUP_STATS_IDLE_NS 60000000000ULL

struct execwatch_cgroup_stat {
	__u64 cgroup_id;  /* 0: empty (or, in `other`, the cgroups with no slot) */
	__u64 claimed_ns; /* boot ns when the slot was given to this cgroup */
	__u64 throttled;  /* execs not emitted for being above --cgroup-rate */
	__u64 lost;	  /* events the ring buffer had no room for (ringbuf_full) */
	__u64 last_ns;	  /* boot ns of the last count */
};

struct execwatch_cgroup_stats {
	struct execwatch_cgroup_stat other;
	struct execwatch_cgroup_stat slots[EXECWATCH_CGROUP_STATS_SLOTS];
};

#endif /* EXECWATCH_H */
