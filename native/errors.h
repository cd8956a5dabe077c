// SPDX-License-Identifier: Apache-2.0
/*
 * Errors crossing into JS keep their errno (the node-usb habit): one helper builds
 * Error("<operation>: <strerror>") with `errno` (positive) and `code` ("EPERM"), so the TS side
 * can branch on the code instead of parsing messages.
 */
#ifndef EXECWATCH_ERRORS_H
#define EXECWATCH_ERRORS_H

#include <napi.h>

#include <string>

namespace execwatch
{

/*
 * Builds the error for a failed operation. `err` may be negative (libbpf's convention) or
 * positive (errno); `detail` (e.g. libbpf's log tail) is appended on its own lines.
 */
Napi::Error ErrnoError(Napi::Env env, const std::string &operation, int err,
		       const std::string &detail = "");

/* A JS error with a Node-style symbolic code and no errno (argument validation). */
Napi::Error CodedError(Napi::Error error, const char *code);

/*
 * libbpf logs through one process-wide callback. Warnings are kept in a bounded buffer so a
 * failed open/load/attach can carry the verifier's verdict in its message; debug output goes to
 * stderr only when EXECWATCH_DEBUG_LIBBPF=1.
 */
void InstallLibbpfLogger();
/* Forgets what was logged so far: called before each operation whose log we may report. */
void ResetLibbpfLog();
/* The captured log, at most the last 8 KiB, starting on a line boundary. */
std::string LibbpfLogTail();

} // namespace execwatch

#endif // EXECWATCH_ERRORS_H
