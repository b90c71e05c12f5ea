// The connect benchmark's server: accepts and closes at once on the node IP, nothing else, so only the
// client's connect path is measured (not an HTTP server, not the agent).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace podid::bench {

class AcceptCloseServer {
public:
    // One listener (and one blocking accept thread) per port, in the netns. Throws std::runtime_error.
    AcceptCloseServer(const std::string& netns, const std::string& ip, const std::vector<uint16_t>& ports);
    ~AcceptCloseServer();
    AcceptCloseServer(const AcceptCloseServer&) = delete;
    AcceptCloseServer& operator=(const AcceptCloseServer&) = delete;

    uint64_t accepted() const { return accepted_; }

private:
    std::vector<int> listeners_;
    std::vector<std::thread> threads_;
    std::atomic<uint64_t> accepted_{0};
    std::atomic<bool> stopping_{false};
};

}  // namespace podid::bench
