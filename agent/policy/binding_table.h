// The entries of one bindings file (policy/static_bindings_file.h builds it) and which of them binds a cgroup path.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/binding.h"

namespace podid {

// Immutable once built; shared between readers.
class BindingTable {
public:
    struct Entry {
        std::string glob;                   // as written in the file
        std::string name;                   // "name", else "entry-<n>" (1-based)
        std::vector<std::string> segments;  // the glob compiled by compile_cgroup_glob (policy/cgroup_glob.h)
        std::vector<Identity> identities;   // at least one; the first is the default
        int line = 0;                       // where the entry starts in the file (1-based; 0 when unknown)
    };

    BindingTable(std::string source, std::vector<Entry> entries)
        : source_(std::move(source)), entries_(std::move(entries)) {}

    // The first entry whose pattern matches `cgroup_path` or one of its ancestors (entries are tried in file
    // order, so narrow entries go before broad ones); kind none for no match or an empty/relative path. The answer
    // per path is remembered (the table never changes; a reload makes a new one), so a pod's requests after its
    // first pay a hash lookup, not a glob match.
    Binding match(std::string_view cgroup_path) const;

    const std::string& source() const { return source_; }
    const std::vector<Entry>& entries() const { return entries_; }

private:
    static constexpr int kNoEntry = -1;
    int first_match(std::string_view cgroup_path) const;

    std::string source_;
    std::vector<Entry> entries_;
    mutable std::mutex memo_mu_;
    // Looked up by string_view (no copy of the path per request).
    struct PathHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view path) const { return std::hash<std::string_view>{}(path); }
    };
    // cgroup path -> entry index or kNoEntry; bounded.
    mutable std::unordered_map<std::string, int, PathHash, std::equal_to<>> memo_;
};

}  // namespace podid
