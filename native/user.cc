// SPDX-License-Identifier: Apache-2.0
/*
 * Credentials belong to threads in the kernel, as capabilities do, but here glibc does the
 * broadcast: setgroups(2), setresgid(2) and setresuid(2) through glibc run on every thread of the
 * process (nptl's SIGSETXID), libuv's pool and V8's workers included, and fail as a whole if one
 * thread fails. The TS side still reads every thread's status afterwards. Leaving uid 0 for a
 * uid that is not 0 in all three slots also clears each thread's permitted and effective
 * capabilities (capabilities(7), "Effect of user ID changes"); that is why the capability drop
 * keeps CAP_SETUID and CAP_SETGID for this step only.
 */
#include "user.h"

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "errors.h"

namespace execwatch
{

namespace
{

/* A uid or gid from JS: an integer from 0 to 2^32 - 2 ((uid_t)-1 means "unchanged" to the kernel).
 */
uint32_t ReadId(const Napi::CallbackInfo &info, size_t index, const char *name)
{
	Napi::Env env = info.Env();
	double value = info[index].IsNumber() ? info[index].As<Napi::Number>().DoubleValue() : NAN;
	if (std::trunc(value) != value)
		throw CodedError(
			Napi::TypeError::New(env, std::string(name) + " must be an integer"),
			"ERR_INVALID_ARG_TYPE");
	if (value < 0 || value > 4294967294.0)
		throw CodedError(
			Napi::RangeError::New(env, std::string(name) +
							   " must be between 0 and 4294967294"),
			"ERR_OUT_OF_RANGE");
	return static_cast<uint32_t>(value);
}

} // namespace

Napi::Value SwitchUser(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uid_t uid = ReadId(info, 0, "uid");
	gid_t gid = ReadId(info, 1, "gid");
	// Groups and gid first: once the uid is not 0 any more, CAP_SETGID is gone.
	if (setgroups(0, nullptr) != 0)
		throw ErrnoError(env, "clear supplementary groups", errno);
	if (setresgid(gid, gid, gid) != 0)
		throw ErrnoError(env, "set gid " + std::to_string(gid), errno);
	if (setresuid(uid, uid, uid) != 0)
		throw ErrnoError(env, "set uid " + std::to_string(uid), errno);
	return env.Undefined();
}

} // namespace execwatch
