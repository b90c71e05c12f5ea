// The agent's own readiness self-check route (observe/selfcheck.h runs the check): a process in a probe cgroup under
// the cgroup root connects to 169.254.169.254 and asks this path; the answer names the cgroup the kernel recorded,
// which proves redirect + origin record work end to end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace podid {

inline constexpr std::string_view kSelfCheckTarget = "/_podid/selfcheck";
inline constexpr std::string_view kSelfCheckBodyPrefix = "podid-selfcheck cgroup=";

// The body the agent's server answers the route with.
std::string selfcheck_body(uint64_t origin_cgroup_id);

}  // namespace podid
