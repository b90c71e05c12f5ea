// What is pinned under the podid bpffs directory, read straight from the kernel (no agent needed): each link
// with the program it runs and the cgroup it is attached to, each map with its size, and the counters.
// This is what `podidctl status` shows when the agent is down: whether pods are still failing closed.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace podid::ctl {

// {"bpffs": DIR, "present": n, "expected": m, "pins": [{name, kind: "link"|"map", present, ...}],
//  "counters": {"cgroups": n, "redirected": n, "blocked": n, "by_reason": {...}}}
nlohmann::json read_pins(const std::string& bpffs);

}  // namespace podid::ctl
