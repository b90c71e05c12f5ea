// The --bindings file parser and its glob matcher (agent/policy/static_bindings_file, cgroup_glob). Input: a bindings
// document, then a NUL, then a cgroup path to match. Invariants: parse never throws; an accepted table
// has at least one identity per entry; a match names an identity of the matching entry.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "policy/cgroup_glob.h"
#include "policy/static_bindings_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    size_t nul = input.find('\0');
    std::string_view doc = input.substr(0, nul);
    std::string_view path =
        nul == std::string_view::npos ? std::string_view("/kubepods.slice/a/b.scope") : input.substr(nul + 1);
    auto table = podid::parse_bindings_file(doc, "fuzz.json");
    if (!table) {
        PODID_FUZZ_CHECK(table.error().message.rfind("fuzz.json", 0) == 0);
        return 0;
    }
    for (const auto& entry : (*table)->entries()) {
        PODID_FUZZ_CHECK(!entry.identities.empty());
        // A pattern matches itself when it holds no glob characters.
        if (entry.glob.find_first_of("*?[\\") == std::string::npos && !entry.glob.empty() && entry.glob[0] == '/')
            PODID_FUZZ_CHECK(podid::glob_matches_path_or_ancestor(entry.segments, entry.glob));
    }
    podid::Binding binding = (*table)->match(path);
    if (binding.kind != podid::BindingKind::none) {
        PODID_FUZZ_CHECK(binding.kind == podid::BindingKind::static_file);
        PODID_FUZZ_CHECK(!binding.identities.empty());
    }
    return 0;
}
