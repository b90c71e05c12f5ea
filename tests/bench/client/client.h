// podid-bench-client: the load a benchmark puts on the node, from inside a pod's network namespace and
// cgroup. One process can act for many pods: the connect hook records the cgroup of the task at
// connect() time, so the client moves itself from cgroup to cgroup ("hops") and each connection it
// opens is attributed to the cgroup it was in at that moment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace podid::bench {

// Moves the calling process into `cgroup_dir` (absolute). Returns an error message, empty on success.
std::string hop_to(const std::string& cgroup_dir);

// A blocking TCP connection to ip:port; -1 with errno set on failure.
int connect_to(const std::string& ip, uint16_t port);

// Closes with an RST (SO_LINGER 0): no TIME_WAIT on either side, so a connect loop never runs out of
// ports and every trial starts from the same socket-table state.
void close_with_reset(int fd);

// "GET <path_and_query> HTTP/1.1" to 169.254.169.254 with the Metadata header and Connection: close.
std::string token_request(const std::string& path_and_query);

// Reads until the peer closes; returns the HTTP status of what was read (0 when none).
int read_status_until_close(int fd);
int parse_status(const std::string& response);

int64_t monotonic_ns();

// Sub-commands (argv excludes the program name and the sub-command). Each prints one JSON line.
int run_connect_loop(const std::vector<std::string>& args);
int run_connect_alternate(const std::vector<std::string>& args);
int run_burst(const std::vector<std::string>& args);
int run_touch(const std::vector<std::string>& args);
int run_first_token(const std::vector<std::string>& args);

}  // namespace podid::bench
