// SPDX-License-Identifier: Apache-2.0
/*
 * Least privilege once the programs are attached: every thread of the process gives up its
 * capabilities (declared for JS in src/capture/binding.ts).
 */
#ifndef EXECWATCH_CAPABILITIES_H
#define EXECWATCH_CAPABILITIES_H

#include <napi.h>

namespace execwatch
{

/*
 * dropCapabilities(keep: bigint): empties the bounding and ambient sets, lowers the permitted
 * and effective sets to `keep` and sets no_new_privs on every thread of the process. Returns
 * { threads, boundingSetCleared }; throws an errno Error when a thread could not be changed.
 */
Napi::Value DropCapabilities(const Napi::CallbackInfo &info);

} // namespace execwatch

#endif // EXECWATCH_CAPABILITIES_H
