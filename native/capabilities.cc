// SPDX-License-Identifier: Apache-2.0
/*
 * Capabilities belong to threads, not processes: capset(2) changes the calling thread only, and
 * Node runs threads the agent does not own: the libuv pool (where every fs call of JS runs), the
 * V8 platform workers, and the inspector's SIGUSR1 watchdog. Dropping on the main thread alone
 * would leave fs.readFile running with CAP_DAC_OVERRIDE. So every thread must drop its own, and
 * the only way to make a foreign thread run a system call is a signal (what glibc does for
 * setuid(2), and libcap's psx for capset; neither can be used here: glibc's broadcast runs only
 * set*id calls, and psx knows only threads created after it was linked in).
 *
 * Which signal: Node 20's inspector watchdog blocks every signal it may. glibc strips its two
 * internal signals, SIGCANCEL and SIGSETXID, from every mask a thread sets, so that cancellation
 * and the setxid broadcast always get through. SIGCANCEL has no handler unless the process calls
 * pthread_cancel, which neither Node, libuv nor V8 do. For the few milliseconds of the broadcast
 * its slot holds our handler, installed with the raw system call (glibc's sigaction refuses its
 * internal signals); then the previous action is put back.
 */
#include "capabilities.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "clock.h"
#include "errors.h"

#ifndef __GLIBC__
#error "the capability broadcast borrows glibc's SIGCANCEL: port it before building on another libc"
#endif

namespace execwatch
{

namespace
{

/* glibc's internal signals (nptl/pthreadP.h): cancellation, and the set*id broadcast. */
constexpr int kSigCancel = __SIGRTMIN;
constexpr int kSigSetxid = __SIGRTMIN + 1;
/* The kernel's flag for a user-supplied signal return trampoline; the same on every arch. */
constexpr unsigned long kSaRestorer = 0x04000000;
/* How long a thread may take to answer before the drop is reported as failed. */
constexpr int64_t kAnswerTimeoutNs = 2000000000;

/* struct sigaction as rt_sigaction(2) takes it (not glibc's layout). */
struct KernelSigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

struct CapSets {
	uint64_t effective;
	uint64_t permitted;
	uint64_t inheritable;
};

struct Plan {
	uint64_t keep;
	int last_cap;
};

/* The broadcast in progress. Static: a late signal after a timeout must find valid memory. */
struct Broadcast {
	Plan plan;
	std::atomic<bool> active{false};
	std::atomic<pid_t> target{0};
	std::atomic<pid_t> answered{0};
	std::atomic<int> error{0};
} broadcast;

pid_t Gettid()
{
	return static_cast<pid_t>(syscall(SYS_gettid));
}

int RawSigaction(int sig, const KernelSigaction *act, KernelSigaction *old)
{
	return syscall(SYS_rt_sigaction, sig, act, old, sizeof(uint64_t)) == 0 ? 0 : errno;
}

int GetCaps(CapSets *sets)
{
	__user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
	__user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	if (syscall(SYS_capget, &header, data) != 0)
		return errno;
	sets->effective = data[0].effective | static_cast<uint64_t>(data[1].effective) << 32;
	sets->permitted = data[0].permitted | static_cast<uint64_t>(data[1].permitted) << 32;
	sets->inheritable = data[0].inheritable | static_cast<uint64_t>(data[1].inheritable) << 32;
	return 0;
}

int SetCaps(const CapSets &sets)
{
	__user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
	__user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		data[i].effective = static_cast<__u32>(sets.effective >> (32 * i));
		data[i].permitted = static_cast<__u32>(sets.permitted >> (32 * i));
		data[i].inheritable = static_cast<__u32>(sets.inheritable >> (32 * i));
	}
	return syscall(SYS_capset, &header, data) == 0 ? 0 : errno;
}

/*
 * What each thread does to itself. System calls only, so it is safe in a signal handler. The
 * bounding set goes first: emptying it needs CAP_SETPCAP, which the capset below takes away.
 */
int DropOwnCapabilities(const Plan &plan, bool *bounding_cleared)
{
	CapSets sets;
	int err = GetCaps(&sets);
	if (err)
		return err;
	// Without CAP_SETPCAP (a pod granted only what tracing needs) the bounding set stays as the
	// runtime left it; it only bounds what a later execve could gain, and the agent never
	// execs.
	bool setpcap = sets.effective & (1ULL << CAP_SETPCAP);
	for (int cap = 0; setpcap && cap <= plan.last_cap; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return errno;
	// EINVAL: a kernel before 4.3, without an ambient set to clear.
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return errno;
	// No exec of this thread or of a child it starts can gain privileges again (a set-user-ID
	// root binary, file capabilities): the uid switch that follows could otherwise be undone.
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno;
	sets.permitted &= plan.keep;
	sets.effective = sets.permitted;
	sets.inheritable = 0;
	err = SetCaps(sets);
	if (!err && bounding_cleared)
		*bounding_cleared = setpcap;
	return err;
}

void OnBroadcastSignal(int, siginfo_t *info, void *)
{
	int saved_errno = errno;
	pid_t self = Gettid();
	// Only our own tgkill aimed at this very thread: a stray signal changes nothing.
	if (broadcast.active.load() && info->si_code == SI_TKILL && info->si_pid == getpid() &&
	    broadcast.target.load() == self) {
		broadcast.error.store(DropOwnCapabilities(broadcast.plan, nullptr));
		broadcast.answered.store(self);
	}
	errno = saved_errno;
}

/* Holds SIGCANCEL's slot for the broadcast; the destructor gives it back. */
class SignalSlot
{
      public:
	int Install()
	{
		KernelSigaction setxid;
		int err = RawSigaction(kSigSetxid, nullptr, &setxid);
		if (!err)
			err = RawSigaction(kSigCancel, nullptr, &saved_);
		if (err)
			return err;
		// The handler returns through the trampoline glibc gave its own handlers (x86-64
		// needs one; arm64 has none and the kernel uses the vDSO's).
		if (setxid.handler == reinterpret_cast<void *>(SIG_DFL) ||
		    setxid.handler == reinterpret_cast<void *>(SIG_IGN))
			return ENOTSUP;
		KernelSigaction ours = {};
		ours.handler = reinterpret_cast<void *>(OnBroadcastSignal);
		ours.flags = SA_SIGINFO | SA_RESTART | (setxid.flags & kSaRestorer);
		ours.restorer = setxid.restorer;
		ours.mask = ~0ULL;
		err = RawSigaction(kSigCancel, &ours, nullptr);
		installed_ = !err;
		return err;
	}
	~SignalSlot()
	{
		if (!installed_)
			return;
		broadcast.active.store(false);
		// Ignoring first discards a signal still pending on a thread that never answered:
		// SIGCANCEL's default action would end the process.
		KernelSigaction ignore = {};
		ignore.handler = reinterpret_cast<void *>(SIG_IGN);
		RawSigaction(kSigCancel, &ignore, nullptr);
		RawSigaction(kSigCancel, &saved_, nullptr);
	}

      private:
	KernelSigaction saved_ = {};
	bool installed_ = false;
};

int LastCap()
{
	// The running kernel may know more capabilities than the headers we were built with.
	int last = CAP_LAST_CAP;
	if (FILE *file = fopen("/proc/sys/kernel/cap_last_cap", "re")) {
		if (fscanf(file, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(file);
	}
	return last;
}

int ListThreads(std::vector<pid_t> *tids)
{
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return errno;
	while (dirent *entry = readdir(dir)) {
		long tid = strtol(entry->d_name, nullptr, 10);
		if (tid > 0)
			tids->push_back(static_cast<pid_t>(tid));
	}
	closedir(dir);
	return 0;
}

std::string ThreadName(pid_t tid)
{
	std::string name = "exited";
	std::string path = "/proc/self/task/" + std::to_string(tid) + "/comm";
	if (FILE *file = fopen(path.c_str(), "re")) {
		char buf[64] = {};
		if (fgets(buf, sizeof(buf), file)) {
			name = buf;
			if (!name.empty() && name.back() == '\n')
				name.pop_back();
		}
		fclose(file);
	}
	return name;
}

/* Makes one thread drop its capabilities and waits for its answer: 0 or an errno. */
int DropOnThread(pid_t tid)
{
	broadcast.answered.store(0);
	broadcast.error.store(0);
	broadcast.target.store(tid);
	pid_t pid = getpid();
	// ESRCH: the thread ended since it was listed, and its capabilities with it.
	if (syscall(SYS_tgkill, pid, tid, kSigCancel) != 0)
		return errno == ESRCH ? 0 : errno;
	int64_t deadline = ReadClockNs(CLOCK_MONOTONIC) + kAnswerTimeoutNs;
	const timespec pause = {0, 50000};
	while (broadcast.answered.load() != tid) {
		if (syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH)
			return 0;
		if (ReadClockNs(CLOCK_MONOTONIC) > deadline)
			return ETIMEDOUT;
		nanosleep(&pause, nullptr);
	}
	return broadcast.error.load();
}

} // namespace

Napi::Value DropCapabilities(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!info[0].IsBigInt())
		throw CodedError(Napi::TypeError::New(env, "keep must be a bigint capability mask"),
				 "ERR_INVALID_ARG_TYPE");
	bool lossless = false;
	Plan plan = {info[0].As<Napi::BigInt>().Uint64Value(&lossless), LastCap()};
	if (!lossless)
		throw CodedError(Napi::RangeError::New(env, "keep must fit in 64 bits"),
				 "ERR_OUT_OF_RANGE");

	pid_t self = Gettid();
	bool bounding_cleared = false;
	int err = DropOwnCapabilities(plan, &bounding_cleared);
	if (err)
		throw ErrnoError(env, "drop capabilities of thread " + std::to_string(self), err);

	// Every thread in `seen` has dropped (or ended): a failure throws before the next.
	std::set<pid_t> seen = {self};
	{
		SignalSlot slot;
		err = slot.Install();
		if (err)
			throw ErrnoError(env, "install the capability broadcast handler", err);
		broadcast.plan = plan;
		broadcast.active.store(true);
		// A thread not reached yet may start another, which inherits its capabilities: list
		// again until a pass finds no thread that was not there before.
		for (bool fresh = true; fresh;) {
			fresh = false;
			std::vector<pid_t> tids;
			err = ListThreads(&tids);
			if (err)
				throw ErrnoError(env, "list threads in /proc/self/task", err);
			for (pid_t tid : tids) {
				if (!seen.insert(tid).second)
					continue;
				fresh = true;
				err = DropOnThread(tid);
				if (err)
					throw ErrnoError(env,
							 "drop capabilities of thread " +
								 std::to_string(tid) + " (" +
								 ThreadName(tid) + ")",
							 err);
			}
		}
	}
	Napi::Object result = Napi::Object::New(env);
	result.Set("threads", Napi::Number::New(env, static_cast<double>(seen.size())));
	result.Set("boundingSetCleared", Napi::Boolean::New(env, bounding_cleared));
	return result;
}

} // namespace execwatch
