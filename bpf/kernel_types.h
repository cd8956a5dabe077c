/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types execwatch.bpf.c reads, kept by hand instead of a generated vmlinux.h so the
 * build needs neither bpftool nor the build machine's BTF. Every struct is marked
 * preserve_access_index: libbpf relocates each field access against the running kernel's BTF
 * (CO-RE), so only the field names and types matter here, never the offsets or the order.
 */
#ifndef EXECWATCH_KERNEL_TYPES_H
#define EXECWATCH_KERNEL_TYPES_H

typedef int pid_t;
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct kernfs_node {
	/* u64 since Linux 5.5 (the inode number, and the generation in the high bits on 32-bit
	 * ino_t); a cgroup's id is its directory's. */
	__u64 id;
	const char *name;
	/* Renamed to __parent in Linux 6.15, when the parent became RCU-protected; see below. */
	struct kernfs_node *parent;
};

/* Layout since Linux 6.15. */
struct kernfs_node___rcu {
	struct kernfs_node *__parent;
};

struct cgroup {
	struct kernfs_node *kn;
	/* Depth below the root (0): the scope check walks the ancestors from here (issue 19). */
	int level;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	/* CGROUP_SUBSYS_COUNT depends on the kernel config; indexed through bpf_core_enum_value. */
	struct cgroup_subsys_state *subsys[1];
	struct cgroup *dfl_cgrp;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

/* x86 only (the programs that read these load only there): the user registers of a syscall, and
 * the thread flags that tell an ia32 syscall. */
struct pt_regs {
	unsigned long bx;
	unsigned long cx;
	unsigned long dx;
	unsigned long orig_ax;
};

struct thread_info {
	__u32 status;
};

/* Exits and credentials (issue 17). */
typedef struct {
	int counter;
} atomic_t;

typedef struct {
	unsigned int val;
} kuid_t;

typedef struct {
	unsigned int val;
} kgid_t;

struct cred {
	kuid_t euid;
	kgid_t egid;
};

struct signal_struct {
	/* Threads not yet past the group_dead test of do_exit(). */
	atomic_t live;
	unsigned int flags;
	int group_exit_code;
};

/* Pid namespaces (issue 18): a task's struct pid holds its number in each namespace from the
 * root (level 0) down to its own (numbers[level]). numbers[] is a flexible array. */
struct ns_common {
	unsigned int inum;
};

struct pid_namespace {
	struct ns_common ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct task_struct {
	struct thread_info thread_info;
	/* PF_* (include/linux/sched.h): PF_KTHREAD marks a kernel thread. */
	unsigned int flags;
	int pid;
	int tgid;
	char comm[16];
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct css_set *cgroups;
	struct mm_struct *mm;
	/* Named so since Linux 5.5 (real_start_time before). */
	__u64 start_boottime;
	int exit_code;
	struct signal_struct *signal;
	const struct cred *cred;
	/* CONFIG_AUDIT (loginuid) and CONFIG_AUDITSYSCALL (sessionid): read behind existence
	 * checks. */
	kuid_t loginuid;
	unsigned int sessionid;
	/* Since Linux 4.19 (pids[PIDTYPE_PID].pid before): read behind an existence check. */
	struct pid *thread_pid;
	/* 64 bits since Linux 5.7. self_exec_id is bumped by each exec; a fork gives the child
	 * the parent's as parent_exec_id (and a copy as its own): equal while it has not exec'd. */
	__u64 parent_exec_id;
	__u64 self_exec_id;
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	/* In an anonymous union with the const i_nlink; libbpf finds it through the union. */
	unsigned int __i_nlink;
	struct super_block *i_sb;
};

struct dentry;

/* fs/overlayfs/ovl_entry.h: an overlay inode, and the dentry of its copy on the upper layer. In
 * the kernel's BTF, or in the overlay module's where overlayfs is one. */
struct ovl_inode {
	struct inode vfs_inode;
	struct dentry *__upperdentry;
};

struct file {
	struct inode *f_inode;
};

struct linux_binprm {
	struct file *file;
	int argc;
	const char *filename;
};

#pragma clang attribute pop

enum cgroup_subsys_id {
	memory_cgrp_id,
	pids_cgrp_id,
};

/* Context of the syscalls tracepoints: the format files' stable layout, not BTF-relocated. */
struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
};

struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
};

#endif /* EXECWATCH_KERNEL_TYPES_H */
