// Plain HTTP/1.1 from the benchmark process itself into the test node's netns (readiness, metrics):
// no process spawn between the event and its measurement.
#pragma once

#include <chrono>
#include <string>

namespace podid::bench {

struct HttpGot {
    int status = 0;  // 0: no connection or no answer
    std::string body;
};

bool tcp_connects(const std::string& netns, const std::string& ip, int port);

HttpGot http_get(const std::string& netns, const std::string& ip, int port, const std::string& path,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The value of one sample line "<name> <value>" (exact name including labels) in a Prometheus text
// exposition; NaN when absent.
double prometheus_value(const std::string& exposition, const std::string& name);

}  // namespace podid::bench
