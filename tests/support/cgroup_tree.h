// Creating and removing cgroup2 directory trees for the test node.
#pragma once

#include <chrono>
#include <string>

namespace podid::test {

// mkdir -p inside the cgroup2 mount; throws std::runtime_error naming the directory that failed.
void make_cgroup_dirs(const std::string& dir);

// Kills every process in the subtree (cgroup.kill where the kernel has it, ≥5.14; else SIGKILL per pid)
// and waits until the subtree is empty. Returns whether it emptied in time. Never throws.
bool kill_cgroup_tree(const std::string& dir, std::chrono::milliseconds timeout = std::chrono::seconds(5));

// kill_cgroup_tree, then rmdir bottom-up. Returns whether `dir` is gone; problems go to stderr. Never throws.
bool remove_cgroup_tree(const std::string& dir);

}  // namespace podid::test
