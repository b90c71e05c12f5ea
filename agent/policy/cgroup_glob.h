// Cgroup path patterns, as the bindings file (policy/static_bindings_file.h) writes them in "cgroup", matched
// against a caller's cgroup path relative to the cgroup2 mount:
//   - absolute, matched segment by segment: "*" is any run of characters within one segment (it never crosses
//     '/'), "?" one character, "[a-f]" / "[!0-9]" a character class, "\x" a literal x;
//   - "**" as a whole segment matches zero or more segments ("/kubepods.slice/**/cri-containerd-*.scope");
//     "**" inside a longer segment is rejected rather than guessed at;
//   - a path matches when it or any ancestor of it matches: "/system.slice/app.service" also covers the
//     service's sub-cgroups, and "/" or "/**" matches everything.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace podid {

// Validates `glob` and splits it at '/' ("/" gives no segments: the root cgroup). The error is the reason alone,
// for the caller to put in context.
Result<std::vector<std::string>> compile_cgroup_glob(std::string_view glob);

// A cgroup path split at '/' (a trailing '/' is ignored); nullopt for an empty or relative path or one with an
// empty segment ("//").
std::optional<std::vector<std::string_view>> split_cgroup_path(std::string_view path);

// Whether a compiled pattern matches the path made of `path_segments` or one of its ancestors.
bool glob_matches_segments_or_ancestor(const std::vector<std::string>& pattern_segments,
                                       const std::vector<std::string_view>& path_segments);

// The same for a path as text: split once, match against many patterns with the function above instead.
// Also used by tests and the fuzz target.
bool glob_matches_path_or_ancestor(const std::vector<std::string>& pattern_segments, std::string_view path);

}  // namespace podid
