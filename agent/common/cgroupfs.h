// Where the cgroup2 hierarchy is mounted and which cgroup a process is in: read by the datapath's kernel probes,
// the caller stage and the agent's start-up alike.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace podid {

// The mount point of the cgroup2 hierarchy according to a mountinfo file. cgroup v2 may sit at /sys/fs/cgroup,
// /sys/fs/cgroup/unified (hybrid layout) or anywhere else, so it is never assumed.
Result<std::string> find_cgroup2_mount(const std::string& mountinfo = "/proc/self/mountinfo");

// Same, from mountinfo text already read (for tests). Octal escapes such as "\040" are decoded. When several cgroup2
// mounts exist, the first one whose root is the hierarchy root ("/") wins, else the first one.
Result<std::string> parse_cgroup2_mount(std::string_view mountinfo_text);

// The calling process's cgroup2 path from /proc/self/cgroup (the "0::/..." line), relative to its cgroup namespace
// root; "" when the process has no cgroup2 membership (pure v1) or the file cannot be read.
std::string own_cgroup_path(const std::string& proc_cgroup = "/proc/self/cgroup");

// Same, from the text of a /proc/<pid>/cgroup file.
std::string parse_own_cgroup(std::string_view proc_cgroup_text);

}  // namespace podid
