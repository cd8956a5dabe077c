// SPDX-License-Identifier: Apache-2.0
#include "rodata.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace execwatch
{

namespace
{

bool EndsWith(const char *text, const char *suffix)
{
	size_t text_len = strlen(text), suffix_len = strlen(suffix);
	return text_len >= suffix_len && strcmp(text + text_len - suffix_len, suffix) == 0;
}

/* libbpf names the internal map "<object name prefix>.rodata". */
bpf_map *FindRodataMap(bpf_object *obj)
{
	bpf_map *map;
	bpf_object__for_each_map(map, obj)
	{
		if (bpf_map__is_internal(map) && EndsWith(bpf_map__name(map), ".rodata"))
			return map;
	}
	return nullptr;
}

} // namespace

int SetRodataU32(bpf_object *obj, const char *name, uint32_t value, std::string *why)
{
	bpf_map *map = FindRodataMap(obj);
	const btf *btf = bpf_object__btf(obj);
	int sec_id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -ENOENT;
	if (!map || sec_id < 0) {
		*why = std::string("no .rodata section with BTF, so no variable '") + name + "'";
		return -ENOENT;
	}
	const btf_type *sec = btf__type_by_id(btf, sec_id);
	const btf_var_secinfo *var = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, var++) {
		const btf_type *type = btf__type_by_id(btf, var->type);
		if (strcmp(btf__name_by_offset(btf, type->name_off), name) != 0)
			continue;
		size_t size = 0;
		const void *initial = bpf_map__initial_value(map, &size);
		if (var->size != sizeof(value) || !initial || var->offset + sizeof(value) > size) {
			*why = std::string("rodata variable '") + name + "' is not a u32";
			return -EINVAL;
		}
		// Patch a copy and hand it back: libbpf only exposes the image as const.
		std::vector<char> image(static_cast<const char *>(initial),
					static_cast<const char *>(initial) + size);
		memcpy(image.data() + var->offset, &value, sizeof(value));
		return bpf_map__set_initial_value(map, image.data(), image.size());
	}
	*why = std::string("no rodata variable '") + name + "' in the BPF object";
	return -ENOENT;
}

} // namespace execwatch
