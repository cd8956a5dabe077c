// SPDX-License-Identifier: Apache-2.0
/*
 * Clock reads in nanoseconds: the boot-time offset (execwatch.cc) and the capability broadcast's
 * answer deadline (capabilities.cc).
 */
#ifndef EXECWATCH_CLOCK_H
#define EXECWATCH_CLOCK_H

#include <cstdint>
#include <ctime>

namespace execwatch
{

/* `clock` (CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME…) now, in nanoseconds. */
inline int64_t ReadClockNs(clockid_t clock)
{
	timespec ts;
	clock_gettime(clock, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

} // namespace execwatch

#endif // EXECWATCH_CLOCK_H
