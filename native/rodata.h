// SPDX-License-Identifier: Apache-2.0
/*
 * Load-time knobs live in `const volatile` .rodata variables. We do not generate a skeleton (the
 * build must not need bpftool), so the variables are found by name through the object's BTF.
 */
#ifndef EXECWATCH_RODATA_H
#define EXECWATCH_RODATA_H

#include <cstdint>
#include <string>

struct bpf_object;

namespace execwatch
{

/*
 * Sets the u32 `const volatile` variable `name` of the object's .rodata before load. Returns 0,
 * or a negative errno with `why` saying what is missing or mismatched.
 */
int SetRodataU32(bpf_object *obj, const char *name, uint32_t value, std::string *why);

} // namespace execwatch

#endif // EXECWATCH_RODATA_H
