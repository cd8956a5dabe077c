// SPDX-License-Identifier: GPL-2.0-only
/*
 * execwatch: one record per exec on the machine, successful or failed.
 *
 * sys_enter_execve(at) stashes the user pointers in exec_state, keyed by the calling task.
 * sched_process_exec means the exec succeeded: everything is read from the new image
 * (bprm->filename, argv from mm->arg_start..arg_end, as /proc/PID/cmdline shows it) and the state
 * is dropped. sys_exit_execve(at) that still finds the state means the exec failed: the record is
 * built from the caller's own memory, which a failed exec leaves untouched. The execs of 32-bit
 * callers skip those syscall tracepoints: fentry/fexit on the ia32 compat entry points do the same
 * for them, or, where the kernel refuses BPF trampolines, the raw syscall tracepoints filtered to
 * ia32 execve and execveat. sched_process_exit drops the state of a task that died in exec.
 * sched_process_fork remembers each new process's parent, which names it in the lineage even when
 * that parent has exited by the time it execs.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "kernel_types.h"
#include "execwatch.h"

char LICENSE[] SEC("license") = "GPL";

/* Load-time knobs, set by the addon before load. */
const volatile __u32 argv_max_bytes = EXECWATCH_ARGV_DEFAULT;
/* Wake user space only once this many bytes wait in the ring (0: the kernel's default, a wake-up
 * for every record the consumer has caught up with). Below the threshold the consumer collects
 * records on its own timer, so an exec storm costs one wake-up per batch instead of per exec. */
const volatile __u32 wakeup_bytes = 0;
/* With a threshold: a record that follows this long a quiet spell wakes user space at once. The
 * consumer's flush timer runs only while records come (after a drain that finds none it waits a
 * second), so a lone exec arrives without waiting for it and an idle agent is seldom woken. Set by
 * the addon to half of its flush interval less 2 ms (libuv's rounding): drains come at least that
 * far apart, so a record written after one that found nothing is further than twice this from the
 * last record drained. */
const volatile __u32 quiet_us = 0;

/* Failed execs read argv pointer by pointer: bound the walk for the verifier. */
#define MAX_FAILED_ARGS 128

struct exec_state {
	const char *filename;
	/* char *const[] of the caller, or compat_uptr_t[] (32-bit pointers) of a compat caller. */
	const void *argv;
	__u32 flags;
	bool compat;
	/* Above its cgroup's rate (issue 19): counted at entry, ended without a record. */
	bool suppressed;
};

/* The largest record: header, cgroup names, filename (+1 to tell a full PATH_MAX name from a cut
 * one), argv. The argv area is twice the ceiling so that a masked offset plus a bounded length
 * always stays inside it, which is what the verifier needs to see. */
struct scratch {
	struct execwatch_record rec;
	char data[EXECWATCH_CGROUP_LEAF_LEN + EXECWATCH_CGROUP_PARENT_LEN + EXECWATCH_FILENAME_MAX +
		  8 + 2 * EXECWATCH_ARGV_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by the addon (--ringbuf-bytes) */
} events SEC(".maps");

/*
 * One entry per exec in flight, keyed by the address of the calling task_struct: a non-leader
 * thread's exec takes the leader's pid in de_thread() (fs/exec.c), so a tid key set at entry is
 * not the tid at exit when the exec fails after that point; the task_struct stays the same.
 * A plain hash, not an LRU: the LRU's per-CPU free lists evict live entries long before it is
 * full on many-CPU nodes (fixed in Linux 6.16), and an LRU element can be reused while a program
 * still reads it. Every entry is deleted by the path that ends its exec: sched_process_exec
 * (success), the syscall exit (failure) or, for a task that dies without either,
 * sched_process_exit. The addon sizes it from the CPU count (native/tracer.cc); an insert into a
 * full map is counted (state_map_full).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768); /* resized by the addon */
	__type(key, __u64);
	__type(value, struct exec_state);
} exec_state SEC(".maps");

/* One slot per counter shared by every CPU, added to atomically. Mmapable (Linux 5.5), so the agent
 * reads it from memory it mapped at load time: after start-up it holds no capability, and bpf(2)
 * lookups need CAP_BPF on kernels before 6.5 with unprivileged BPF disabled. A per-CPU array cannot
 * be mapped. The atomic add on a shared line costs nothing measurable at exec rates (README,
 * Performance). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, EXECWATCH_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* A plain array indexed by CPU (resized to the number of possible CPUs by the addon): a per-CPU
 * array value cannot exceed 32 KiB, and a record can. Tracepoint programs do not migrate. The
 * exec records are built here. (An fexit program on the ia32 entry points can be preempted on a
 * preemptible kernel, and another task's exec record built in the area meanwhile.) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* The exit records' area, apart: the exit program runs in a tracepoint, which nothing on its CPU
 * interrupts, and would otherwise write over an exec record that a preempted fexit program is
 * building. */
struct exit_scratch {
	struct execwatch_exit_record rec;
	char names[EXECWATCH_CGROUP_LEAF_LEN + EXECWATCH_CGROUP_PARENT_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exit_scratch);
} exit_scratch SEC(".maps");

/* This CPU's exec record area. */
static __always_inline struct scratch *scratch_get(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratch, &cpu);
}

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The boot_ns of a recent record, to the millisecond: one word shared by every CPU, written at
 * most once a millisecond so that its cache line is not passed between CPUs on every record. */
__u64 last_record_ns = 0;

/* Forced past the threshold or after a quiet spell, not left to the kernel's default: earlier
 * records were submitted without a wake-up, so the consumer's position no longer tells the kernel
 * that it is waiting. `now` is the record's boot_ns. */
static __always_inline __u64 wakeup_flags(__u64 len, __u64 now)
{
	__u64 last;

	if (!wakeup_bytes)
		return 0;
	last = last_record_ns;
	/* Signed: a CPU can read its clock before another CPU's later stamp lands here. */
	if ((__s64)(now - last) >= 1000000)
		last_record_ns = now;
	if ((__s64)(now - last) > (__s64)quiet_us * 1000)
		return BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + len >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/*
 * ---- Scope (issue 19) ----------------------------------------------------------------------
 * Out-of-scope execs (host processes, namespaces, pod label selectors: src/scope/) are decided at
 * the syscall entry, the first program an exec reaches, counted there once, and dropped: no state
 * is kept, so the exit finds none and sched_process_exec, which checks the scope again when it
 * finds none, reads nothing either. (A table that turns a cgroup from out of scope to in scope
 * while one of its execs is between the two would have that exec counted and delivered: the
 * table changes with pods, seldom, and a program runs for microseconds.) The agent writes the table
 * (struct execwatch_scope_table in execwatch.h) through its mapping; a cgroup it does not list is
 * in scope, and the agent judges its events again.
 *
 * A container created a moment ago is already covered: the agent lists the pod's cgroup, which
 * exists before any of the pod's containers, as a subtree entry, and the lookup walks the exec's
 * ancestors (bpf_get_current_ancestor_cgroup_id, deepest first) when its own cgroup is not listed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct execwatch_scope_table);
} scope SEC(".maps");

/* The agent writes the table while programs read it: one load per field, never a re-read. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

/* The slot chain of `id` in one copy of the table: its verdict, or -1 when it is not listed (or is
 * listed for itself only and `subtree` is asked). */
static __always_inline int scope_find(struct execwatch_scope_table *t, __u32 copy, __u64 id,
				      bool subtree)
{
	__u32 home = (__u32)((id * EXECWATCH_SCOPE_HASH_MUL) >> (64 - EXECWATCH_SCOPE_SLOT_BITS));

	for (__u32 i = 0; i < EXECWATCH_SCOPE_PROBES; i++) {
		struct execwatch_scope_slot *slot =
			&t->slots[copy & 1][(home + i) & (EXECWATCH_SCOPE_SLOTS - 1)];
		__u64 got = READ_ONCE(slot->cgroup_id);
		__u32 verdict;

		if (got == 0)
			return -1;
		if (got != id)
			continue;
		verdict = READ_ONCE(slot->verdict);
		if (subtree && !(verdict & EXECWATCH_SCOPE_SUBTREE))
			return -1;
		return verdict & 0xff;
	}
	return -1;
}

/* enum execwatch_scope of the current task's cgroup v2: its own entry, else its nearest listed
 * ancestor's subtree entry, else in scope. */
static __always_inline __u32 scope_of_current(void)
{
	struct execwatch_scope_table *t;
	struct task_struct *task;
	__u32 zero = 0, copy;
	int verdict, level;

	t = bpf_map_lookup_elem(&scope, &zero);
	if (!t)
		return EXECWATCH_SCOPE_IN;
	copy = READ_ONCE(t->active) & 1;
	if (READ_ONCE(t->entries[copy]) == 0)
		return EXECWATCH_SCOPE_IN;
	verdict = scope_find(t, copy, bpf_get_current_cgroup_id(), false);
	if (verdict >= 0)
		return verdict;
	task = (struct task_struct *)bpf_get_current_task();
	level = BPF_CORE_READ(task, cgroups, dfl_cgrp, level);
	for (int i = 1; i <= EXECWATCH_SCOPE_MAX_DEPTH; i++) {
		/* The root (level 0) is never a subtree entry: new pods would fall under it. */
		if (level - i < 1)
			break;
		verdict = scope_find(t, copy, bpf_get_current_ancestor_cgroup_id(level - i), true);
		if (verdict >= 0)
			return verdict;
	}
	return EXECWATCH_SCOPE_IN;
}

/* An exec dropped for being out of scope: one event, counted by its reason. */
static __always_inline int excluded(__u32 reason)
{
	count(EXECWATCH_CTR_EVENTS);
	count(EXECWATCH_CTR_EXCLUDED_HOST + reason - 1);
	return 0;
}
/* ---- end of Scope ------------------------------------------------------------------------ */

/*
 * A field of a kernel object, `btf` a constant at each inlined use. True where the object reached
 * the program as a BTF pointer (the task a tp_btf program is handed, and what is reached from it):
 * the verifier lets the program load the field directly. False where it came from
 * bpf_get_current_task() (the tracepoint and fexit programs; bpf_get_current_task_btf() needs
 * Linux 5.11): read with bpf_probe_read_kernel(), a helper call each. The exec and exit programs
 * read a dozen fields per record; loaded directly they took 1.5-7% less of the exec path's BPF
 * time (per-program run time, both variants attached at once, in either order, ten pairs).
 */
#define KREAD(btf, src, field) ((btf) ? (src)->field : BPF_CORE_READ(src, field))
/* Two steps: src->a->b. */
#define KREAD2(btf, src, a, b) ((btf) ? (src)->a->b : BPF_CORE_READ(src, a, b))

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn, bool btf)
{
	struct kernfs_node___rcu *rcu = (void *)kn;

	if (bpf_core_field_exists(rcu->__parent))
		return KREAD(btf, rcu, __parent);
	return KREAD(btf, kn, parent);
}

/* Copies the name of `kn` to `dst`, without the NUL: all of it up to `size` - 1 bytes, else that
 * many and the flag. Reads one byte more than it keeps, so that a name of exactly `size` - 1 bytes
 * is not taken for a cut one; `dst` has room for it. Returns the length kept (0: unreadable). */
static __always_inline __u32 read_cgroup_name(char *dst, __u32 size, struct kernfs_node *kn,
					      __u16 *flags)
{
	const char *name = BPF_CORE_READ(kn, name);
	long n;

	if (!name)
		return 0;
	n = bpf_probe_read_kernel_str(dst, size + 1, name);
	if (n <= 0)
		return 0;
	if (n > size) {
		*flags |= EXECWATCH_F_CGROUP_NAME_TRUNCATED;
		n = size;
	}
	return (__u32)(n - 1);
}

/* The cgroup leaf and parent names, from the cgroup v2 hierarchy; on a host where the task sits in
 * the v2 root (cgroup v1 only, or hybrid with v1 in use), from the memory controller's hierarchy,
 * then the pids controller's: the ones container runtimes always use. `cs` is the task's
 * css_set (its cgroups in every hierarchy). Written one after the other at `names`, where every
 * kind of record has them after its fixed part; returns their length. */
static __always_inline __u32 fill_cgroup_names(__u64 *cgroup_id, __u16 *flags, __u16 *leaf_len,
					       __u16 *parent_len, char *names, struct css_set *cs,
					       bool btf)
{
	struct kernfs_node *kn = KREAD2(btf, cs, dfl_cgrp, kn);
	struct kernfs_node *parent = kn ? kn_parent(kn, btf) : NULL;
	__u32 leaf = 0, up = 0;

	/* The id of the same cgroup v2 the names come from (bpf_get_current_cgroup_id() would read
	 * the task's cgroups again, and a task moved in between would pair one cgroup's id with
	 * another's names). */
	*cgroup_id = kn ? KREAD(btf, kn, id) : bpf_get_current_cgroup_id();
	if (!parent) {
		struct cgroup_subsys_state *css = NULL;
		int ids[2] = {-1, -1};

		if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
			ids[0] = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id))
			ids[1] = bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id);
#pragma unroll
		for (int i = 0; i < 2; i++) {
			struct kernfs_node *v1kn, *v1parent;

			if (ids[i] < 0 || ids[i] >= 64)
				continue;
			bpf_probe_read_kernel(&css, sizeof(css), &cs->subsys[ids[i]]);
			if (!css)
				continue;
			v1kn = BPF_CORE_READ(css, cgroup, kn);
			v1parent = v1kn ? kn_parent(v1kn, false) : NULL;
			if (v1parent) {
				kn = v1kn;
				parent = v1parent;
				*flags |= EXECWATCH_F_CGROUP_V1;
				break;
			}
		}
	}
	if (kn)
		leaf = read_cgroup_name(names, EXECWATCH_CGROUP_LEAF_LEN, kn, flags);
	if (parent)
		up = read_cgroup_name(names + leaf, EXECWATCH_CGROUP_PARENT_LEN, parent, flags);
	*leaf_len = leaf;
	*parent_len = up;
	return leaf + up;
}

/*
 * ---- Fairness (issue 19) -------------------------------------------------------------------
 * --cgroup-rate: each cgroup may exec `cgroup_rate` times a second, with bursts of up to
 * `cgroup_burst`; above that its execs are counted (throttled) and not emitted, so that one pod
 * re-execing in a loop cannot fill the ring buffer that every pod's execs go through. A
 * generic cell rate algorithm: one timestamp per cgroup, the time its bucket is empty again
 * ("theoretical arrival time"); an exec is allowed while that is at most the burst ahead of now.
 * Concurrent execs of one cgroup on two CPUs may both pass on the last token: the limit is a
 * fairness bound, not an accounting one (that is exact: a suppressed exec is counted once).
 */
const volatile __u32 cgroup_rate = 0;  /* execs per second per cgroup; 0: no limit */
const volatile __u32 cgroup_burst = 1; /* execs allowed at once above the rate */
#define ROOT_CGROUP_ID 1

struct cgroup_rate {
	__u64 tat;	    /* when the bucket is full again (bpf_ktime_get_ns()) */
	__u64 throttled_ns; /* the last exec throttled (bpf_ktime_get_boot_ns()), 0: none yet */
};

/* LRU: a cgroup that has not exec'd for a while loses its bucket, which only means a full one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cgroup_rate);
} cgroup_rate_tat SEC(".maps");

/*
 * Throttled execs and lost events by cgroup, for the agent (struct execwatch_cgroup_stats in
 * execwatch.h): one entry per possible CPU (the addon resizes it), each written by its CPU only.
 * Touched only on a throttled exec or a full ring, never on the path of an exec that is emitted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* resized to the number of possible CPUs by the addon */
	__type(key, __u32);
	__type(value, struct execwatch_cgroup_stats);
} cgroup_stats SEC(".maps");

enum cgroup_stat_kind {
	STAT_THROTTLED,
	STAT_LOST,
};

/* This CPU's slot of cgroup `id`: its own, else an empty one or an idle one taken over, else
 * `other`. */
static __always_inline struct execwatch_cgroup_stat *cgroup_stat(__u64 id, __u64 now)
{
	__u32 cpu = bpf_get_smp_processor_id(), home;
	struct execwatch_cgroup_stats *t = bpf_map_lookup_elem(&cgroup_stats, &cpu);
	struct execwatch_cgroup_stat *slot;

	if (!t)
		return NULL;
	home = (__u32)((id * EXECWATCH_SCOPE_HASH_MUL) >> (64 - EXECWATCH_CGROUP_STATS_BITS));
	for (__u32 i = 0; i < EXECWATCH_CGROUP_STATS_PROBES; i++) {
		slot = &t->slots[(home + i) & (EXECWATCH_CGROUP_STATS_SLOTS - 1)];
		if (slot->cgroup_id == id)
			return slot;
	}
	for (__u32 i = 0; i < EXECWATCH_CGROUP_STATS_PROBES; i++) {
		slot = &t->slots[(home + i) & (EXECWATCH_CGROUP_STATS_SLOTS - 1)];
		if (slot->cgroup_id != 0 && now - slot->last_ns <= EXECWATCH_CGROUP_STATS_IDLE_NS)
			continue;
		/* Counts first, then the id: the agent reads the id first. */
		slot->throttled = 0;
		slot->lost = 0;
		slot->last_ns = now;
		slot->claimed_ns = now;
		slot->cgroup_id = id;
		return slot;
	}
	return &t->other;
}

/* Counts one throttled exec or lost event against cgroup `id`. */
static __always_inline void count_cgroup(__u64 id, enum cgroup_stat_kind kind)
{
	__u64 now = bpf_ktime_get_boot_ns();
	struct execwatch_cgroup_stat *slot = cgroup_stat(id, now);

	if (!slot)
		return;
	if (kind == STAT_THROTTLED)
		slot->throttled++;
	else
		slot->lost++;
	slot->last_ns = now;
}

/* The first exec throttled in an episode: its cgroup and process, for the agent's start event. A
 * record the ring has no room for is not counted: the agent opens the episode from the cgroup
 * stats instead. */
/* A throttle record with room for the longest names: reserved whole in the ring (throttle records
 * are rare), so that it needs no scratch area. */
struct throttle_slot {
	struct execwatch_throttle_record rec;
	char names[EXECWATCH_CGROUP_LEAF_LEN + EXECWATCH_CGROUP_PARENT_LEN];
};

static __always_inline void report_throttle(__u64 boot_ns)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pidtgid = bpf_get_current_pid_tgid();
	struct throttle_slot *slot;

	slot = bpf_ringbuf_reserve(&events, sizeof(*slot), 0);
	if (!slot)
		return;
	/* Ring memory is not zeroed: the fixed part is written whole, the names as far as used. */
	__builtin_memset(&slot->rec, 0, sizeof(slot->rec));
	slot->rec.boot_ns = boot_ns;
	slot->rec.record_len = sizeof(*slot);
	slot->rec.kind = EXECWATCH_RECORD_THROTTLE;
	slot->rec.pid = pidtgid >> 32;
	slot->rec.tid = (__u32)pidtgid;
	bpf_get_current_comm(slot->rec.comm, sizeof(slot->rec.comm));
	fill_cgroup_names(&slot->rec.cgroup_id, &slot->rec.flags, &slot->rec.cgroup_leaf_len,
			  &slot->rec.cgroup_parent_len, slot->names, BPF_CORE_READ(task, cgroups),
			  false);
	bpf_ringbuf_submit(slot, wakeup_flags(sizeof(*slot), boot_ns));
}

/*
 * Whether the current task's cgroup is above its rate; takes a token when it is not. A throttled
 * exec whose cgroup had none throttled for EXECWATCH_THROTTLE_QUIET_NS begins an episode: `start`
 * is set (two CPUs beginning one at the same instant may both set it; the agent keeps one).
 */
static __always_inline bool over_rate(bool *start)
{
	__u64 id, now, interval, tat, boot_ns;
	struct cgroup_rate *slot;

	if (!cgroup_rate)
		return false;
	id = bpf_get_current_cgroup_id();
	/* Not the root cgroup (kernfs id 1): a node puts only the kernel's threads there, and a
	 * host without a cgroup manager (a CI machine, a developer's VM) everything, whose execs
	 * would all share one bucket. */
	if (id == ROOT_CGROUP_ID)
		return false;
	interval = 1000000000ULL / cgroup_rate;
	now = bpf_ktime_get_ns();
	slot = bpf_map_lookup_elem(&cgroup_rate_tat, &id);
	if (!slot) {
		struct cgroup_rate fresh = {.tat = now + interval};

		bpf_map_update_elem(&cgroup_rate_tat, &id, &fresh, BPF_ANY);
		return false;
	}
	tat = slot->tat > now ? slot->tat : now;
	if (tat - now <= (__u64)(cgroup_burst - 1) * interval) {
		slot->tat = tat + interval;
		return false;
	}
	/* Throttled: from here on nothing is on the path of an emitted exec. */
	boot_ns = bpf_ktime_get_boot_ns();
	*start = boot_ns - slot->throttled_ns > EXECWATCH_THROTTLE_QUIET_NS;
	slot->throttled_ns = boot_ns;
	return true;
}
/* ---- end of Fairness ---------------------------------------------------------------------- */

static __always_inline __u64 task_key(void)
{
	return (__u64)bpf_get_current_task();
}

static __always_inline int enter(const char *filename, const void *argv, __u32 flags, bool compat)
{
	struct exec_state st = {
		.filename = filename,
		.argv = argv,
		.flags = flags,
		.compat = compat,
	};
	__u64 key = task_key();
	__u32 out = scope_of_current();
	bool start = false;

	/* Out of scope: counted here, once, and no state is kept, so that the programs that end the
	 * exec find none and read nothing. */
	if (out)
		return excluded(out);
	st.suppressed = over_rate(&start);

	/* Fails only when the map is full (the key is replaced otherwise): the exec is still
	 * reported if it succeeds, without its execveat flag, but lost if it fails. A suppressed
	 * one is then reported too: it is counted as throttled only once its state is kept. */
	if (bpf_map_update_elem(&exec_state, &key, &st, BPF_ANY))
		count(EXECWATCH_CTR_STATE_MAP_FULL);
	else if (st.suppressed) {
		count(EXECWATCH_CTR_EVENTS);
		count(EXECWATCH_CTR_THROTTLED);
		count_cgroup(bpf_get_current_cgroup_id(), STAT_THROTTLED);
		if (start)
			report_throttle(bpf_ktime_get_boot_ns());
	}
	return 0;
}

SEC("tp/syscalls/sys_enter_execve")
int handle_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (const void *)ctx->args[1], 0, false);
}

SEC("tp/syscalls/sys_enter_execveat")
int handle_enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (const void *)ctx->args[2], EXECWATCH_F_EXECVEAT,
		     false);
}

/*
 * ---- Process identity, lineage and exits (issue 17) ----
 *
 * An exec record names its process by the group leader's start time and pid (execId in user
 * space), its credentials, and the parent that forked it. `processes` holds an entry per live
 * process forked since the programs were attached (handle_fork()) and per process whose exec was
 * reported: its fork parent, which the kernel forgets when that parent exits first (the child is
 * reparented to pid 1 or a subreaper before it execs), and whether its exec was reported. The
 * last thread of a reported process to leave reports the exit (report_exit(), from
 * sched_process_exit); every entry leaves with its process. Processes whose exec was not reported
 * (started before the agent, or whose record was lost) get no exit record.
 */

/* include/linux/sched/signal.h, unchanged since Linux 5.x: exit_group(2) or a fatal signal. */
#define SIGNAL_GROUP_EXIT 0x00000004
/* include/linux/sched.h, unchanged since Linux 2.6. */
#define PF_KTHREAD 0x00200000

struct process {
	__u64 start_ns;	       /* group leader's start_boottime: a pid reused since has another */
	__u64 exec_ns;	       /* boot_ns of the reported exec record; 0: none reported */
	__u64 parent_start_ns; /* of parent_tgid */
	__u32 parent_tgid;     /* the parent at the fork (or at the first exec seen) */
	/* Processes it forked that are still running, added to atomically (the exit's orphans). */
	__u32 children;
	/* This process is one of its parent's `children`: its exit takes it off. */
	bool counted;
	/* The task's css_set at the reported exec, whose record named its cgroups, and that
	 * record's cgroup v2 id: an exit from the same ones names none (EXECWATCH_F_CGROUP_AS_EXEC;
	 * user space has the exec's names). */
	__u64 css;
	__u64 cgroup_id;
};

/*
 * One entry per live process forked or exec'd since attach, keyed by tgid. Bounded by tasks like
 * exec_state and sized by the addon the same way (every pid of a default pid space); a plain hash
 * for the same reasons. Every entry leaves with its process's last thread. A fork that finds it
 * full leaves that process's lineage to its real parent; an exec that finds it full is counted
 * (process_map_full): that process's exit will not be reported.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768); /* resized by the addon */
	__type(key, __u32);
	__type(value, struct process);
} processes SEC(".maps");

/* The entry of the process `tgid` that started at `start_ns`: NULL when there is none, or only an
 * earlier process's of the same pid (whose exit was missed). */
static __always_inline struct process *process_of(__u32 tgid, __u64 start_ns)
{
	struct process *proc = bpf_map_lookup_elem(&processes, &tgid);

	return proc && proc->start_ns == start_ns ? proc : NULL;
}

/*
 * A new process (not a thread, not a kernel thread): remember its parent, which the kernel
 * forgets if that parent exits before this one execs. The parent is the child's real_parent, as
 * ppid would name it (the forking task's parent with CLONE_PARENT). The tracepoint fires before
 * the child first runs, so the entry is there before it can exec. Cost: one insert per fork (and
 * one add to the parent's entry); BTF pointers are read directly, without a helper call.
 *
 * A parent forked since attach that has not exec'd since (a subshell, a pre-fork server's worker)
 * runs the image of the process its own entry names, and no exec event names it: user space knows
 * only processes that exec'd or ran at start. While that process lives, the child names it
 * instead and is one of its `children`, so that its lineage goes on through the fork.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *forker, struct task_struct *child)
{
	struct task_struct *parent, *image_task = NULL;
	struct process proc = {}, *pp, *fork_pp;
	__u32 tgid = child->tgid;

	if (child->pid != tgid || (child->flags & PF_KTHREAD))
		return 0;
	parent = child->real_parent;
	proc.start_ns = child->start_boottime;
	proc.parent_tgid = parent->tgid;
	proc.parent_start_ns = parent->group_leader->start_boottime;
	pp = fork_pp = process_of(proc.parent_tgid, proc.parent_start_ns);
	if (pp && parent->self_exec_id == parent->parent_exec_id) {
		struct process *image = process_of(pp->parent_tgid, pp->parent_start_ns);
		struct task_struct *up = parent->real_parent;
		bool up_is_image = up->tgid == pp->parent_tgid &&
				   up->group_leader->start_boottime == pp->parent_start_ns;

		/* Only while that process lives: its entry, or (running since before attach) still
		 * the parent's parent and in signal->live. One that has exited may have settled its
		 * orphans already; one between its exit program and exit_notify() has no entry left
		 * and is still the parent's parent. */
		if (image || (up_is_image && up->signal->live.counter != 0)) {
			proc.parent_tgid = pp->parent_tgid;
			proc.parent_start_ns = pp->parent_start_ns;
			pp = image;
			/* Named instead of the parent: its task, where found, is watched below. */
			if (up_is_image)
				image_task = up;
		}
	}
	proc.counted = pp != NULL;
	/* Full: this process's lineage will name its real parent at the exec instead. */
	if (bpf_map_update_elem(&processes, &tgid, &proc, BPF_ANY))
		return 0;
	if (!pp)
		return 0;
	__sync_fetch_and_add(&pp->children, 1);
	/*
	 * That process may be leaving right now: its exit program reads `children` once its last
	 * thread has left signal->live (do_exit()), and would miss this child, whose exit would
	 * then settle one of its orphans in user space that it never had. The locked add above
	 * orders (on x86) this read of live after it: above 0, that exit reads `children` later. At
	 * 0, the child names its forking parent instead, as a child of an exited image does. Only
	 * where that process is still the parent's parent: for a fork two forks down it is not
	 * found from here, and the window (its exit between the lookup and the add) stays open.
	 * (fork_pp is never NULL with image_task set: a bound for the verifier.)
	 */
	if (image_task && image_task->signal->live.counter == 0 && fork_pp) {
		__sync_fetch_and_add(&pp->children, (__u32)-1);
		proc.parent_tgid = parent->tgid;
		proc.parent_start_ns = parent->group_leader->start_boottime;
		if (!bpf_map_update_elem(&processes, &tgid, &proc, BPF_ANY))
			__sync_fetch_and_add(&fork_pp->children, 1);
	}
	return 0;
}

/* Fills the identity of the current process and returns its entry (NULL when it has none): the
 * parent named is the one at its fork when that was seen, else the real parent. */
static __always_inline struct process *fill_identity(struct execwatch_record *rec,
						     struct task_struct *task,
						     struct task_struct *parent, bool btf)
{
	/* Read before the branch below, which would otherwise load it with the instruction that
	 * loads the entry's field (the verifier refuses an instruction used with two kinds of
	 * pointer). */
	__u64 parent_start_ns = KREAD2(btf, parent, group_leader, start_boottime);
	struct process *proc;

	/* After a non-leader thread's exec, de_thread() gave it the old leader's start time. */
	rec->start_ns = KREAD2(btf, task, group_leader, start_boottime);
	proc = process_of(rec->pid, rec->start_ns);
	if (proc) {
		rec->fork_ppid = proc->parent_tgid;
		rec->fork_parent_start_ns = proc->parent_start_ns;
	} else {
		rec->fork_ppid = rec->ppid;
		rec->fork_parent_start_ns = parent_start_ns;
	}
	/* The new image's credentials: commit_creds() runs before sched_process_exec. */
	rec->euid = KREAD2(btf, task, cred, euid.val);
	rec->egid = KREAD2(btf, task, cred, egid.val);
	rec->loginuid = EXECWATCH_ID_UNSET;
	rec->sessionid = EXECWATCH_ID_UNSET;
	if (bpf_core_field_exists(task->loginuid))
		rec->loginuid = KREAD(btf, task, loginuid.val);
	if (bpf_core_field_exists(task->sessionid))
		rec->sessionid = KREAD(btf, task, sessionid);
	return proc;
}

/* After a successful exec of the process whose entry is `proc` (NULL: none): `reported` says
 * whether its record reached the ring buffer; `css`, the css_set its cgroup names came from. */
static __always_inline void track_process(struct process *proc, struct execwatch_record *rec,
					  bool reported, __u64 css)
{
	struct process fresh = {
		.start_ns = rec->start_ns,
		.exec_ns = rec->boot_ns,
		.parent_start_ns = rec->fork_parent_start_ns,
		.parent_tgid = rec->fork_ppid,
		.css = css,
		.cgroup_id = rec->cgroup_id,
	};
	__u32 tgid = rec->pid;

	/* A lost exec's exit would name an image nobody saw (an earlier image's included). */
	if (proc) {
		proc->exec_ns = reported ? rec->boot_ns : 0;
		proc->css = css;
		proc->cgroup_id = rec->cgroup_id;
		return;
	}
	/* Forked before attach (or the fork found the map full): its first exec seen adds it. */
	if (reported && bpf_map_update_elem(&processes, &tgid, &fresh, BPF_ANY))
		count(EXECWATCH_CTR_PROCESS_MAP_FULL);
}

/* ---- End of process identity (the exit program is below, report_exit()) ---- */

/* The record's header and cgroup names, from the current task `task` (a BTF pointer when `btf`,
 * see KREAD); `proc` gets its process's entry (or NULL), `names` the length of the names, `css`
 * the css_set they were read from. */
static __always_inline struct scratch *begin_record(struct process **proc, __u32 *names, __u64 *css,
						    struct task_struct *task, bool btf)
{
	struct css_set *cs;
	struct scratch *s = scratch_get();
	struct task_struct *parent;
	struct execwatch_record *rec;
	__u64 ugid, pidtgid;

	if (!s)
		return NULL;
	rec = &s->rec;
	/* The scratch area is reused: every header byte is rewritten here. */
	__builtin_memset(rec, 0, sizeof(*rec));
	parent = KREAD(btf, task, real_parent);
	pidtgid = bpf_get_current_pid_tgid();
	ugid = bpf_get_current_uid_gid();
	rec->pid = pidtgid >> 32;
	rec->tid = (__u32)pidtgid;
	rec->ppid = KREAD(btf, parent, tgid);
	rec->uid = (__u32)ugid;
	rec->gid = ugid >> 32;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	BPF_CORE_READ_STR_INTO(&rec->parent_comm, parent, comm);
	cs = KREAD(btf, task, cgroups);
	*css = (__u64)cs;
	*names = fill_cgroup_names(&rec->cgroup_id, &rec->flags, &rec->cgroup_leaf_len,
				   &rec->cgroup_parent_len, s->data, cs, btf);
	*proc = fill_identity(rec, task, parent, btf);
	return s;
}

/* Copies the filename (kernel or user string) after the `names` bytes of cgroup names; returns its
 * length. */
static __always_inline __u32 put_filename(struct scratch *s, __u32 names, const char *filename,
					  bool user)
{
	long n;

	if (!filename)
		return 0;
	if (user)
		n = bpf_probe_read_user_str(s->data + names, EXECWATCH_FILENAME_MAX + 1, filename);
	else
		n = bpf_probe_read_kernel_str(s->data + names, EXECWATCH_FILENAME_MAX + 1,
					      filename);
	if (n <= 0) {
		s->rec.flags |= EXECWATCH_F_READ_ERROR;
		count(EXECWATCH_CTR_ARGV_READ_ERROR);
		return 0;
	}
	if (n > EXECWATCH_FILENAME_MAX) {
		s->rec.flags |= EXECWATCH_F_FILENAME_TRUNCATED;
		n = EXECWATCH_FILENAME_MAX;
	}
	return (__u32)(n - 1); /* without the NUL */
}

/*
 * Copies a record of `len` bytes stamped `boot_ns`, built in a scratch area, to the ring buffer; 0
 * once it is there.
 * Counted first, so that a reader who sees a record or a ringbuf_full count also sees this count:
 * delivered + lost never exceeds it, and equals it once the ring is drained.
 */
static __always_inline long emit(void *rec, __u64 len, __u64 boot_ns, __u64 cgroup_id)
{
	long err;

	count(EXECWATCH_CTR_EVENTS);
	err = bpf_ringbuf_output(&events, rec, len, wakeup_flags(len, boot_ns));
	if (err) {
		count(EXECWATCH_CTR_RINGBUF_FULL);
		count_cgroup(cgroup_id, STAT_LOST);
	}
	return err;
}

/* Returns 0 once the record is in the ring buffer. */
static __always_inline long submit(struct scratch *s, __u32 names, __u32 filename_len,
				   __u32 argv_len)
{
	__u64 len = sizeof(s->rec) + names + filename_len + argv_len;

	len = (len + 7) & ~7ULL;
	if (len > sizeof(*s))
		return -1;
	s->rec.filename_len = filename_len;
	s->rec.argv_len = argv_len;
	s->rec.record_len = len;
	s->rec.kind = EXECWATCH_RECORD_EXEC;
	s->rec.boot_ns = bpf_ktime_get_boot_ns();
	return emit(s, len, s->rec.boot_ns, s->rec.cgroup_id);
}

#define OVERLAYFS_SUPER_MAGIC 0x794c7630

/*
 * Drift: the executed file is on an overlay's upper layer, the container's writable one: written
 * or changed after the container started, so not the image's. The overlay inode of such a file
 * has an upper dentry; one that is only in the image's lower layers has none. Read from the
 * inode being executed, so a file deleted right after its exec is still seen. A chmod or chown in
 * the container copies the file up too (it then counts as drift). Where overlayfs is a module
 * that was not loaded when the agent started (no container runtime had used it), its types are
 * unknown to libbpf and nothing is flagged.
 */
static __always_inline bool on_upper_layer(struct inode *inode)
{
	struct ovl_inode *oi;

	if (!bpf_core_type_exists(struct ovl_inode))
		return false;
	if (inode->i_sb->s_magic != OVERLAYFS_SUPER_MAGIC)
		return false;
	oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);
	return BPF_CORE_READ(oi, __upperdentry) != NULL;
}

/*
 * Origin (issue 18): the pid namespace of a task (its inode number, as /proc/PID/ns/pid shows it)
 * and, when `nr` is given, the task's pid in it. Read from the task's struct pid: numbers[level] is
 * its entry in its own namespace. 0 when the kernel has no thread_pid (before 4.19).
 */
static __always_inline __u32 pid_ns_of(struct task_struct *task, __u32 *nr)
{
	struct pid *pid;
	struct upid up = {};
	unsigned int level;

	if (!bpf_core_field_exists(task->thread_pid))
		return 0;
	pid = task->thread_pid;
	if (!pid)
		return 0;
	level = pid->level;
	if (bpf_core_read(&up, sizeof(up), &pid->numbers[level]))
		return 0;
	if (nr)
		*nr = up.nr;
	return BPF_CORE_READ(up.ns, ns.inum);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 key = (__u64)p, len, css;
	__u32 names, flen, alen = 0, flags = EXECWATCH_F_NO_ENTER_STATE;
	struct process *proc = NULL;
	struct exec_state *st;
	struct inode *inode;
	struct scratch *s;
	unsigned long start, end;
	long err;

	st = bpf_map_lookup_elem(&exec_state, &key);
	if (st) {
		bool suppressed = st->suppressed;

		flags = st->flags;
		bpf_map_delete_elem(&exec_state, &key);
		if (suppressed)
			return 0;
	} else if (scope_of_current()) {
		/* Out of scope: counted by the syscall entry (or begun before the programs were
		 * attached, when nothing counted it and nothing is emitted). */
		return 0;
	}
	s = begin_record(&proc, &names, &css, p, true);
	if (!s)
		return 0;
	s->rec.flags |= flags;
	/* The thread that called exec; after exec it has taken the thread-group leader's id. */
	s->rec.tid = old_pid;
	s->rec.argc = bprm->argc;
	inode = bprm->file->f_inode;
	if (inode->__i_nlink == 0)
		s->rec.flags |= EXECWATCH_F_FILELESS;
	if (on_upper_layer(inode))
		s->rec.flags |= EXECWATCH_F_DRIFT;
	/* Where the process came from: a parent in another pid namespace started it from outside,
	 * and pid 1 of its namespace is that namespace's init. Once per successful exec. */
	s->rec.pidns = pid_ns_of(p, &s->rec.ns_pid);
	s->rec.parent_pidns = pid_ns_of(p->real_parent, NULL);

	flen = put_filename(s, names, bprm->filename, false);
	if (flen > EXECWATCH_FILENAME_MAX)
		return 0;

	start = p->mm->arg_start;
	end = p->mm->arg_end;
	len = end > start ? end - start : 0;
	if (len > argv_max_bytes) {
		len = argv_max_bytes;
		s->rec.flags |= EXECWATCH_F_ARGV_TRUNCATED;
	}
	if (len > EXECWATCH_ARGV_MAX) {
		len = EXECWATCH_ARGV_MAX;
		s->rec.flags |= EXECWATCH_F_ARGV_TRUNCATED;
	}
	if (len > 0) {
		if (bpf_probe_read_user(s->data + names + flen, len, (void *)start)) {
			s->rec.flags |= EXECWATCH_F_READ_ERROR;
			count(EXECWATCH_CTR_ARGV_READ_ERROR);
		} else {
			alen = len;
		}
	}
	/* submit() stamps boot_ns: read after it. */
	err = submit(s, names, flen, alen);
	track_process(proc, &s->rec, err == 0, css);
	return 0;
}

/* argv of a failed exec, pointer by pointer from the caller's memory. 64-bit arithmetic throughout:
 * clang compares 32-bit copies otherwise, and the verifier then loses the bounds it needs. */
static __always_inline __u32 put_user_argv(struct scratch *s, __u32 at, const void *argv,
					   bool compat)
{
	__u64 off = 0, budget = argv_max_bytes;

	if (budget > EXECWATCH_ARGV_MAX)
		budget = EXECWATCH_ARGV_MAX;
	if (!argv)
		return 0;
	for (int i = 0; i < MAX_FAILED_ARGS; i++) {
		const char *arg = NULL;
		__u32 arg32 = 0;
		__u64 room;
		long n;

		if (compat) {
			n = bpf_probe_read_user(&arg32, sizeof(arg32), (const __u32 *)argv + i);
			arg = (const char *)(unsigned long)arg32;
		} else {
			n = bpf_probe_read_user(&arg, sizeof(arg), (const char *const *)argv + i);
		}
		if (n) {
			s->rec.flags |= EXECWATCH_F_READ_ERROR;
			break;
		}
		if (!arg)
			break;
		if (off >= budget) {
			s->rec.flags |= EXECWATCH_F_ARGV_TRUNCATED;
			break;
		}
		/* No-ops at run time (off < budget <= ARGV_MAX): bounds for the verifier. */
		off &= EXECWATCH_ARGV_MAX - 1;
		room = (budget - off) & (2 * EXECWATCH_ARGV_MAX - 1);
		if (room > EXECWATCH_ARGV_MAX)
			room = EXECWATCH_ARGV_MAX;
		asm volatile("" : "+r"(room));
		n = bpf_probe_read_user_str(s->data + at + off, room, arg);
		if (n < 0) {
			s->rec.flags |= EXECWATCH_F_READ_ERROR;
			count(EXECWATCH_CTR_ARGV_READ_ERROR);
			break;
		}
		s->rec.argc++;
		if ((__u64)n >= room) {
			/* A full read may have cut the string: keep the bytes, drop the NUL. */
			s->rec.flags |= EXECWATCH_F_ARGV_TRUNCATED;
			off += room - 1;
			break;
		}
		off += n;
	}
	return off > budget ? budget : off;
}

static __always_inline int exit_exec(long ret)
{
	__u64 key = task_key();
	struct exec_state *st, copy;
	struct process *proc;
	struct scratch *s;
	__u32 names, flen, alen;
	__u64 css;

	/* No state: a success already reported by sched_process_exec, an exec begun before the
	 * programs were attached, or one whose insert found the map full (counted then). */
	st = bpf_map_lookup_elem(&exec_state, &key);
	if (!st)
		return 0;
	/* Copied before the delete frees the element for another exec to take. */
	copy = *st;
	bpf_map_delete_elem(&exec_state, &key);
	/* Counted as throttled at the entry, successful or not. */
	if (copy.suppressed)
		return 0;
	/* A success: reported by sched_process_exec, which left the state only if it ran before
	 * the programs were attached. */
	if (ret >= 0)
		return 0;
	s = begin_record(&proc, &names, &css, (struct task_struct *)bpf_get_current_task(), false);
	if (!s)
		return 0;
	s->rec.flags |= copy.flags;
	s->rec.retval = ret;
	flen = put_filename(s, names, copy.filename, true);
	if (flen > EXECWATCH_FILENAME_MAX)
		flen = 0;
	alen = put_user_argv(s, names + flen, copy.argv, copy.compat);
	submit(s, names, flen, alen);
	return 0;
}

SEC("tp/syscalls/sys_exit_execve")
int handle_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx->ret);
}

SEC("tp/syscalls/sys_exit_execveat")
int handle_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx->ret);
}

/*
 * 32-bit callers. The syscall tracepoints skip compat syscalls on x86-64
 * (arch_trace_is_compat_syscall() in kernel/trace/trace_syscalls.c), so the execs of ia32
 * processes, and int 0x80 from 64-bit ones, never reach the programs above: a failed one would be
 * invisible and a successful one would lose its execveat flag. Two ways to see them, of which the
 * addon loads one (native/tracer.cc), and neither on kernels without ia32 emulation (no
 * __ia32_compat_sys_execve in BTF), where all of them are reported as unavailable:
 *  - fentry/fexit on the compat entry points: they run only when an ia32 exec is made, so they
 *    cost nothing to the rest of the node. Kernels that give BPF no trampolines (no ftrace: the CI
 *    machine's 6.18) refuse them;
 *  - the raw syscall tracepoints, which work wherever tp_btf does, at the price of running for
 *    every syscall of every process: the test that sends every other syscall away is two compares
 *    and one load, plus the cost of the tracepoint itself (README, Performance).
 * x32 callers (CONFIG_X86_X32_ABI) are followed by neither.
 */
#define IA32_NR_EXECVE 11    /* arch/x86/entry/syscalls/syscall_32.tbl */
#define IA32_NR_EXECVEAT 358 /* since Linux 3.19 */
#define TS_COMPAT 0x0002     /* thread_info.status: in an ia32 syscall (x86, Linux 2.6.x on) */

/*
 * Since Linux 4.17 (CONFIG_ARCH_HAS_SYSCALL_WRAPPER on x86) the x86-64 entry points of ia32
 * syscalls take the user registers, and the arguments are in them in the ia32 order: ebx, ecx, edx,
 * esi, edi (zero-extended). int 0x80 from a 64-bit process comes through these too. The entry
 * points are out-of-line functions of fs/exec.c, called from the ia32 syscall table (or, since 6.9,
 * the switch in ia32_sys_call()), so a trampoline on them sees every ia32 exec.
 */
SEC("fentry/__ia32_compat_sys_execve")
int BPF_PROG(handle_enter_compat_execve, const struct pt_regs *regs)
{
	return enter((const char *)BPF_CORE_READ(regs, bx), (const void *)BPF_CORE_READ(regs, cx),
		     0, true);
}

SEC("fentry/__ia32_compat_sys_execveat")
int BPF_PROG(handle_enter_compat_execveat, const struct pt_regs *regs)
{
	return enter((const char *)BPF_CORE_READ(regs, cx), (const void *)BPF_CORE_READ(regs, dx),
		     EXECWATCH_F_EXECVEAT, true);
}

/* A successful exec returns through here as well (0): sched_process_exec has taken the state. */
SEC("fexit/__ia32_compat_sys_execve")
int BPF_PROG(handle_exit_compat_execve, const struct pt_regs *regs, long ret)
{
	return exit_exec(ret);
}

SEC("fexit/__ia32_compat_sys_execveat")
int BPF_PROG(handle_exit_compat_execveat, const struct pt_regs *regs, long ret)
{
	return exit_exec(ret);
}

/* The raw-syscall fallback. */

/* The syscall being made is an ia32 execve or execveat; that is what in_ia32_syscall() tests.
 * (In a 64-bit syscall, 11 is munmap.) */
static __always_inline bool compat_exec(long nr)
{
	struct task_struct *task;

	if (nr != IA32_NR_EXECVE && nr != IA32_NR_EXECVEAT)
		return false;
	task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

/* The user registers hold the ia32 arguments: ebx, ecx, edx, esi, edi (as zero-extended 64-bit
 * registers). */
SEC("tp_btf/sys_enter")
int BPF_PROG(handle_enter_compat, struct pt_regs *regs, long nr)
{
	if (!compat_exec(nr))
		return 0;
	if (nr == IA32_NR_EXECVE)
		return enter((const char *)BPF_CORE_READ(regs, bx),
			     (const void *)BPF_CORE_READ(regs, cx), 0, true);
	return enter((const char *)BPF_CORE_READ(regs, cx), (const void *)BPF_CORE_READ(regs, dx),
		     EXECWATCH_F_EXECVEAT, true);
}

/* After a successful exec the syscall number (orig_ax) is that of the new image's execve; the
 * state is gone by then anyway (sched_process_exec took it). regs is a BTF pointer here: read
 * directly, without a helper call, on this path of every syscall. */
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_exit_compat, struct pt_regs *regs, long ret)
{
	if (!compat_exec(regs->orig_ax))
		return 0;
	return exit_exec(ret);
}

/* ---- Exits (issue 17): the last thread of a process reported by track_process() ---- */

static __always_inline void report_exit(struct task_struct *p)
{
	struct execwatch_exit_record *rec;
	struct exit_scratch *x;
	struct process *proc, copy;
	struct kernfs_node *kn;
	struct css_set *cs;
	__u32 tgid, zero = 0;
	__u64 len, id;
	int status;

	/* do_exit() takes each thread out of signal->live before this tracepoint: a thread that
	 * finds it 0 is the last (threads leaving together can all find 0: the delete below picks
	 * one). */
	if (p->signal->live.counter != 0)
		return;
	tgid = p->tgid;
	proc = bpf_map_lookup_elem(&processes, &tgid);
	if (!proc)
		return;
	copy = *proc;
	if (bpf_map_delete_elem(&processes, &tgid))
		return;
	/* An entry left by an earlier process of this pid (whose exit was missed) is dropped. */
	if (copy.start_ns != p->group_leader->start_boottime)
		return;
	if (copy.counted) {
		struct process *pp = process_of(copy.parent_tgid, copy.parent_start_ns);

		/* An add of -1: clang's BPF target before -mcpu=v3 has no atomic sub. */
		if (pp)
			__sync_fetch_and_add(&pp->children, (__u32)-1);
	}
	/* Forked and never exec'd, or its exec record was lost: nobody saw what ends. */
	if (copy.exec_ns == 0)
		return;
	/* What wait(2) gives the parent (wait_task_zombie() in kernel/exit.c): the group's code
	 * after exit_group(2), a fatal signal or a core dump (which adds 0x80), else the leader's
	 * own. */
	if (p->signal->flags & SIGNAL_GROUP_EXIT)
		status = p->signal->group_exit_code;
	else
		status = p->group_leader->exit_code;

	x = bpf_map_lookup_elem(&exit_scratch, &zero);
	if (!x)
		return;
	rec = &x->rec;
	/* The area is reused: every byte of the fixed part is rewritten. */
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->kind = EXECWATCH_RECORD_EXIT;
	rec->pid = tgid;
	rec->tid = p->pid;
	rec->status = status;
	rec->orphans = copy.children;
	rec->start_ns = copy.start_ns;
	rec->exec_ns = copy.exec_ns;
	/* sched_process_exit runs in the exiting task. */
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	len = sizeof(*rec);
	cs = p->cgroups;
	kn = cs->dfl_cgrp->kn;
	id = kn ? kn->id : bpf_get_current_cgroup_id();
	/* In the cgroups its exec record named: user space takes those names. A css_set is not
	 * freed while a task uses it, but one the process left may be, and a new one take its
	 * address: the v2 id tells them apart wherever processes sit in v2 cgroups. */
	if (copy.css == (__u64)cs && copy.cgroup_id == id) {
		rec->flags |= EXECWATCH_F_CGROUP_AS_EXEC;
		rec->cgroup_id = id;
	} else {
		len += fill_cgroup_names(&rec->cgroup_id, &rec->flags, &rec->cgroup_leaf_len,
					 &rec->cgroup_parent_len, x->names, cs, true);
	}
	len = (len + 7) & ~7ULL;
	/* Never true (the names take at most 382 bytes): a bound for the verifier. */
	if (len > sizeof(*x))
		return;
	rec->record_len = len;
	rec->boot_ns = bpf_ktime_get_boot_ns();
	emit(rec, len, rec->boot_ns, rec->cgroup_id);
}

/*
 * A task that dies inside exec without reaching the syscall exit (an oops in exec; a task whose
 * exec began while the exit programs were being attached) would leave its entry behind, and a
 * later task_struct at the same address would find it. Every other way out of exec, a fatal
 * signal included, returns through the syscall exit first. A lookup first: it takes no lock, and
 * almost every exiting task has no entry.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_task_exit, struct task_struct *p)
{
	__u64 key = (__u64)p;

	if (bpf_map_lookup_elem(&exec_state, &key))
		bpf_map_delete_elem(&exec_state, &key);
	report_exit(p);
	return 0;
}
