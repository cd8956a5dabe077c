// SPDX-License-Identifier: Apache-2.0
/*
 * execwatch.node: the Tracer class, two small system calls the agent needs before it can trace,
 * and the capability drop and user switch once it does (declared for JS in
 * src/capture/binding.ts).
 */
#include <napi.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdint>
#include <ctime>

#include "capabilities.h"
#include "clock.h"
#include "errors.h"
#include "tracer.h"
#include "user.h"

namespace execwatch
{

namespace
{

/*
 * Kernel timestamps are CLOCK_BOOTTIME; adding this offset makes them wall-clock time. Reading
 * boot time on both sides of the real-time read and taking the midpoint halves the skew.
 */
Napi::Value BootTimeOffsetNs(const Napi::CallbackInfo &info)
{
	int64_t before = ReadClockNs(CLOCK_BOOTTIME);
	int64_t real = ReadClockNs(CLOCK_REALTIME);
	int64_t after = ReadClockNs(CLOCK_BOOTTIME);
	return Napi::BigInt::New(info.Env(), real - (before + (after - before) / 2));
}

/*
 * Attaching the syscall tracepoints goes through tracefs, which many hosts do not mount: libbpf
 * reads each tracepoint's id there (events/syscalls/<name>/id) and opens a perf event for it.
 * Nothing is written, so the mount is read-only: it stays after start-up, and a compromised agent
 * must not be able to add kprobes or change tracing through it.
 */
Napi::Value MountTracefs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!info[0].IsString() || info[0].As<Napi::String>().Utf8Value().empty())
		throw CodedError(Napi::TypeError::New(env, "target must be a non-empty string"),
				 "ERR_INVALID_ARG_TYPE");
	std::string target = info[0].As<Napi::String>().Utf8Value();
	// The flags every distribution mounts tracefs with, and read-only. MS_RDONLY makes this
	// mount read-only, not the file system: a tracefs the host mounted elsewhere stays
	// writable.
	if (mount("tracefs", target.c_str(), "tracefs",
		  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
		throw ErrnoError(env, "mount tracefs on " + target, errno);
	return env.Undefined();
}

} // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	InstallLibbpfLogger();
	exports.Set("Tracer", Tracer::Define(env));
	exports.Set("bootTimeOffsetNs",
		    Napi::Function::New<BootTimeOffsetNs>(env, "bootTimeOffsetNs"));
	exports.Set("mountTracefs", Napi::Function::New<MountTracefs>(env, "mountTracefs"));
	exports.Set("dropCapabilities",
		    Napi::Function::New<DropCapabilities>(env, "dropCapabilities"));
	exports.Set("switchUser", Napi::Function::New<SwitchUser>(env, "switchUser"));
	return exports;
}

} // namespace execwatch

// The macro pastes its argument into an identifier, so it needs an unqualified name.
using execwatch::Init;
NODE_API_MODULE(execwatch, Init)
