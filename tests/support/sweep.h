// Objects a test node leaves behind, found by their "podid-t<pid>" names: listing them (a test's final
// check) and removing those of test processes that no longer exist (a SIGKILLed earlier run).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace podid::test {

// The <pid> of "podid-t<pid>" or "podid-t<pid>-<anything>"; nullopt for every other name, so nothing
// outside that exact pattern is ever touched.
std::optional<pid_t> owner_pid(const std::string& name);

// Netns under /run/netns starting with prefix, root-netns links named prefix* or vp<digits>, the cgroup
// <cgroup2>/<prefix>, mounts under /tmp/<prefix> and the directory /tmp/<prefix> itself.
std::vector<std::string> list_leftovers(const std::string& prefix);

// Removes every node object whose owner pid is not a live process, plus those of `self` (this process,
// when it has no live node: leftovers of its own failed teardown). Never throws; reports to stderr.
void sweep_dead_nodes(const std::string& cgroup2_mount, std::optional<pid_t> self);

// Removes one node's objects by prefix: processes, cgroups, netns, mounts, workdir. Never throws.
// Returns whether nothing is left.
bool remove_node_objects(const std::string& prefix, const std::string& cgroup2_mount);

}  // namespace podid::test
