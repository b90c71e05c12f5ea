// wrk (Debian's HTTP load generator) run inside a pod, and its report parsed.
#pragma once

#include <string>
#include <vector>

#include "support/test_node.h"

namespace podid::bench {

struct WrkResult {
    bool ok = false;  // wrk ran and reported a rate
    double rps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    long requests = 0;
    long errors = 0;  // socket errors + non-2xx/3xx answers
    std::string raw;  // wrk's output, for the error message
};

// Parses wrk's --latency report ("Requests/sec:", "Latency Distribution" lines, "Non-2xx", "Socket errors").
WrkResult parse_wrk(const std::string& text);

struct WrkLoad {
    std::string url;
    std::vector<std::string> headers;
    int threads = 1;
    int connections = 32;
    double seconds = 5;
};

// Runs wrk in the pod's netns and cgroup (as a process of that pod).
WrkResult run_wrk(test::TestNode& node, const std::string& pod, const WrkLoad& load);
// The same in the node netns inside `cgroup_dir` (a hostNetwork pod's process).
WrkResult run_wrk_in_cgroup(test::TestNode& node, const std::string& cgroup_dir, const WrkLoad& load);

}  // namespace podid::bench
