// Network namespaces of the test node: named ones under /run/netns, made and deleted with iproute2,
// and sockets opened inside them from the test process itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace podid::test {

void add_netns(const std::string& name);  // `ip netns add`; throws std::runtime_error

// SIGKILLs every process whose network namespace is `name`, then `ip netns del`. Returns whether the
// name is gone; problems go to stderr. Never throws.
bool delete_netns(const std::string& name);

// Processes (other than this one) living in the named netns, by comparing /proc/<pid>/ns/net with it.
// Catches grandchildren that escaped the cgroup kill (spawned with no cgroup) and outlived their parent.
std::vector<pid_t> processes_in_netns(const std::string& name);

std::vector<std::string> list_netns();  // names under /run/netns

// A socket created inside the named netns (it stays bound to that netns for its lifetime), so a test
// can listen on the node IP or 169.254.169.254 in-process. The switch happens on a short-lived thread:
// the caller's threads never change namespace. Returns the fd (O_CLOEXEC); throws std::runtime_error.
int socket_in_netns(const std::string& netns, int domain, int type);

// An IPv4 socket in the named netns bound to ip:port with SO_REUSEADDR, listening when `type` is
// SOCK_STREAM (a stand-in server for tests). Returns the fd (O_CLOEXEC); throws std::runtime_error.
int listen_in_netns(const std::string& netns, const std::string& ip, uint16_t port, int type);

}  // namespace podid::test
