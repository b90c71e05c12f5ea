// Which cgroups the programs leave alone: the ones named with --exempt-cgroup, and the agent's own (so its upstream
// calls reach the real IMDS), found from /proc/self/cgroup or, inside a cgroup namespace, through the kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caller/cgroup_paths.h"
#include "common/result.h"
#include "datapath/datapath.h"

namespace podid {

// The ids of `cgroups` (paths under the cgroup2 mount); an error names the first one that does not exist.
Result<std::vector<uint64_t>> exempt_cgroup_ids(const std::vector<std::string>& cgroups, CgroupPathResolver& paths);

// The agent's own cgroup id from /proc/self/cgroup, or 0 when that names the cgroup namespace root.
uint64_t own_cgroup_id_from_proc(CgroupPathResolver& paths);

// The same through the kernel: connects to 169.254.169.254:80 before the agent is exempt and reads the origin
// record of its own redirected connection, without accepting anything; 0 when the connection was not redirected
// (the agent runs outside the cgroup root). The agent's serving listener must already listen on node_ip:port.
Result<uint64_t> own_cgroup_id_from_redirect(const Datapath& dp, const std::string& node_ip, uint16_t port);

}  // namespace podid
