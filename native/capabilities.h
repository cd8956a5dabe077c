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
 * dropCapabilities(keep: bigint): empties the bounding and ambient sets and lowers the permitted
 * and effective sets to `keep` on every thread of the process. Returns
 * { threads, boundingSetCleared }; throws an errno Error when a thread could not be changed.
 */
Napi::Value DropCapabilities(const Napi::CallbackInfo &info);

/*
 * bpfRefusesUnprivileged(): whether bpf(2) refuses every command, even one on a descriptor the
 * process already holds, to a thread without CAP_BPF (Linux before 6.5 with
 * kernel.unprivileged_bpf_disabled set). The loss counters are then unreadable without it.
 */
Napi::Value BpfRefusesUnprivileged(const Napi::CallbackInfo &info);

} // namespace execwatch

#endif // EXECWATCH_CAPABILITIES_H
