// Starting child processes for the test node: fork + exec with the child placed into a cgroup and a
// network namespace first, and running helper commands (iproute2) whose failure is a harness error.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "test_node.h"

namespace podid::test {

struct SpawnRequest {
    std::vector<std::string> argv;
    std::string cgroup_dir;                  // absolute; empty = stay in the caller's cgroup
    std::string netns;                       // name under /run/netns; empty = stay in the caller's netns
    std::map<std::string, std::string> env;  // added to (or overriding) the caller's environment
};

// When spawn_process returns, the child is already in its cgroup and netns (it reports setup failures
// before exec), so a test can inspect it at once. Setup failures (no such netns, cgroup refused the pid)
// throw std::runtime_error; a failed exec is the child's exit code 127 with the reason on its stderr,
// as a shell reports it. The child gets SIGKILL when the forking thread exits (PR_SET_PDEATHSIG).
Process spawn_process(const SpawnRequest& request);

// Runs a helper command (e.g. {"ip", "-n", ns, "link", ...}) in the caller's namespaces and returns its
// stdout; a non-zero exit throws std::runtime_error naming the command and its stderr.
std::string run_checked(const std::vector<std::string>& argv);

// Whether `pid` is still an unreaped child of this process. The node's teardown may reap a child that a
// Process object still names; signalling that pid afterwards could hit an unrelated, recycled process.
bool is_unreaped_child(pid_t pid);

// Whether `program` resolves to an executable through PATH (or is an executable path itself).
bool on_path(const std::string& program);

// "ip -n x link add ..." for messages.
std::string join_argv(const std::vector<std::string>& argv);

}  // namespace podid::test
