// SPDX-License-Identifier: Apache-2.0
#include "errors.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace execwatch
{

namespace
{

/* Enough for the end of a verifier log, where the rejected instruction and reason are. */
constexpr size_t kLogTailBytes = 8192;

std::mutex log_mutex;
std::string log_tail;
bool debug_to_stderr = false;

int OnLibbpfPrint(enum libbpf_print_level level, const char *format, va_list args)
{
	// Debug output is far too chatty to keep and never explains a failure by itself: unless it
	// is asked for on stderr, it is dropped before any formatting.
	if (level == LIBBPF_DEBUG && !debug_to_stderr)
		return 0;
	// One call can carry a whole verifier log: size the text instead of truncating it.
	va_list copy;
	va_copy(copy, args);
	int length = vsnprintf(nullptr, 0, format, copy);
	va_end(copy);
	if (length <= 0)
		return 0;
	std::string line(static_cast<size_t>(length) + 1, '\0');
	vsnprintf(line.data(), line.size(), format, args);
	line.pop_back();

	if (debug_to_stderr)
		fputs(line.c_str(), stderr);
	if (level == LIBBPF_DEBUG)
		return 0;
	std::lock_guard<std::mutex> lock(log_mutex);
	log_tail.append(line);
	if (log_tail.size() > kLogTailBytes)
		log_tail.erase(0, log_tail.size() - kLogTailBytes);
	return 0;
}

/* libbpf's own codes (4000..) have no errno name: give them theirs, as the header spells them. */
const char *const kLibbpfCodes[] = {
	"LIBBPF_ERRNO__LIBELF", "LIBBPF_ERRNO__FORMAT",	  "LIBBPF_ERRNO__KVERSION",
	"LIBBPF_ERRNO__ENDIAN", "LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC",
	"LIBBPF_ERRNO__LOAD",	"LIBBPF_ERRNO__VERIFY",	  "LIBBPF_ERRNO__PROG2BIG",
	"LIBBPF_ERRNO__KVER",	"LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
	"LIBBPF_ERRNO__INVSEQ", "LIBBPF_ERRNO__NLPARSE",
};

std::string Describe(int errnum, std::string *code)
{
	unsigned libbpf_index = static_cast<unsigned>(errnum - __LIBBPF_ERRNO__START);
	if (libbpf_index < sizeof(kLibbpfCodes) / sizeof(kLibbpfCodes[0])) {
		char text[128];
		libbpf_strerror(errnum, text, sizeof(text));
		*code = kLibbpfCodes[libbpf_index];
		return text;
	}
	const char *name = strerrorname_np(errnum);
	const char *desc = strerrordesc_np(errnum);
	*code = name ? name : "UNKNOWN";
	return desc ? desc : "Unknown error " + std::to_string(errnum);
}

} // namespace

Napi::Error ErrnoError(Napi::Env env, const std::string &operation, int err,
		       const std::string &detail)
{
	int errnum = err < 0 ? -err : err;
	std::string code;
	std::string message = operation + ": " + Describe(errnum, &code);
	if (!detail.empty())
		message += "\n" + detail;
	Napi::Error error = Napi::Error::New(env, message);
	error.Set("errno", Napi::Number::New(env, errnum));
	error.Set("code", Napi::String::New(env, code));
	return error;
}

Napi::Error CodedError(Napi::Error error, const char *code)
{
	error.Set("code", Napi::String::New(error.Env(), code));
	return error;
}

void InstallLibbpfLogger()
{
	const char *debug = getenv("EXECWATCH_DEBUG_LIBBPF");
	debug_to_stderr = debug && strcmp(debug, "1") == 0;
	libbpf_set_print(OnLibbpfPrint);
}

void ResetLibbpfLog()
{
	std::lock_guard<std::mutex> lock(log_mutex);
	log_tail.clear();
}

std::string LibbpfLogTail()
{
	std::lock_guard<std::mutex> lock(log_mutex);
	std::string tail = log_tail;
	// The bound may have cut a line in half: start at the next whole one.
	if (tail.size() >= kLogTailBytes) {
		size_t newline = tail.find('\n');
		if (newline != std::string::npos)
			tail.erase(0, newline + 1);
	}
	while (!tail.empty() && tail.back() == '\n')
		tail.pop_back();
	return tail;
}

} // namespace execwatch
