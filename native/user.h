// SPDX-License-Identifier: Apache-2.0
/*
 * The switch to an unprivileged user once the programs are attached (declared for JS in
 * src/capture/binding.ts).
 */
#ifndef EXECWATCH_USER_H
#define EXECWATCH_USER_H

#include <napi.h>

namespace execwatch
{

/*
 * switchUser(uid: number, gid: number): clears the supplementary groups, then sets the real,
 * effective and saved gid, then uid, on every thread of the process. Throws an errno Error naming
 * the step that failed (EPERM without CAP_SETGID / CAP_SETUID).
 */
Napi::Value SwitchUser(const Napi::CallbackInfo &info);

} // namespace execwatch

#endif // EXECWATCH_USER_H
