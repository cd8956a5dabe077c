// SPDX-License-Identifier: Apache-2.0
#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "errors.h"
#include "execwatch.h"
#include "rodata.h"

namespace execwatch
{

namespace
{

/* The largest ring the agent has a use for; a bigger one is a typo, not a wish. */
constexpr double kRingbufMaxBytes = 1 << 30;
/* Smaller rings overflow on the first burst of execs with full argv. */
constexpr double kRingbufMinBytes = 1 << 16;
/*
 * Wake-up policy defaults. At the machine's maximum exec rate (a few thousand per second) a
 * wake-up per record costs user space far more than the records themselves: the kernel wakes us
 * once 32 KiB (about 120 records of short execs and exits in pods) wait, and while records come a
 * timer collects whatever is below that every 25 ms. A record after a quiet spell (11.5 ms: see
 * Open()) wakes us at once, and the timer slows to once a second after a drain that finds
 * nothing. A quarter of the ring at most, so a burst still wakes us long before the ring is full.
 */
constexpr double kWakeupBytesDefault = 32 * 1024;
constexpr double kFlushIntervalMsDefault = 25;
constexpr double kFlushIntervalMsMax = 1000;
/* --cgroup-rate and its burst: bounds that keep the BPF program's arithmetic in range. */
constexpr double kCgroupRateMax = 1000000;
constexpr double kCgroupBurstMax = 10000000;

/*
 * exec_state holds one entry per exec in flight. What bounds those is tasks, not CPUs: an exec
 * waiting for a disk, a page fault or a debugger stays in flight without a CPU. The kernel's
 * default bound on tasks is pid_max = max(32768, 1024 per possible CPU) (PIDS_PER_CPU_DEFAULT in
 * kernel/pid.c, unchanged through Linux 6.18): as many entries as that, so every pid of a default
 * pid space could be inside exec at once. Preallocated at 96 bytes an entry (bpftool's memlock):
 * 3 MiB up to 32 CPUs, 96 KiB more per CPU beyond. A full map refuses the insert, and the kernel
 * counts it (state_map_full).
 */
constexpr uint32_t kExecStateMinEntries = 32768;
constexpr uint32_t kExecStateEntriesPerCpu = 1024;

const struct {
	const char *name;
	__u32 key;
} kCounters[] = {
	{"ringbuf_full", EXECWATCH_CTR_RINGBUF_FULL},
	{"state_map_full", EXECWATCH_CTR_STATE_MAP_FULL},
	{"argv_read_error", EXECWATCH_CTR_ARGV_READ_ERROR},
	{"events", EXECWATCH_CTR_EVENTS},
	{"excluded_host", EXECWATCH_CTR_EXCLUDED_HOST},
	{"excluded_namespace", EXECWATCH_CTR_EXCLUDED_NAMESPACE},
	{"excluded_pod", EXECWATCH_CTR_EXCLUDED_POD},
	{"throttled", EXECWATCH_CTR_THROTTLED},
	{"process_map_full", EXECWATCH_CTR_PROCESS_MAP_FULL},
};

double ReadInteger(Napi::Object options, const char *name, double fallback = NAN)
{
	Napi::Value value = options.Get(name);
	if (value.IsUndefined() && !std::isnan(fallback))
		return fallback;
	double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
	// NaN fails this test too; infinities pass and are left to the range checks.
	if (std::trunc(number) != number)
		throw CodedError(Napi::TypeError::New(options.Env(), std::string("options.") +
									     name +
									     " must be an integer"),
				 "ERR_INVALID_ARG_TYPE");
	return number;
}

Napi::Error OutOfRange(Napi::Env env, const std::string &what, double got)
{
	return CodedError(Napi::RangeError::New(
				  env, "options." + what + ", got " +
					       Napi::Number::New(env, got).ToString().Utf8Value()),
			  "ERR_OUT_OF_RANGE");
}

bpf_map *RequireMap(Napi::Env env, bpf_object *obj, const char *name, const std::string &path)
{
	bpf_map *map = bpf_object__find_map_by_name(obj, name);
	if (!map)
		throw ErrnoError(env, std::string("find map '") + name + "' in " + path, ENOENT);
	return map;
}

} // namespace

Napi::Function Tracer::Define(Napi::Env env)
{
	return DefineClass(
		env, "Tracer",
		{
			InstanceMethod<&Tracer::Attach>("attach"),
			InstanceMethod<&Tracer::Start>("start"),
			InstanceMethod<&Tracer::Stats>("stats"),
			InstanceMethod<&Tracer::RingbufWaitingBytes>("ringbufWaitingBytes"),
			InstanceMethod<&Tracer::WriteScope>("writeScope"),
			InstanceMethod<&Tracer::CgroupStats>("cgroupStats"),
			InstanceMethod<&Tracer::ProgramIds>("programIds"),
			InstanceMethod<&Tracer::Close>("close"),
		});
}

Tracer::Options Tracer::ParseOptions(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!info[0].IsObject())
		throw CodedError(Napi::TypeError::New(env, "options must be an object"),
				 "ERR_INVALID_ARG_TYPE");
	Napi::Object options = info[0].As<Napi::Object>();
	Napi::Value path = options.Get("objectPath");
	if (!path.IsString() || path.As<Napi::String>().Utf8Value().empty())
		throw CodedError(
			Napi::TypeError::New(env, "options.objectPath must be a non-empty string"),
			"ERR_INVALID_ARG_TYPE");

	double argv = ReadInteger(options, "argvMaxBytes");
	if (argv < 1 || argv > EXECWATCH_ARGV_MAX)
		throw OutOfRange(env,
				 "argvMaxBytes must be between 1 and " +
					 std::to_string(EXECWATCH_ARGV_MAX),
				 argv);

	double ring = ReadInteger(options, "ringbufBytes");
	double page = static_cast<double>(sysconf(_SC_PAGESIZE));
	double min = std::max(page, kRingbufMinBytes);
	// A power of two at least one page long is a whole number of pages, as the kernel wants.
	if (ring < min || ring > kRingbufMaxBytes ||
	    (static_cast<uint64_t>(ring) & (static_cast<uint64_t>(ring) - 1)))
		throw OutOfRange(env,
				 "ringbufBytes must be a power of two between " +
					 std::to_string(static_cast<uint64_t>(min)) + " and " +
					 std::to_string(static_cast<uint64_t>(kRingbufMaxBytes)) +
					 " (a multiple of the page size)",
				 ring);

	double wakeup =
		ReadInteger(options, "wakeupBytes", std::min(kWakeupBytesDefault, ring / 4));
	if (wakeup < 0 || wakeup > ring / 2)
		throw OutOfRange(env,
				 "wakeupBytes must be between 0 and half of ringbufBytes (" +
					 std::to_string(static_cast<uint64_t>(ring / 2)) + ")",
				 wakeup);
	double interval = ReadInteger(options, "flushIntervalMs", kFlushIntervalMsDefault);
	if (interval < 1 || interval > kFlushIntervalMsMax)
		throw OutOfRange(env, "flushIntervalMs must be between 1 and 1000", interval);
	double rate = ReadInteger(options, "cgroupRate", 0);
	if (rate < 0 || rate > kCgroupRateMax)
		throw OutOfRange(env, "cgroupRate must be between 0 and 1000000", rate);
	double burst = ReadInteger(options, "cgroupBurst", 1);
	if (burst < 1 || burst > kCgroupBurstMax)
		throw OutOfRange(env, "cgroupBurst must be between 1 and 10000000", burst);
	return {path.As<Napi::String>().Utf8Value(), static_cast<uint32_t>(argv),
		static_cast<uint32_t>(ring),	     static_cast<uint32_t>(wakeup),
		static_cast<uint32_t>(interval),     static_cast<uint32_t>(rate),
		static_cast<uint32_t>(burst)};
}

Tracer::Tracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Tracer>(info), env_(info.Env())
{
	Options options = ParseOptions(info);
	try {
		Open(info.Env(), options);
	} catch (...) {
		// The destructor does not run for a constructor that throws.
		Teardown();
		throw;
	}
	napi_status status = napi_add_async_cleanup_hook(env_, OnEnvCleanup, this, &cleanup_hook_);
	if (status != napi_ok) {
		Teardown();
		throw Napi::Error::New(info.Env(), "register environment cleanup hook failed");
	}
}

Tracer::~Tracer()
{
	Teardown();
}

void Tracer::Open(Napi::Env env, const Options &options)
{
	const std::string &path = options.object_path;
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		throw ErrnoError(env, "count possible CPUs", ncpus);

	ResetLibbpfLog();
	obj_ = bpf_object__open_file(path.c_str(), nullptr);
	if (!obj_) {
		int err = errno;
		throw ErrnoError(env, "open BPF object " + path, err,
				 err == ENOENT ? "" : LibbpfLogTail());
	}

	events_ = RequireMap(env, obj_, "events", path);
	counters_ = RequireMap(env, obj_, "counters", path);
	bpf_map *scope = RequireMap(env, obj_, "scope", path);
	// Indexed by CPU id in the kernel, so it needs one slot per possible CPU.
	bpf_map *scratch = RequireMap(env, obj_, "scratch", path);
	bpf_map *exec_state = RequireMap(env, obj_, "exec_state", path);
	// Live processes forked or exec'd since attach: bounded by tasks too, sized the same way.
	bpf_map *processes = RequireMap(env, obj_, "processes", path);
	// One table per possible CPU, indexed by CPU id like scratch.
	bpf_map *cgroup_stats = RequireMap(env, obj_, "cgroup_stats", path);
	int err = bpf_map__set_max_entries(events_, options.ringbuf_bytes);
	if (!err)
		err = bpf_map__set_max_entries(scratch, static_cast<__u32>(ncpus));
	if (!err)
		err = bpf_map__set_max_entries(cgroup_stats, static_cast<__u32>(ncpus));
	if (!err)
		err = bpf_map__set_max_entries(
			exec_state,
			std::max(kExecStateMinEntries,
				 kExecStateEntriesPerCpu * static_cast<uint32_t>(ncpus)));
	if (!err)
		err = bpf_map__set_max_entries(
			processes,
			std::max(kExecStateMinEntries,
				 kExecStateEntriesPerCpu * static_cast<uint32_t>(ncpus)));
	if (err)
		throw ErrnoError(env, "size maps of " + path, err);
	ChooseCompatPrograms(env);

	std::string why;
	err = SetRodataU32(obj_, "argv_max_bytes", options.argv_max_bytes, &why);
	if (err)
		throw ErrnoError(env, "set argv_max_bytes in " + path, err, why);
	err = SetRodataU32(obj_, "wakeup_bytes", options.wakeup_bytes, &why);
	if (err)
		throw ErrnoError(env, "set wakeup_bytes in " + path, err, why);
	// See quiet_us in bpf/execwatch.bpf.c: half of how far apart two drains are at least, the
	// flush interval less 2 ms (libuv's clock counts whole milliseconds and may be the coarse
	// clock, so its timer can fire up to 2 ms early). Intervals of 2 ms or less leave no quiet
	// spell: every record wakes us.
	uint32_t spaced_ms = options.flush_interval_ms > 2 ? options.flush_interval_ms - 2 : 0;
	err = SetRodataU32(obj_, "quiet_us", spaced_ms * 500, &why);
	if (err)
		throw ErrnoError(env, "set quiet_us in " + path, err, why);
	err = SetRodataU32(obj_, "cgroup_rate", options.cgroup_rate, &why);
	if (!err)
		err = SetRodataU32(obj_, "cgroup_burst", options.cgroup_burst, &why);
	if (err)
		throw ErrnoError(env, "set cgroup_rate in " + path, err, why);
	// Without a threshold the kernel wakes us for every record: no timer needed.
	flush_interval_ms_ = options.wakeup_bytes ? options.flush_interval_ms : 0;

	// Read from a mapping, never through bpf(2): after start-up the agent holds no capability.
	if (!(bpf_map__map_flags(counters_) & BPF_F_MMAPABLE) ||
	    bpf_map__type(counters_) != BPF_MAP_TYPE_ARRAY)
		throw ErrnoError(env,
				 "map 'counters' in " + path + " must be a BPF_F_MMAPABLE array",
				 EINVAL);

	ResetLibbpfLog();
	err = bpf_object__load(obj_);
	if (err)
		throw ErrnoError(env, "load BPF object " + path, err, LibbpfLogTail());

	size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
	size_t bytes = bpf_map__value_size(counters_) * bpf_map__max_entries(counters_);
	bytes = (bytes + page - 1) / page * page;
	void *mapping = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, bpf_map__fd(counters_), 0);
	if (mapping == MAP_FAILED)
		throw ErrnoError(env, "map the counters of " + path, errno);
	counter_values_ = static_cast<const __u64 *>(mapping);
	counter_bytes_ = bytes;

	if (!(bpf_map__map_flags(scope) & BPF_F_MMAPABLE) ||
	    bpf_map__value_size(scope) != sizeof(struct execwatch_scope_table))
		throw ErrnoError(
			env,
			"map 'scope' in " + path +
				" must be a BPF_F_MMAPABLE array of one execwatch_scope_table",
			EINVAL);
	bytes = (sizeof(struct execwatch_scope_table) + page - 1) / page * page;
	mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(scope), 0);
	if (mapping == MAP_FAILED)
		throw ErrnoError(env, "map the scope table of " + path, errno);
	scope_table_ = mapping;
	scope_bytes_ = bytes;

	if (!(bpf_map__map_flags(cgroup_stats) & BPF_F_MMAPABLE) ||
	    bpf_map__value_size(cgroup_stats) != sizeof(struct execwatch_cgroup_stats))
		throw ErrnoError(
			env,
			"map 'cgroup_stats' in " + path +
				" must be a BPF_F_MMAPABLE array of execwatch_cgroup_stats",
			EINVAL);
	cgroup_stats_length_ = sizeof(struct execwatch_cgroup_stats) * static_cast<size_t>(ncpus);
	bytes = (cgroup_stats_length_ + page - 1) / page * page;
	mapping = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, bpf_map__fd(cgroup_stats), 0);
	if (mapping == MAP_FAILED)
		throw ErrnoError(env, "map the cgroup stats of " + path, errno);
	cgroup_stats_ = mapping;
	cgroup_stats_bytes_ = bytes;
	MapRingPositions(env);
}

void Tracer::MapRingPositions(Napi::Env env)
{
	// The consumer position is on the map's first page, the producer's on the second
	// (kernel/bpf/ringbuf.c); the kernel lets any page be mapped read-only.
	size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
	void *positions = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, bpf_map__fd(events_), 0);
	if (positions == MAP_FAILED)
		throw ErrnoError(env, "map ring buffer positions", errno);
	ring_positions_ = positions;
	ring_positions_bytes_ = 2 * page;
}

Napi::Value Tracer::RingbufWaitingBytes(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "ringbufWaitingBytes");
	const auto *base = static_cast<const uint8_t *>(ring_positions_);
	// Both positions only grow; the kernel stores them with release semantics.
	uint64_t consumer =
		__atomic_load_n(reinterpret_cast<const uint64_t *>(base), __ATOMIC_ACQUIRE);
	uint64_t producer = __atomic_load_n(
		reinterpret_cast<const uint64_t *>(base + ring_positions_bytes_ / 2),
		__ATOMIC_ACQUIRE);
	return Napi::Number::New(env, static_cast<double>(producer - consumer));
}

/*
 * writeScope(slots, entries): `slots` is one copy of the table's slots (EXECWATCH_SCOPE_SLOTS
 * struct execwatch_scope_slot, built by src/scope/table.ts). It goes into the copy the programs
 * are not reading, and then `active` flips to it: a program reads either the old table or the
 * new one, whole. (A program that read `active` before a flip and still runs at the next write is
 * the one case left: it lasts microseconds, and writes follow pod changes.)
 */
Napi::Value Tracer::WriteScope(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "writeScope");
	constexpr size_t kSlotsBytes = sizeof(struct execwatch_scope_slot) * EXECWATCH_SCOPE_SLOTS;
	if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() != kSlotsBytes)
		throw CodedError(Napi::TypeError::New(env, "slots must be a Buffer of " +
								   std::to_string(kSlotsBytes) +
								   " bytes"),
				 "ERR_INVALID_ARG_TYPE");
	double entries = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
	if (entries < 0 || entries > EXECWATCH_SCOPE_SLOTS || std::trunc(entries) != entries)
		throw OutOfRange(env,
				 "entries must be an integer from 0 to " +
					 std::to_string(EXECWATCH_SCOPE_SLOTS),
				 entries);
	auto *table = static_cast<struct execwatch_scope_table *>(scope_table_);
	__u32 next = __atomic_load_n(&table->active, __ATOMIC_RELAXED) ^ 1;
	std::memcpy(table->slots[next], info[0].As<Napi::Buffer<uint8_t>>().Data(), kSlotsBytes);
	__atomic_store_n(&table->entries[next], static_cast<__u32>(entries), __ATOMIC_RELAXED);
	__atomic_store_n(&table->active, next, __ATOMIC_RELEASE);
	return env.Undefined();
}

/*
 * cgroupStats(): a copy of every CPU's struct execwatch_cgroup_stats, one after the other (src/
 * capture/cgroup-stats.ts reads them). The kernel writes them while we copy: a slot may be read
 * half-updated, which the reader's deltas absorb (counts only grow while a slot keeps its id).
 */
Napi::Value Tracer::CgroupStats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "cgroupStats");
	return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t *>(cgroup_stats_),
					   cgroup_stats_length_);
}

namespace
{

/*
 * The ia32 exec programs (bpf/execwatch.bpf.c) come in two sets, of which one is loaded: fentry
 * on the compat entry points, which costs only when a 32-bit process execs, or the raw syscall
 * tracepoints, which run on every syscall of the node. Both exist only for kernels with ia32
 * emulation (x86-64, CONFIG_IA32_EMULATION) that have not turned it off at run time; elsewhere
 * neither is loaded. The set not loaded is listed by stats() as unavailable, so /metrics
 * (execwatch_bpf_attached) and --check say which path is in use.
 */
const char *const kCompatFentryPrograms[] = {
	"handle_enter_compat_execve",
	"handle_enter_compat_execveat",
	"handle_exit_compat_execve",
	"handle_exit_compat_execveat",
};
const char *const kCompatRawPrograms[] = {"handle_enter_compat", "handle_exit_compat"};

/*
 * Whether the kernel gives BPF a trampoline on the function: load a program that does nothing as
 * fentry on it, and attach it for real. bpf_object__load() is all or nothing, and a kernel may
 * verify an fentry program yet refuse the trampoline only at attach (no ftrace direct calls:
 * EPERM or ENOTSUPP), so asking first is what lets the choice be made before the object loads.
 * Cost: one attach and detach at start-up.
 */
bool TrampolineWorks(int btf_id)
{
	const struct bpf_insn insns[] = {
		{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0}, /* r0 = 0 */
		{BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
		    .attach_btf_id = static_cast<__u32>(btf_id));
	int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "execwatch_probe", "GPL", insns,
				 sizeof(insns) / sizeof(insns[0]), &opts);
	if (prog < 0)
		return false;
	int link = bpf_raw_tracepoint_open(nullptr, prog);
	if (link >= 0)
		close(link);
	close(prog);
	return link >= 0;
}

/* How the probe's child ends when its 32-bit syscall faults: through its own SIGSEGV handler. */
constexpr int kIa32Faulted = 86;

void OnIa32Fault(int)
{
	_exit(kIa32Faulted);
}

/*
 * Whether a kernel built with ia32 emulation has turned it off at run time (the ia32_emulation=0
 * boot parameter since 6.7, or a hypervisor that runs no 32-bit code: Xen PV, PVM): it then has
 * no int 0x80 gate and refuses 32-bit binaries, so no 32-bit exec can happen on the node. Its
 * switch (__ia32_enabled) is in neither BTF nor kallsyms, so a child asks the kernel: one 32-bit
 * getpid through int 0x80, which faults (SIGSEGV) only there. Any other answer (the call works, a
 * seccomp filter's SIGSYS or errno, a failed fork) means "on": a wrong "off" would leave 32-bit
 * execs unseen. The child runs before any program is attached, so no event shows it; its fault
 * is handled, so it leaves no core dump and no kernel log line.
 */
bool Ia32TurnedOff()
{
#if defined(__x86_64__)
	pid_t pid = fork();
	if (pid == 0) {
		// Only async-signal-safe calls here (the parent has threads). The fault ends the
		// child through its own handler, not V8's; should the kernel force the default
		// action instead (the signal blocked), a child that is not dumpable leaves no core.
		prctl(PR_SET_DUMPABLE, 0);
		struct sigaction act = {};
		act.sa_handler = OnIa32Fault;
		sigaction(SIGSEGV, &act, nullptr);
		long nr = 20; /* __NR_getpid of i386 */
		asm volatile("int $0x80" : "+a"(nr) : : "r8", "r9", "r10", "r11", "memory");
		_exit(0);
	}
	if (pid < 0)
		return false;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return (WIFEXITED(status) && WEXITSTATUS(status) == kIa32Faulted) ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
#else
	return false;
#endif
}

} // namespace

void Tracer::ChooseCompatPrograms(Napi::Env env)
{
	btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		throw ErrnoError(env, "load kernel BTF", errno);
	int execve = btf__find_by_name_kind(vmlinux, "__ia32_compat_sys_execve", BTF_KIND_FUNC);
	int execveat = btf__find_by_name_kind(vmlinux, "__ia32_compat_sys_execveat", BTF_KIND_FUNC);
	btf__free(vmlinux);
	bool ia32 = execve > 0 && !Ia32TurnedOff();
	bool fentry = ia32 && execveat > 0 && TrampolineWorks(execve);
	bool raw = ia32 && !fentry;
	auto skip = [&](const char *name) {
		bpf_program *prog = bpf_object__find_program_by_name(obj_, name);
		// Not in this object (a test's): nothing to leave out.
		if (!prog)
			return;
		bpf_program__set_autoload(prog, false);
		unavailable_names_.emplace_back(name);
	};
	if (!fentry)
		for (const char *name : kCompatFentryPrograms)
			skip(name);
	if (!raw)
		for (const char *name : kCompatRawPrograms)
			skip(name);
}

void Tracer::ThrowIfClosed(Napi::Env env, const char *method) const
{
	if (!closed_)
		return;
	Napi::Error error = Napi::Error::New(env, std::string(method) + ": tracer is closed");
	// EBADF: like any call on a closed descriptor; the code says which descriptor.
	error.Set("errno", Napi::Number::New(env, EBADF));
	throw CodedError(error, "ERR_TRACER_CLOSED");
}

Napi::Value Tracer::Attach(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "attach");
	if (!attached_) {
		ResetLibbpfLog();
		bpf_program *prog;
		bpf_object__for_each_program(prog, obj_)
		{
			if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog))
				continue;
			bpf_link *link = bpf_program__attach(prog);
			if (!link) {
				int err = errno;
				// All or nothing: a half-attached tracer would undercount silently.
				DetachAll();
				throw ErrnoError(env,
						 std::string("attach ") + bpf_program__name(prog) +
							 " (" + bpf_program__section_name(prog) +
							 ")",
						 err, LibbpfLogTail());
			}
			links_.push_back(link);
			attached_names_.emplace_back(bpf_program__name(prog));
			struct bpf_prog_info prog_info = {};
			__u32 info_len = sizeof(prog_info);
			attached_ids_.push_back(
				bpf_obj_get_info_by_fd(bpf_program__fd(prog), &prog_info, &info_len)
					? 0
					: prog_info.id);
		}
		attached_ = true;
	}
	return AttachedNames(env);
}

Napi::Value Tracer::ProgramIds(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "programIds");
	Napi::Object ids = Napi::Object::New(env);
	for (size_t i = 0; i < attached_names_.size() && i < attached_ids_.size(); i++)
		ids.Set(attached_names_[i], Napi::Number::New(env, attached_ids_[i]));
	return ids;
}

Napi::Array Tracer::AttachedNames(Napi::Env env) const
{
	Napi::Array names = Napi::Array::New(env, attached_names_.size());
	for (size_t i = 0; i < attached_names_.size(); i++)
		names.Set(i, attached_names_[i]);
	return names;
}

Napi::Value Tracer::Stats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "stats");
	Napi::Object counters = Napi::Object::New(env);
	for (const auto &counter : kCounters) {
		// The kernel adds atomically on any CPU; a relaxed atomic load sees a whole value.
		__u64 value = __atomic_load_n(&counter_values_[counter.key], __ATOMIC_RELAXED);
		counters.Set(counter.name, Napi::Number::New(env, static_cast<double>(value)));
	}
	Napi::Object stats = Napi::Object::New(env);
	stats.Set("counters", counters);
	stats.Set("attached", AttachedNames(env));
	Napi::Array unavailable = Napi::Array::New(env, unavailable_names_.size());
	for (size_t i = 0; i < unavailable_names_.size(); i++)
		unavailable.Set(i, unavailable_names_[i]);
	stats.Set("unavailable", unavailable);
	return stats;
}

void Tracer::DetachAll()
{
	for (bpf_link *link : links_)
		bpf_link__destroy(link);
	links_.clear();
	attached_names_.clear();
	attached_ids_.clear();
}

void Tracer::Teardown(napi_async_cleanup_hook_handle finished)
{
	if (closed_)
		return;
	closed_ = true;
	if (cleanup_hook_ && !finished)
		napi_remove_async_cleanup_hook(cleanup_hook_);
	cleanup_hook_ = nullptr;
	StopDelivery(finished);
	DetachAll();
	if (ring_positions_)
		munmap(ring_positions_, ring_positions_bytes_);
	ring_positions_ = nullptr;
	if (counter_values_)
		munmap(const_cast<__u64 *>(counter_values_), counter_bytes_);
	counter_values_ = nullptr;
	if (scope_table_)
		munmap(scope_table_, scope_bytes_);
	scope_table_ = nullptr;
	if (cgroup_stats_)
		munmap(cgroup_stats_, cgroup_stats_bytes_);
	cgroup_stats_ = nullptr;
	bpf_object__close(obj_);
	obj_ = nullptr;
	// Mid-callback the async context is still in use; Deliver() releases it on return.
	if (!delivering_)
		ReleaseCallback();
}

void Tracer::OnEnvCleanup(napi_async_cleanup_hook_handle handle, void *arg)
{
	static_cast<Tracer *>(arg)->Teardown(handle);
}

Napi::Value Tracer::Close(const Napi::CallbackInfo &info)
{
	/*
	 * Detach first, then hand JS what the ring still holds: every exec recorded before
	 * the programs went away is delivered, none after. Only close() can drain: the
	 * finalizer and the environment cleanup may not call into JS.
	 */
	if (poll_ && !delivering_ && !callback_threw_) {
		DetachAll();
		Deliver(0);
	}
	Teardown();
	return info.Env().Undefined();
}

} // namespace execwatch
