// Pieces the end-to-end tests share for running their own binary as a helper inside a pod
// ("<self> --podid-helper MODE ARGS...", dispatched before main()) and for a pod-side client that controls
// every byte it sends to the metadata address.
#pragma once

#include <string>
#include <vector>

namespace podid::test {

// This process's argv, read from /proc/self/cmdline (usable before main()).
std::vector<std::string> self_cmdline();

// The path of this test binary ("" if /proc/self/exe cannot be read).
std::string self_exe();

// A TCP connection to 169.254.169.254:80 (redirected to the agent inside a pod) with send and receive
// timeouts of `timeout_s` and TCP_NODELAY; -1 with errno set when it cannot be made.
int dial_metadata(int timeout_s = 10);

}  // namespace podid::test
